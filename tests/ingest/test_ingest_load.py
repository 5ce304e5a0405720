"""Loading: formats, timestamps, mappings, duplicates, incremental/idempotent/atomic loads."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

import ingest.load as load_module
from ingest import (
    IngestConfig,
    IngestError,
    check_warehouse,
    ingest_paths,
    open_warehouse,
    parse_mapping,
)

CFG = IngestConfig(threads=1, memory_limit="1GB", max_rejected_share=1.0)


def _ok(report) -> None:
    assert report.ok, report.format_table()
    for f in report.files:
        assert f.rows_read == f.rows_loaded + f.rows_rejected + f.rows_duplicate


def _healthy(wh: Path) -> None:
    problems = {k: v for k, v in check_warehouse(wh).items() if v}
    assert not problems, problems


# --------------------------------------------------------------------------------------------
# formats


@pytest.mark.parametrize(
    "fmt", ["csv", "csv.gz", "csv.zst", "parquet", "jsonl", "jsonl.gz", "json"]
)
def test_every_format_loads_the_same_events(tmp_path: Path, wh: Path, h, fmt: str) -> None:
    rows = [h.canon(i) for i in range(5)]
    src = h.write_csv(tmp_path / "src.csv", rows)
    target = tmp_path / f"events.{fmt}"
    con = duckdb.connect()
    rel = con.read_csv(str(src), all_varchar=True)
    if fmt.startswith("csv"):
        compression = {"csv": "none", "csv.gz": "gzip", "csv.zst": "zstd"}[fmt]
        rel.write_csv(str(target), header=True, compression=compression)
    elif fmt == "parquet":
        con.sql(
            "SELECT * REPLACE (CAST(ts AS TIMESTAMPTZ) AS ts, CAST(price AS DOUBLE) AS "
            "price, CAST(position AS INTEGER) AS position) FROM rel"
        ).write_parquet(str(target))
    else:
        lines = "".join(json.dumps(r) + "\n" for r in rows)
        if fmt == "json":
            target.write_text(json.dumps(rows))
        elif fmt == "jsonl.gz":
            target.write_bytes(gzip.compress(lines.encode()))
        else:
            target.write_text(lines)
    con.close()
    report = ingest_paths(wh, target, CFG)
    _ok(report)
    assert report.files[0].rows_loaded == 5
    got = h.query(
        wh, "SELECT event_id, ts, user_id, item_id, position, price FROM events ORDER BY event_id"
    )
    assert got[0] == ("e00000", datetime(2024, 3, 4, 10, 0, 0), "u0", "i0", 0, 9.5)
    assert [r[0] for r in got] == [f"e{i:05d}" for i in range(5)]
    _healthy(wh)


def test_directory_glob_and_hidden_files(tmp_path: Path, wh: Path, h) -> None:
    raw = tmp_path / "raw"
    h.write_csv(raw / "a.csv", [h.canon(0)])
    h.write_csv(raw / "sub" / "b.csv", [h.canon(1)])
    h.write_csv(raw / ".hidden.csv", [h.canon(2)])
    h.write_csv(raw / "_staging" / "c.csv", [h.canon(3)])
    (raw / "_SUCCESS").write_text("")
    (raw / "notes.md").write_text("not data")
    report = ingest_paths(wh, raw, CFG)
    _ok(report)
    assert [Path(f.path).name for f in report.files] == ["a.csv", "b.csv"]
    assert [Path(p).name for p in report.skipped] == ["notes.md"]
    report = ingest_paths(wh, str(raw / "**" / "b.csv"), CFG)
    assert [f.status for f in report.files] == ["unchanged"]


def test_date_partition_only(tmp_path: Path, wh: Path, h) -> None:
    raw = tmp_path / "raw"
    h.write_csv(raw / "dt=2024-03-04" / "part-0.csv", [h.canon(0)])
    h.write_csv(raw / "dt=2024-03-05" / "part-0.csv", [h.canon(1)])
    report = ingest_paths(wh, raw, CFG, date="2024-03-05")
    _ok(report)
    assert [Path(f.path).parent.name for f in report.files] == ["dt=2024-03-05"]
    assert h.query(wh, "SELECT event_id FROM events") == [("e00001",)]
    with pytest.raises(
        IngestError,
        match=r"no files under a dt=2024-03-09/ directory; "
        r"partitions found: dt=2024-03-04, dt=2024-03-05",
    ):
        ingest_paths(wh, raw, CFG, date="2024-03-09")
    with pytest.raises(IngestError, match="write the partition date as YYYY-MM-DD"):
        ingest_paths(wh, raw, CFG, date="2024-3-5")


def test_source_row_follows_file_order_across_many_chunks(tmp_path: Path, wh: Path, h) -> None:
    # 300k rows span many DuckDB vectors, row groups and both threads
    n = 300_000
    src = tmp_path / "big.csv"
    con = duckdb.connect()
    con.sql(
        "SELECT 'e' || i AS event_id, strftime(TIMESTAMP '2024-01-01' + to_seconds(i), "
        "'%Y-%m-%dT%H:%M:%SZ') AS ts, 'u' || (i % 97) AS user_id, 's' || (i % 97) AS "
        "session_id, 'view' AS event_type, 'i' || (i % 13) AS item_id, NULL AS position, "
        "NULL AS propensity, CASE WHEN i % 50000 = 7 THEN -1 ELSE 1 END AS price, "
        "NULL AS request_id FROM range($n) t(i)",
        params={"n": n},
    ).write_csv(str(src))
    con.close()
    report = ingest_paths(
        wh, src, IngestConfig(threads=2, memory_limit="1GB", max_rejected_share=1.0)
    )
    _ok(report)
    f = report.files[0]
    assert (f.rows_read, f.rows_loaded, f.rows_rejected) == (n, n - 6, 6)
    mismatched = h.query(
        wh,
        "SELECT count(*) FROM events WHERE source_row <> CAST(substr(event_id, 2) AS BIGINT) + 1",
    )
    assert mismatched == [(0,)]
    rejected = h.query(wh, "SELECT source_row FROM rejected_events ORDER BY 1")
    assert [r[0] for r in rejected] == [i * 50000 + 8 for i in range(6)]


# --------------------------------------------------------------------------------------------
# timestamps


@pytest.mark.parametrize(
    ("text", "unit", "tz", "expected"),
    [
        ("2024-03-04T10:00:00Z", "auto", "UTC", datetime(2024, 3, 4, 10)),
        ("2024-03-04 12:00:00+02:00", "auto", "UTC", datetime(2024, 3, 4, 10)),
        ("2024-03-04T05:00:00-05:00", "iso", "UTC", datetime(2024, 3, 4, 10)),
        ("2024-03-04 11:00:00", "auto", "Europe/Berlin", datetime(2024, 3, 4, 10)),
        ("2024-03-04 11:00:00+00", "auto", "Europe/Berlin", datetime(2024, 3, 4, 11)),
        ("1709546400", "auto", "UTC", datetime(2024, 3, 4, 10)),
        ("1709546400000", "auto", "UTC", datetime(2024, 3, 4, 10)),
        ("1709546400000000", "auto", "UTC", datetime(2024, 3, 4, 10)),
        ("1709546400.5", "s", "UTC", datetime(2024, 3, 4, 10, 0, 0, 500000)),
        ("1709546400123", "ms", "UTC", datetime(2024, 3, 4, 10, 0, 0, 123000)),
        ("1709546400000001", "us", "UTC", datetime(2024, 3, 4, 10, 0, 0, 1)),
        ("2024-03-04", "auto", "UTC", datetime(2024, 3, 4)),
    ],
)
def test_timestamps_are_stored_in_utc(
    tmp_path: Path, wh: Path, h, text: str, unit: str, tz: str, expected: datetime
) -> None:
    mapping = parse_mapping(
        {
            "columns": {"ts": "t", "user_id": "u", "item_id": "i", "event_type": {"value": "view"}},
            "values": {"ts_unit": unit, "ts_timezone": tz},
        }
    )
    src = h.write_csv(tmp_path / "t.csv", [{"t": text, "u": "u1", "i": "i1"}], ("t", "u", "i"))
    report = ingest_paths(wh, src, CFG, mapping=mapping)
    _ok(report)
    assert h.query(wh, "SELECT ts FROM events") == [(expected,)]


def test_ts_format_and_native_parquet_timestamps(tmp_path: Path, wh: Path, h) -> None:
    mapping = parse_mapping(
        {
            "columns": {"ts": "t", "user_id": "u", "item_id": "i", "event_type": {"value": "view"}},
            "values": {"ts_format": "%d/%m/%Y %H:%M", "ts_timezone": "America/New_York"},
        }
    )
    src = h.write_csv(
        tmp_path / "t.csv", [{"t": "04/03/2024 05:00", "u": "u1", "i": "i1"}], ("t", "u", "i")
    )
    _ok(ingest_paths(wh, src, CFG, mapping=mapping))
    assert h.query(wh, "SELECT ts FROM events") == [(datetime(2024, 3, 4, 10),)]
    # Parquet: naive TIMESTAMP is local to ts_timezone, TIMESTAMPTZ is an instant
    pq = tmp_path / "t.parquet"
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.sql(
        "SELECT TIMESTAMP '2024-03-04 05:00:00' AS t, TIMESTAMPTZ '2024-03-04 10:00:00+00' "
        "AS tz, 'u1' AS u, 'i1' AS i"
    ).write_parquet(str(pq))
    con.close()
    _ok(ingest_paths(tmp_path / "w2.duckdb", pq, CFG, mapping=mapping))
    tz_mapping = parse_mapping(
        {
            "columns": {
                "ts": "tz",
                "user_id": "u",
                "item_id": "i",
                "event_type": {"value": "view"},
            },
            "values": {"ts_timezone": "Asia/Tokyo"},
        }
    )
    _ok(ingest_paths(tmp_path / "w3.duckdb", pq, CFG, mapping=tz_mapping))
    assert h.query(tmp_path / "w2.duckdb", "SELECT ts FROM events") == [(datetime(2024, 3, 4, 10),)]
    assert h.query(tmp_path / "w3.duckdb", "SELECT ts FROM events") == [(datetime(2024, 3, 4, 10),)]


# --------------------------------------------------------------------------------------------
# mapping: renames, values, extras, responses


def test_column_and_value_mapping_and_extra_columns(tmp_path: Path, wh: Path, h) -> None:
    mapping = parse_mapping(
        {
            "columns": {
                "ts": "When",
                "user_id": "visitor",
                "item_id": "sku",
                "event_type": "kind",
                "price": "amount",
            },
            "event_types": {"PDP": "view", "Basket": "add_to_cart", "order": "purchase"},
        }
    )
    header = ("When", "visitor", "sku", "kind", "amount", "campaign", "user-agent")
    rows = [
        {
            "When": "2024-03-04T10:00:00Z",
            "visitor": "v1",
            "sku": "A",
            "kind": "pdp",
            "amount": "3.5",
            "campaign": "spring",
            "user-agent": "x/1.0",
        },
        {
            "When": "2024-03-04T10:00:01Z",
            "visitor": "v1",
            "sku": "A",
            "kind": " ORDER ",
            "amount": "3.5",
            "campaign": None,
            "user-agent": "x/1.0",
        },
    ]
    src = h.write_csv(tmp_path / "shop.csv", rows, header)
    _ok(ingest_paths(wh, src, CFG, mapping=mapping))
    got = h.query(wh, "SELECT event_type, item_id, price, extra FROM events ORDER BY ts")
    assert [g[:3] for g in got] == [("view", "A", 3.5), ("purchase", "A", 3.5)]
    assert json.loads(got[0][3]) == {"campaign": "spring", "user-agent": "x/1.0"}
    assert json.loads(got[1][3]) == {"campaign": None, "user-agent": "x/1.0"}


def test_responses_become_events_sharing_the_request(tmp_path: Path, wh: Path, h) -> None:
    mapping = parse_mapping(
        {
            "columns": {
                "ts": "timestamp",
                "user_id": {"per_row": True},
                "session_id": {"per_row": True},
                "event_type": {"value": "impression"},
                "item_id": "item_id",
                "position": "position",
                "propensity": "propensity_score",
            },
            "values": {"position_base": 1},
            "responses": {"click": "click", "purchase": "bought"},
        }
    )
    header = (
        "timestamp",
        "item_id",
        "position",
        "click",
        "bought",
        "propensity_score",
        "user_feature_0",
    )
    rows = [
        {
            "timestamp": "2019-11-24 00:00:17+00:00",
            "item_id": "3",
            "position": "1",
            "click": "0",
            "bought": "false",
            "propensity_score": "0.0125",
            "user_feature_0": "ab",
        },
        {
            "timestamp": "2019-11-24 00:00:18+00:00",
            "item_id": "7",
            "position": "3",
            "click": "1",
            "bought": "true",
            "propensity_score": "0.0125",
            "user_feature_0": "cd",
        },
    ]
    src = h.write_csv(tmp_path / "obd.csv", rows, header)
    report = ingest_paths(wh, src, CFG, mapping=mapping)
    _ok(report)
    f = report.files[0]
    assert (f.rows_read, f.rows_loaded, f.events_loaded) == (2, 2, 4)
    got = h.query(
        wh,
        "SELECT event_id, event_type, item_id, position, propensity, request_id, "
        "user_id, session_id, extra FROM events ORDER BY source_row, event_type",
    )
    imp = [g for g in got if g[1] == "impression"]
    assert [(g[2], g[3], g[4]) for g in imp] == [("3", 0, 0.0125), ("7", 2, 0.0125)]
    second = [g for g in got if g[5] == imp[1][5]]
    assert sorted(g[1] for g in second) == ["click", "impression", "purchase"]
    for g in second:
        assert g[6] == imp[1][0] and g[7] == imp[1][0]  # per-row user and session
        if g[1] != "impression":
            assert g[0] == f"{imp[1][0]}:{g[1]}" and g[3] is None and g[4] is None
            assert g[8] is None
    assert json.loads(imp[1][8]) == {"user_feature_0": "cd"}
    _healthy(wh)


# --------------------------------------------------------------------------------------------
# duplicates, incremental and idempotent loads


def test_duplicates_by_id_and_by_full_row(tmp_path: Path, wh: Path, h) -> None:
    rows = [h.canon(0), h.canon(1), h.canon(0), h.canon(0, price="99")]
    src = h.write_csv(tmp_path / "a.csv", rows)
    report = ingest_paths(wh, src, CFG)
    _ok(report)
    assert (report.files[0].rows_loaded, report.files[0].rows_duplicate) == (2, 2)
    assert h.query(wh, "SELECT event_id, source_row, price FROM events ORDER BY 1") == [
        ("e00000", 1, 9.5),
        ("e00001", 2, 9.5),
    ]
    # without an id column, identical rows are duplicates, different rows are not
    mapping = parse_mapping(
        {
            "columns": {
                "ts": "ts",
                "user_id": "user_id",
                "item_id": "item_id",
                "event_type": "event_type",
            }
        }
    )
    no_id = ("ts", "user_id", "item_id", "event_type")
    rows2 = [{k: r[k] for k in no_id} for r in (h.canon(5), h.canon(5), h.canon(6))]
    src2 = h.write_csv(tmp_path / "b.csv", rows2, no_id)
    w2 = tmp_path / "w2.duckdb"
    r2 = ingest_paths(w2, src2, CFG, mapping=mapping)
    _ok(r2)
    assert (r2.files[0].rows_loaded, r2.files[0].rows_duplicate) == (2, 1)
    ids = [r[0] for r in h.query(w2, "SELECT event_id FROM events ORDER BY source_row")]
    assert len(set(ids)) == 2 and all(i.startswith("r") and len(i) == 25 for i in ids)
    # the same rows in another file are duplicates of the loaded ones
    src3 = h.write_csv(tmp_path / "c.csv", rows2, no_id)
    r3 = ingest_paths(w2, src3, CFG, mapping=mapping)
    assert (r3.files[0].rows_loaded, r3.files[0].rows_duplicate) == (0, 3)
    _healthy(w2)


def test_same_file_twice_is_a_no_op_and_changed_file_replaces(tmp_path: Path, wh: Path, h) -> None:
    src = h.write_csv(
        tmp_path / "a.csv", [h.canon(i) for i in range(4)] + [h.canon(9, propensity="0")]
    )
    first = ingest_paths(wh, src, CFG)
    _ok(first)
    before = h.snapshot(wh)
    again = ingest_paths(wh, src, CFG)
    assert [f.status for f in again.files] == ["unchanged"]
    assert again.files[0].rows_loaded == 4 and again.files[0].rows_rejected == 1
    assert h.snapshot(wh) == before
    # change the file: its earlier rows (and rejects) are replaced, other files untouched
    other = h.write_csv(tmp_path / "b.csv", [h.canon(20)])
    _ok(ingest_paths(wh, other, CFG))
    h.write_csv(src, [h.canon(0, price="1.25"), h.canon(5)])
    changed = ingest_paths(wh, src, CFG)
    _ok(changed)
    assert changed.files[0].status == "replaced"
    assert h.query(wh, "SELECT event_id, price FROM events ORDER BY 1") == [
        ("e00000", 1.25),
        ("e00005", 9.5),
        ("e00020", 9.5),
    ]
    assert h.query(wh, "SELECT count(*) FROM rejected_events") == [(0,)]
    assert h.query(
        wh,
        "SELECT status, rows_loaded FROM ingest_files WHERE path = $p",
        {"p": str(src.resolve())},
    ) == [("replaced", 2)]
    assert h.query(wh, "SELECT count(*) FROM ingest_log") == [(3,)]
    _healthy(wh)


def test_changing_the_mapping_reloads_the_file(tmp_path: Path, wh: Path, h) -> None:
    src = h.write_csv(tmp_path / "a.csv", [h.canon(0)])
    _ok(ingest_paths(wh, src, CFG))
    mapping = parse_mapping(
        {
            "columns": {
                "ts": "ts",
                "user_id": "session_id",
                "item_id": "item_id",
                "event_type": "event_type",
            }
        }
    )
    report = ingest_paths(wh, src, CFG, mapping=mapping)
    assert report.files[0].status == "replaced"
    assert h.query(wh, "SELECT user_id FROM events") == [("s0",)]


@pytest.mark.parametrize(
    "step",
    [
        "stg_insert_events.sql",
        "stg_update_sessions.sql",
        "stg_insert_ingest_log.sql",
        "stg_delete_file_events.sql",
    ],
)
def test_crash_mid_file_leaves_the_warehouse_unchanged(
    tmp_path: Path, wh: Path, h, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    mapping = parse_mapping(
        {
            "columns": {
                "event_id": "event_id",
                "ts": "ts",
                "user_id": "user_id",
                "item_id": "item_id",
                "event_type": "event_type",
            }
        }
    )
    a = h.write_csv(tmp_path / "a.csv", [h.canon(i) for i in range(3)])
    _ok(ingest_paths(wh, a, CFG, mapping=mapping))
    h.write_csv(a, [h.canon(i) for i in range(2)] + [h.canon(7, price="-3")])
    h.write_csv(tmp_path / "b.csv", [h.canon(i) for i in range(10, 13)])
    before = h.snapshot(wh)
    real = load_module.run_sql

    def crashing(con, name, params=None, **kw):
        result = real(con, name, params, **kw)
        if name == step:
            raise KeyboardInterrupt(f"simulated crash after {step}")
        return result

    monkeypatch.setattr(load_module, "run_sql", crashing)
    with pytest.raises(KeyboardInterrupt, match="simulated crash"):
        ingest_paths(wh, tmp_path, CFG, mapping=mapping)
    assert h.snapshot(wh) == before
    monkeypatch.setattr(load_module, "run_sql", real)
    report = ingest_paths(wh, tmp_path, CFG, mapping=mapping)
    _ok(report)
    assert [f.status for f in report.files] == ["replaced", "loaded"]
    assert [Path(f.path).name for f in report.files] == ["a.csv", "b.csv"]
    _healthy(wh)


def test_duckdb_error_mid_file_is_reported_and_next_file_loads(
    tmp_path: Path, wh: Path, h, monkeypatch
) -> None:
    a = h.write_csv(tmp_path / "a.csv", [h.canon(0)])
    b = h.write_csv(tmp_path / "b.csv", [h.canon(1)])
    real = load_module.run_sql

    def failing(con, name, params=None, **kw):
        result = real(con, name, params, **kw)
        if name == "stg_insert_events.sql" and params["source_file"] == str(a.resolve()):
            raise duckdb.IOException("IO Error: disk full (simulated)")
        return result

    monkeypatch.setattr(load_module, "run_sql", failing)
    report = ingest_paths(wh, tmp_path, CFG)
    assert [f.status for f in report.files] == ["failed", "loaded"]
    assert "disk full" in report.files[0].message
    assert h.query(wh, "SELECT event_id FROM events") == [("e00001",)]
    assert h.query(wh, "SELECT count(*) FROM ingest_log") == [(1,)]
    _ = b


# --------------------------------------------------------------------------------------------
# sessions


def _sessions_mapping():
    return parse_mapping(
        {
            "columns": {
                "event_id": "event_id",
                "ts": "ts",
                "user_id": "user_id",
                "item_id": "item_id",
                "event_type": "event_type",
            }
        }
    )


def _at(minute: int, second: int = 0) -> str:
    return f"2024-03-04T{10 + minute // 60:02d}:{minute % 60:02d}:{second:02d}Z"


def test_sessionisation_by_inactivity_gap(tmp_path: Path, wh: Path, h) -> None:
    mins = [0, 10, 39, 70, 71, 200]  # gaps 10, 29, 31, 1, 129 minutes
    rows = [h.canon(i, ts=_at(m), user_id="u1", event_type="view") for i, m in enumerate(mins)]
    rows.append(h.canon(50, ts=_at(5), user_id="u2", event_type="view"))
    src = h.write_csv(tmp_path / "a.csv", rows)
    _ok(ingest_paths(wh, src, CFG, mapping=_sessions_mapping()))
    got = h.query(wh, "SELECT event_id, session_id FROM events WHERE user_id = 'u1' ORDER BY ts")
    sessions = [s for _, s in got]
    assert sessions[0] == sessions[1] == sessions[2]
    assert sessions[3] == sessions[4] != sessions[0]
    assert len(set(sessions)) == 3
    assert all(s.startswith("s") and len(s) == 25 for s in sessions)
    other = h.query(wh, "SELECT session_id FROM events WHERE user_id = 'u2'")[0][0]
    assert other not in sessions
    # deterministic: a fresh warehouse gives the same ids
    w2 = tmp_path / "w2.duckdb"
    _ok(ingest_paths(w2, src, CFG, mapping=_sessions_mapping()))
    assert (
        h.query(w2, "SELECT event_id, session_id FROM events WHERE user_id = 'u1' ORDER BY ts")
        == got
    )
    _healthy(wh)


def test_sessions_continue_and_merge_across_files(tmp_path: Path, wh: Path, h) -> None:
    day1 = h.write_csv(
        tmp_path / "raw" / "dt=1" / "a.csv",
        [
            h.canon(0, ts=_at(0), user_id="u1"),
            h.canon(1, ts=_at(10), user_id="u1"),
            h.canon(2, ts=_at(100), user_id="u1"),
        ],
    )
    _ok(ingest_paths(wh, day1, CFG, mapping=_sessions_mapping()))
    first = dict(h.query(wh, "SELECT event_id, session_id FROM events"))
    assert first["e00000"] == first["e00001"] != first["e00002"]
    # a later file continues the first session and bridges it with the second (gap 10..100)
    day2 = h.write_csv(
        tmp_path / "raw" / "dt=2" / "b.csv",
        [
            h.canon(3, ts=_at(35), user_id="u1"),
            h.canon(4, ts=_at(62), user_id="u1"),
            h.canon(6, ts=_at(90), user_id="u1"),
            h.canon(5, ts=_at(300), user_id="u1"),
        ],
    )
    _ok(ingest_paths(wh, day2, CFG, mapping=_sessions_mapping()))
    after = dict(h.query(wh, "SELECT event_id, session_id FROM events"))
    merged = {after[e] for e in ("e00000", "e00001", "e00002", "e00003", "e00004", "e00006")}
    assert merged == {first["e00000"]}  # the session keeps the id of its first event
    assert after["e00005"] not in merged
    # replacing day 2 without the bridge splits them again
    h.write_csv(day2, [h.canon(5, ts=_at(300), user_id="u1")])
    _ok(ingest_paths(wh, day2, CFG, mapping=_sessions_mapping()))
    again = dict(h.query(wh, "SELECT event_id, session_id FROM events"))
    assert again["e00000"] == first["e00000"] and again["e00002"] == first["e00002"]
    _healthy(wh)


def test_session_gap_config_change_rebuilds(tmp_path: Path, wh: Path, h) -> None:
    src = h.write_csv(
        tmp_path / "a.csv",
        [h.canon(0, ts=_at(0), user_id="u1"), h.canon(1, ts=_at(20), user_id="u1")],
    )
    _ok(ingest_paths(wh, src, CFG, mapping=_sessions_mapping()))
    assert h.query(wh, "SELECT count(DISTINCT session_id) FROM events") == [(1,)]
    short = IngestConfig(threads=1, memory_limit="1GB", session_gap_s=600)
    report = ingest_paths(wh, src, short, mapping=_sessions_mapping())
    assert report.files[0].status == "replaced"
    assert h.query(wh, "SELECT count(DISTINCT session_id) FROM events") == [(2,)]


def test_open_warehouse_creates_tables_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "new" / "w.duckdb"
    con = open_warehouse(path)
    tables = {
        r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    con.close()
    assert {"events", "rejected_events", "ingest_log", "ingest_files"} <= tables
    ro = open_warehouse(path, read_only=True)
    assert ro.execute("SELECT count(*) FROM events").fetchall() == [(0,)]
    ro.close()
    with pytest.raises(IngestError, match="does not exist; load raw logs with `offrec ingest`"):
        open_warehouse(tmp_path / "missing.duckdb", read_only=True)


def test_forced_format_reads_files_without_extension(tmp_path: Path, wh: Path, h) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "part-00000").write_text(h.csv_text([h.canon(0)]))
    h.write_csv(raw / "part-00001.csv", [h.canon(1)])
    (raw / "manifest.toml").write_text("x = 1\n")
    (raw / "data.parquet").write_bytes(b"not read: another format")
    mapping = parse_mapping(
        {
            "source": {"format": "csv"},
            "columns": {
                "ts": "ts",
                "user_id": "user_id",
                "item_id": "item_id",
                "event_type": "event_type",
            },
        }
    )
    report = ingest_paths(wh, raw, CFG, mapping=mapping)
    _ok(report)
    assert [Path(f.path).name for f in report.files] == ["part-00000", "part-00001.csv"]
    assert sorted(Path(p).name for p in report.skipped) == ["data.parquet", "manifest.toml"]
    explicit = ingest_paths(tmp_path / "w2.duckdb", raw / "manifest.toml", CFG, mapping=mapping)
    assert explicit.files[0].status == "failed"  # read as CSV because it was named explicitly
    assert "missing column 'ts'" in explicit.files[0].message


def test_progress_reports_files_and_rows(tmp_path: Path, wh: Path, h) -> None:
    raw = tmp_path / "raw"
    h.write_csv(raw / "a.csv", [h.canon(0), h.canon(1)])
    h.write_csv(raw / "b.csv", [h.canon(2)])
    messages: list[str] = []
    _ok(ingest_paths(wh, raw, CFG, progress=messages.append))
    bars = [m for m in messages if m.startswith("ingest [")]
    assert bars[0] == f"ingest [{'.' * 24}] 0/2 files, 0 rows  a.csv"
    assert bars[1] == f"ingest [{'#' * 12}{'.' * 12}] 1/2 files, 2 rows  b.csv"
    assert bars[-1] == f"ingest [{'#' * 24}] 2/2 files, 3 rows  done"
    assert all(m.endswith("%") for m in messages if not m.startswith("ingest ["))


def test_file_changing_during_the_load_is_refused(
    tmp_path: Path, wh: Path, h, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = h.write_csv(tmp_path / "a.csv", [h.canon(0)])
    real = load_module.run_sql

    def appending(con, name, params=None, **kw):
        result = real(con, name, params, **kw)
        if name == "stg_insert_events.sql":  # a writer appends while we load
            with src.open("a") as fh:
                fh.write(",".join(h.canon(1).values()) + "\n")
        return result

    monkeypatch.setattr(load_module, "run_sql", appending)
    report = ingest_paths(wh, src, CFG)
    assert report.files[0].status == "failed"
    assert "the file changed while it was being loaded" in report.files[0].message
    assert h.query(wh, "SELECT count(*) FROM events") == [(0,)]
    monkeypatch.setattr(load_module, "run_sql", real)
    _ok(ingest_paths(wh, src, CFG))
    assert h.query(wh, "SELECT count(*) FROM events") == [(2,)]


def test_force_reloads_an_unchanged_file(tmp_path: Path, wh: Path, h) -> None:
    src = h.write_csv(tmp_path / "a.csv", [h.canon(0), h.canon(1)])
    _ok(ingest_paths(wh, src, CFG))
    first = h.query(wh, "SELECT event_id, ingested_at FROM events ORDER BY 1")
    again = ingest_paths(wh, src, CFG, force=True)
    _ok(again)
    assert again.files[0].status == "replaced"
    after = h.query(wh, "SELECT event_id, ingested_at FROM events ORDER BY 1")
    assert [r[0] for r in after] == [r[0] for r in first]
    assert all(b[1] > a[1] for a, b in zip(first, after, strict=True))
    assert h.query(wh, "SELECT count(*) FROM ingest_log") == [(2,)]
    _healthy(wh)
