-- Loaded files whose stored counts disagree with the tables or with the accounting
-- invariant (rows read = loaded + rejected + duplicate). Must return no rows.
-- $parameters: none
WITH ev AS (
    SELECT source_file, count(DISTINCT source_row) AS rows_loaded, count(*) AS events_loaded
    FROM events
    GROUP BY source_file
),

rj AS (
    SELECT source_file, count(*) AS rows_rejected
    FROM rejected_events
    GROUP BY source_file
)

SELECT
    f.path,
    f.rows_read,
    f.rows_loaded,
    coalesce(ev.rows_loaded, 0) AS rows_loaded_in_events,
    f.events_loaded,
    coalesce(ev.events_loaded, 0) AS events_in_events,
    f.rows_rejected,
    coalesce(rj.rows_rejected, 0) AS rows_in_rejected_events,
    f.rows_duplicate
FROM ingest_files AS f
LEFT JOIN ev ON f.path = ev.source_file
LEFT JOIN rj ON f.path = rj.source_file
WHERE f.rows_read <> f.rows_loaded + f.rows_rejected + f.rows_duplicate
    OR f.rows_loaded <> coalesce(ev.rows_loaded, 0)
    OR f.events_loaded <> coalesce(ev.events_loaded, 0)
    OR f.rows_rejected <> coalesce(rj.rows_rejected, 0)
ORDER BY f.path
