"""The shipped mappings on real-looking samples: simulator output, RetailRocket-style,
Open-Bandit-style and the custom JSON-lines shop in examples/mappings/."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from ingest import IngestConfig, check_warehouse, ingest_paths, load_mapping
from offrec.config import load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "mappings"
CFG = IngestConfig(threads=1, memory_limit="1GB")


def _healthy(wh: Path) -> None:
    problems = {k: v for k, v in check_warehouse(wh).items() if v}
    assert not problems, problems


def _example(name: str, wh: Path):
    cfg = load_config(EXAMPLES / name / "offrec.toml")
    report = ingest_paths(wh, cfg.paths.inputs, cfg.ingest)
    assert report.ok, report.format_table()
    _healthy(wh)
    return report.files[0]


def test_retailrocket_example(wh: Path, h) -> None:
    f = _example("retailrocket", wh)
    assert (f.rows_read, f.rows_loaded, f.rows_rejected, f.rows_duplicate) == (20, 17, 2, 1)
    assert f.reject_reasons == {"missing_user_id": 1, "unknown_event_type": 1}
    assert h.query(wh, "SELECT reason FROM rejected_events ORDER BY source_row") == [
        ('event_type "like" is not mapped to an event type; add it to [event_types]',),
        ("user_id is empty",),
    ]
    types = dict(h.query(wh, "SELECT event_type, count(*) FROM events GROUP BY 1"))
    assert types == {"view": 11, "add_to_cart": 3, "purchase": 3}
    first = h.query(wh, "SELECT ts, extra FROM events WHERE source_row = 1")[0]
    assert first == (datetime(2015, 6, 2, 5, 2, 12, 117000), '{"transactionid":null}')
    assert h.query(
        wh, "SELECT extra ->> 'transactionid' FROM events WHERE event_type = 'purchase' ORDER BY ts"
    ) == [("4000",), ("4001",), ("4001",)]
    # visitor 257597: four events within 30 minutes, then two more ~2 h later
    sessions = [
        r[0]
        for r in h.query(wh, "SELECT session_id FROM events WHERE user_id = '257597' ORDER BY ts")
    ]
    assert len(sessions) == 6 and len(set(sessions[:4])) == 1 and len(set(sessions[4:])) == 1
    assert sessions[0] != sessions[4]
    assert h.query(wh, "SELECT session_gap_s, mapping FROM ingest_log") == [
        (1800.0, "retailrocket")
    ]


def test_open_bandit_example(wh: Path, h) -> None:
    f = _example("open_bandit", wh)
    assert (f.rows_read, f.rows_loaded, f.rows_rejected, f.events_loaded) == (12, 11, 1, 13)
    assert h.query(wh, "SELECT reason_code FROM rejected_events") == [("bad_propensity",)]
    clicks = h.query(
        wh,
        "SELECT c.request_id = i.request_id, c.item_id = i.item_id, "
        "c.session_id = i.session_id, i.position, i.propensity "
        "FROM events c JOIN events i ON c.request_id = i.request_id "
        "AND i.event_type = 'impression' WHERE c.event_type = 'click' "
        "ORDER BY c.ts",
    )
    assert clicks == [(True, True, True, 2, 0.0125), (True, True, True, 1, 0.0125)]
    extra = json.loads(
        h.query(wh, "SELECT extra FROM events WHERE source_row = 1 AND event_type = 'impression'")[
            0
        ][0]
    )
    assert set(extra) == {
        "column00",
        "user_feature_0",
        "user_feature_1",
        "user_feature_2",
        "user_feature_3",
        "user-item_affinity_0",
        "user-item_affinity_1",
        "user-item_affinity_2",
        "user-item_affinity_3",
    }
    assert h.query(
        wh,
        "SELECT min(position), max(position), count(DISTINCT user_id) "
        "FROM events WHERE event_type = 'impression'",
    ) == [(0, 2, 11)]


def test_custom_shop_example(wh: Path, h) -> None:
    f = _example("custom_shop", wh)
    assert (f.rows_read, f.rows_loaded, f.rows_rejected, f.rows_duplicate) == (8, 6, 1, 1)
    assert h.query(wh, "SELECT reason FROM rejected_events") == [
        ('propensity "1.7" is not a probability in (0, 1]',)
    ]
    got = h.query(
        wh,
        "SELECT event_id, ts, event_type, position, propensity, extra "
        "FROM events ORDER BY source_row",
    )
    assert got[0][:5] == ("7f1c-0001", datetime(2024, 5, 3, 7, 15, 2), "impression", 0, 0.31)
    assert json.loads(got[0][5]) == {"context": {"device": "mobile", "page": "home"}}
    assert [g[2] for g in got] == [
        "impression",
        "click",
        "add_to_cart",
        "purchase",
        "view",
        "impression",
    ]


@pytest.mark.parametrize(
    ("fmt", "compress", "drop_session"),
    [("parquet", "none", False), ("csv", "gzip", False), ("jsonl", "none", True)],
)
def test_simulator_output(
    tmp_path: Path, wh: Path, h, fmt: str, compress: str, drop_session: bool
) -> None:
    from offrec.simulator import SimulatorConfig, write_logs

    sim = SimulatorConfig(
        format=fmt,
        compress=compress,
        partition_by_date=True,
        n_days=3,
        drop_session_id=drop_session,
    )
    out = tmp_path / "raw"
    summary = write_logs(out, sim, n_sessions=150, seed=3)
    report = ingest_paths(wh, out, CFG, mapping=load_mapping("simulator"))
    assert report.ok, report.format_table()
    assert len(report.files) == len(summary.files) > 1
    totals = report.totals()
    assert totals["rows_rejected"] == totals["rows_duplicate"] == 0
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    reader = {"parquet": "read_parquet", "csv": "read_csv", "jsonl": "read_json"}[fmt]
    truth = con.execute(
        f"SELECT * FROM {reader}($f, hive_partitioning = false)",
        {"f": [str(p) for p in summary.files]},
    ).fetchall()
    cols = [d[0] for d in con.description]
    con.close()
    assert totals["rows_loaded"] == len(truth)
    loaded = {
        r[0]: r
        for r in h.query(
            wh,
            "SELECT event_id, ts, user_id, session_id, "
            "event_type, item_id, position, propensity, price, "
            "request_id FROM events",
        )
    }
    for row in truth:
        rec = dict(zip(cols, row, strict=True))
        got = loaded[rec["event_id"]]
        assert got[4:6] == (rec["event_type"], rec["item_id"])
        assert got[8] == pytest.approx(rec["price"])
        if not drop_session:
            assert got[3] == rec["session_id"]
    if drop_session:
        _check_sessions_match_a_python_model(wh, h)
    _healthy(wh)


def _check_sessions_match_a_python_model(wh: Path, h) -> None:
    """Rebuilt sessions equal an independent Python sessionisation (gap 1800 s)."""
    rows = h.query(wh, "SELECT user_id, ts, event_id, session_id FROM events")
    by_user: dict[str, list] = defaultdict(list)
    for user, ts, eid, sid in rows:
        by_user[user].append((ts, eid, sid))
    for events in by_user.values():
        events.sort()
        expected_groups: list[list[str]] = []
        last = None
        for ts, eid, _ in events:
            if last is None or (ts - last).total_seconds() > 1800:
                expected_groups.append([])
            expected_groups[-1].append(eid)
            last = ts
        sid = {eid: s for _, eid, s in events}
        assert [len({sid[e] for e in g}) for g in expected_groups] == [1] * len(expected_groups)
        assert len({sid[g[0]] for g in expected_groups}) == len(expected_groups)
