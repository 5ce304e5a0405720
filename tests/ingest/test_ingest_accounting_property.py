"""Property: for any mix of good, bad and repeated rows over one or two files, every row read is
loaded, rejected or counted as a duplicate, and exactly the expected rows are loaded."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import IngestConfig, check_warehouse, ingest_paths

CFG = IngestConfig(threads=1, memory_limit="512MB", max_rejected_share=1.0)
HEADER = (
    "event_id",
    "ts",
    "user_id",
    "session_id",
    "event_type",
    "item_id",
    "position",
    "propensity",
    "price",
    "request_id",
)

#: kind -> the fields that make a row of that kind (on top of a valid row)
BAD = {
    "bad_ts": {"ts": "not-a-time"},
    "no_user": {"user_id": ""},
    "no_item": {"item_id": "  "},
    "bad_type": {"event_type": "hover"},
    "zero_propensity": {"propensity": "0"},
    "big_propensity": {"propensity": "1.5"},
    "negative_price": {"price": "-2"},
    "bad_position": {"position": "-1"},
}

row_strategy = st.tuples(
    st.sampled_from(["good"] * 4 + sorted(BAD)),
    st.integers(0, 11),  # event id from a small pool, so ids repeat
    st.integers(0, 3),  # user
    st.integers(0, 86_000),  # seconds into the day
    st.sampled_from(["impression", "view", "click", "add_to_cart", "purchase"]),
    st.integers(1, 100),  # propensity in percent
)


def _row(kind: str, eid: int, user: int, secs: int, etype: str, pct: int) -> dict[str, str]:
    row = {
        "event_id": f"e{eid}",
        "ts": f"2024-03-04T{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}Z",
        "user_id": f"u{user}",
        "session_id": f"s{user}",
        "event_type": etype,
        "item_id": f"i{eid % 5}",
        "position": str(eid % 3),
        "propensity": str(pct / 100),
        "price": "4.25",
        "request_id": f"r{eid}",
    }
    row.update(BAD.get(kind, {}))
    return row


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    lines = [",".join(HEADER)] + [",".join(r[h] for h in HEADER) for r in rows]
    path.write_text("\n".join(lines) + "\n")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=st.lists(row_strategy, max_size=25), second=st.lists(row_strategy, max_size=12))
def test_accounting_invariant_holds_for_any_mix(first, second) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "raw").mkdir()
        files = [("a.csv", first), ("b.csv", second)]
        for name, spec in files:
            _write(root / "raw" / name, [_row(*s) for s in spec])
        report = ingest_paths(root / "w.duckdb", root / "raw", CFG)

        seen: set[int] = set()
        expected_loaded: list[str] = []
        for (name, spec), got in zip(files, report.files, strict=True):
            assert Path(got.path).name == name
            assert got.status == "loaded", got.message
            assert got.rows_read == len(spec)
            assert got.rows_read == got.rows_loaded + got.rows_rejected + got.rows_duplicate
            bad = sum(kind != "good" for kind, *_ in spec)
            dup = 0
            for kind, eid, *_ in spec:
                if kind != "good":
                    continue
                if eid in seen:
                    dup += 1
                else:
                    seen.add(eid)
                    expected_loaded.append(f"e{eid}")
            assert (got.rows_rejected, got.rows_duplicate) == (bad, dup)
            assert sum(got.reject_reasons.values()) == bad

        con = duckdb.connect(str(root / "w.duckdb"), read_only=True)
        try:
            loaded = [r[0] for r in con.execute("SELECT event_id FROM events").fetchall()]
            logged = con.execute(
                "SELECT sum(rows_read), sum(rows_loaded + rows_rejected + "
                "rows_duplicate) FROM ingest_log"
            ).fetchall()[0]
        finally:
            con.close()
        assert sorted(loaded) == sorted(expected_loaded)
        total = len(first) + len(second)
        if total:
            assert logged == (total, total)
        assert not any(check_warehouse(root / "w.duckdb").values())
