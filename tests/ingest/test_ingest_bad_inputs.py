"""Bad inputs: rejected rows with reasons, refused files, and run-level errors."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from ingest import (
    IngestConfig,
    IngestError,
    MappingError,
    WarehouseLockedError,
    check_warehouse,
    ingest_paths,
    open_warehouse,
    parse_mapping,
)

CFG = IngestConfig(threads=1, memory_limit="1GB", max_rejected_share=1.0)


# --------------------------------------------------------------------------------------------
# rows: rejected with a reason and their row number, never dropped


ROW_CASES = [
    ({"ts": "yesterday"}, "bad_ts", 'ts "yesterday" is not a timestamp'),
    ({"ts": None}, "bad_ts", "ts is empty"),
    ({"ts": "  "}, "bad_ts", "ts is empty"),
    ({"ts": "99999999999999999"}, "bad_ts", "outside 1970..2199"),
    ({"ts": "1900-01-01T00:00:00Z"}, "bad_ts", "outside 1970..2199"),
    ({"user_id": None}, "missing_user_id", "user_id is empty"),
    ({"user_id": "   "}, "missing_user_id", "user_id is empty"),
    ({"item_id": ""}, "missing_item_id", "item_id is empty"),
    ({"session_id": None}, "missing_session_id", "session_id is empty"),
    (
        {"event_type": "hover"},
        "unknown_event_type",
        'event_type "hover" is not mapped to an event type; add it to \\[event_types\\]',
    ),
    ({"event_type": None}, "unknown_event_type", "event_type is empty"),
    ({"propensity": "0"}, "bad_propensity", 'propensity "0" is not a probability in \\(0, 1\\]'),
    ({"propensity": "-0.2"}, "bad_propensity", "not a probability"),
    ({"propensity": "1.0001"}, "bad_propensity", "not a probability"),
    ({"propensity": "NaN"}, "bad_propensity", "not a probability"),
    ({"propensity": "often"}, "bad_propensity", 'propensity "often"'),
    ({"price": "-0.01"}, "bad_price", 'price "-0.01" is not a number >= 0'),
    ({"price": "inf"}, "bad_price", "not a number >= 0"),
    ({"price": "12,50"}, "bad_price", 'price "12,50"'),
    ({"position": "-1"}, "bad_position", 'position "-1" is not a whole number >= 0'),
    ({"position": "1.5"}, "bad_position", "not a whole number"),
    ({"position": "first"}, "bad_position", "not a whole number"),
]


@pytest.fixture(scope="module")
def bad_rows_loaded(tmp_path_factory: pytest.TempPathFactory, h) -> tuple[Path, Path]:
    """One file: a good row, then one row per ROW_CASES entry, then a good row."""
    tmp = tmp_path_factory.mktemp("bad_rows")
    rows = [h.canon(0)] + [h.canon(i + 1, **o) for i, (o, _, _) in enumerate(ROW_CASES)]
    rows.append(h.canon(len(ROW_CASES) + 1))
    src = h.write_csv(tmp / "a.csv", rows)
    wh = tmp / "w.duckdb"
    report = ingest_paths(wh, src, CFG)
    f = report.files[0]
    assert f.status == "loaded", f.message
    n = len(ROW_CASES)
    assert (f.rows_read, f.rows_loaded, f.rows_rejected, f.rows_duplicate) == (n + 2, 2, n, 0)
    return wh, src


@pytest.mark.parametrize(
    ("case", "override", "code", "reason"), [(i, *c) for i, c in enumerate(ROW_CASES)]
)
def test_bad_row_is_rejected_with_reason_and_row(
    bad_rows_loaded, h, case: int, override, code: str, reason: str
) -> None:
    wh, src = bad_rows_loaded
    row = case + 2  # 1-based, after the first good row
    got = h.query(
        wh,
        "SELECT source_file, reason_code, reason, raw FROM rejected_events WHERE source_row = $r",
        {"r": row},
    )
    assert len(got) == 1, f"row {row} ({override}) was not rejected"
    file, got_code, got_reason, raw = got[0]
    assert (file, got_code) == (str(src.resolve()), code)
    assert re.search(reason, got_reason), got_reason
    raw_row = json.loads(raw)
    assert list(raw_row) == list(h.header)
    assert raw_row["event_id"] == f"e{case + 1:05d}"
    assert h.query(wh, "SELECT count(*) FROM events WHERE source_row = $r", {"r": row}) == [(0,)]


def test_only_the_good_rows_of_the_bad_rows_file_loaded(bad_rows_loaded, h) -> None:
    wh, _ = bad_rows_loaded
    assert h.query(wh, "SELECT source_row FROM events ORDER BY 1") == [(1,), (len(ROW_CASES) + 2,)]
    reasons = dict(h.query(wh, "SELECT reason_code, count(*) FROM rejected_events GROUP BY 1"))
    expected: dict[str, int] = {}
    for _, code, _ in ROW_CASES:
        expected[code] = expected.get(code, 0) + 1
    assert reasons == expected


def test_several_problems_in_one_row_are_all_named(tmp_path: Path, wh: Path, h) -> None:
    src = h.write_csv(tmp_path / "a.csv", [h.canon(0, user_id="", price="-1", propensity="2")])
    ingest_paths(wh, src, CFG)
    ((code, reason),) = h.query(wh, "SELECT reason_code, reason FROM rejected_events")
    assert code == "missing_user_id"
    assert reason == (
        'user_id is empty; propensity "2" is not a probability in (0, 1]; '
        'price "-1" is not a number >= 0'
    )


def test_bad_response_flag(tmp_path: Path, wh: Path, h) -> None:
    mapping = parse_mapping(
        {
            "columns": {
                "ts": "t",
                "user_id": "u",
                "item_id": "i",
                "event_type": {"value": "impression"},
            },
            "responses": {"click": "click"},
        }
    )
    src = h.write_csv(
        tmp_path / "a.csv",
        [
            {"t": "2024-01-01", "u": "u", "i": "i", "click": "2"},
            {"t": "2024-01-01", "u": "u", "i": "j", "click": "maybe"},
        ],
        ("t", "u", "i", "click"),
    )
    report = ingest_paths(wh, src, CFG, mapping=mapping)
    assert (report.files[0].rows_loaded, report.files[0].rows_rejected) == (1, 1)
    assert h.query(wh, "SELECT reason_code, reason FROM rejected_events") == [
        ("bad_response_flag", 'response flag(s) ["click=maybe"] are not 0/1 or true/false')
    ]
    assert h.query(wh, "SELECT count(*) FROM events WHERE event_type = 'click'") == [(1,)]


def test_wrong_types_in_parquet(tmp_path: Path, wh: Path, h) -> None:
    pq = tmp_path / "a.parquet"
    con = duckdb.connect()
    con.sql(
        "SELECT 'e' || i AS event_id, TIMESTAMPTZ '2024-01-01 00:00:00+00' AS ts, "
        "i AS user_id, 's' AS session_id, 'view' AS event_type, 7 AS item_id, "
        "[0.5, 2.0, 2.0, 1.0][i + 1] AS position, NULL::DOUBLE AS propensity, "
        "['3', 'x', '4.5', '1e400'][i + 1] AS price, NULL AS request_id "
        "FROM range(4) t(i)"
    ).write_parquet(str(pq))
    con.close()
    report = ingest_paths(wh, pq, CFG)
    f = report.files[0]
    assert (f.rows_loaded, f.rows_rejected) == (1, 3), f.message
    # numbers become text ids, whole DOUBLE positions become integers
    assert h.query(wh, "SELECT user_id, item_id, position, price FROM events") == [
        ("2", "7", 2, 4.5)
    ]
    assert h.query(wh, "SELECT source_row, reason FROM rejected_events ORDER BY 1") == [
        (1, 'position "0.5" is not a whole number >= 0'),
        (2, 'price "x" is not a number >= 0'),
        (4, 'price "1e400" is not a number >= 0'),
    ]


def test_malformed_csv_lines_are_rejected_with_line_numbers(tmp_path: Path, wh: Path, h) -> None:
    text = h.csv_text([h.canon(0), h.canon(1)])
    lines = text.splitlines()
    lines.insert(2, "e9,2024-03-04T10:00:00Z,u1")  # too few fields
    lines.insert(4, "x," * 12 + "x")  # too many fields
    src = tmp_path / "a.csv"
    src.write_text("\n".join(lines) + "\n")
    report = ingest_paths(wh, src, CFG)
    f = report.files[0]
    assert f.status == "loaded", f.message
    assert (f.rows_read, f.rows_loaded, f.rows_rejected) == (4, 2, 2)
    assert f.reject_reasons == {"malformed_line": 2}
    got = h.query(
        wh, "SELECT source_row, source_line, reason, raw FROM rejected_events ORDER BY source_line"
    )
    assert [g[:2] for g in got] == [(None, 3), (None, 5)]
    assert "MISSING COLUMNS" in got[0][2] and "TOO MANY COLUMNS" in got[1][2]
    assert json.loads(got[0][3]) == "e9,2024-03-04T10:00:00Z,u1"


# --------------------------------------------------------------------------------------------
# odd but valid input


def test_header_only_file_loads_zero_rows(tmp_path: Path, wh: Path, h) -> None:
    src = h.write_csv(tmp_path / "a.csv", [])
    report = ingest_paths(wh, src, CFG)
    assert report.files[0].status == "loaded"
    assert report.files[0].rows_read == 0
    assert h.query(wh, "SELECT rows_read, rows_loaded FROM ingest_log") == [(0, 0)]


def test_crlf_and_utf8_bom(tmp_path: Path, wh: Path, h) -> None:
    src = h.write_csv(tmp_path / "a.csv", [h.canon(0), h.canon(1)], newline="\r\n", bom=True)
    report = ingest_paths(wh, src, CFG)
    assert report.files[0].rows_loaded == 2, report.format_table()
    assert h.query(wh, "SELECT event_id, request_id FROM events ORDER BY 1") == [
        ("e00000", "r00000"),
        ("e00001", "r00001"),
    ]


def test_unicode_and_html_looking_ids_are_kept_verbatim(tmp_path: Path, wh: Path, h) -> None:
    items = ["<script>alert('x')</script>", "商品-ü-ñ-💡", 'quote"and,comma', "a\tb", "'; DROP--"]
    rows = [h.canon(i, item_id=item, user_id=item) for i, item in enumerate(items)]
    src = h.write_csv(tmp_path / "a.csv", rows)
    report = ingest_paths(wh, src, CFG)
    assert report.files[0].rows_loaded == len(items), report.format_table()
    assert [r[0] for r in h.query(wh, "SELECT item_id FROM events ORDER BY source_row")] == items
    assert check_warehouse(wh)["checks/ingest_events_contract.sql"] == []


# --------------------------------------------------------------------------------------------
# files: refused with a clear message, warehouse unchanged, other files still load


def _corrupt_parquet(path: Path) -> None:
    path.write_bytes(b"PAR1" + bytes(range(200)) + b"PAR1")


def _truncated_gzip(path: Path) -> None:
    data = gzip.compress(("event_id,ts\n" + "e,2024-01-01\n" * 500).encode())
    path.write_bytes(data[: len(data) // 2])


FILE_CASES = [
    (
        "missing.csv",
        lambda p, h: h.write_csv(p, [{"ts": "2024-01-01", "user_id": "u"}], ("ts", "user_id")),
        r"missing.csv: missing column 'event_id' \(mapping key \[columns\] event_id\); .*"
        r"column 'item_id' \(mapping key \[columns\] item_id\).* of mapping 'simulator' .*"
        r"the file has columns: 'ts', 'user_id'\. Fix the mapping or the file",
    ),
    ("empty.csv", lambda p, h: p.write_bytes(b""), r"the file is empty \(0 bytes\)"),
    (
        "trunc.csv.gz",
        lambda p, h: _truncated_gzip(p),
        r"Unexpected end of GZIP stream.*the compressed file is truncated or corrupt",
    ),
    ("bad.parquet", lambda p, h: _corrupt_parquet(p), r"cannot read the file"),
    (
        "bad.jsonl",
        lambda p, h: p.write_text('{"event_id": "e1", "ts": \n{oops}\n'),
        r"cannot read the file: .*(JSON|json)",
    ),
    ("binary.csv", lambda p, h: p.write_bytes(bytes(range(256)) * 40), r"cannot read the file"),
    (
        "reserved.csv",
        lambda p, h: h.write_csv(p, [h.canon(0)], (*h.header, "__offrec_x")),
        r"column '__offrec_x' starts with '__offrec_', which ingest reserves",
    ),
    (
        "mostly_bad.csv",
        lambda p, h: h.write_csv(p, [h.canon(0)] + [h.canon(i, ts="?") for i in range(1, 4)]),
        r"3 of 4 rows rejected \(75%: 3 bad_ts\); e.g. row 2: ts \"\?\" is not a timestamp\. "
        r"That is more than \[ingest\] max_rejected_share = 0.5",
    ),
]


@pytest.mark.parametrize(("name", "make", "message"), FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_bad_file_is_refused_and_others_load(
    tmp_path: Path, wh: Path, h, name, make, message: str
) -> None:
    raw = tmp_path / "raw"
    good = h.write_csv(raw / "a_good.csv", [h.canon(0)])
    _ = good
    ingest_paths(wh, raw, CFG)
    before = h.snapshot(wh)
    bad = raw / name
    make(bad, h)
    later = h.write_csv(raw / "z_good.csv", [h.canon(1)])
    report = ingest_paths(wh, raw, IngestConfig(threads=1, memory_limit="1GB"))
    by_name = {Path(f.path).name: f for f in report.files}
    assert by_name[name].status == "failed"
    assert re.search(message, by_name[name].message), by_name[name].message
    assert str(bad.resolve()) == by_name[name].path
    assert by_name["z_good.csv"].status == "loaded"
    assert by_name["a_good.csv"].status == "unchanged"
    assert not report.ok
    with pytest.raises(IngestError, match=f"1 of 3 file\\(s\\) refused:\n  {bad.resolve()}"):
        report.raise_for_failures()
    after = h.snapshot(wh)
    # the refused file left no trace; only z_good.csv was added
    assert [r for r in after["events"] if r not in before["events"]] == [
        r for r in after["events"] if r[11] == str(later.resolve())
    ]
    assert all(str(bad.resolve()) not in repr(rows) for rows in after.values())


def test_unusable_ts_column_type(tmp_path: Path, wh: Path) -> None:
    pq = tmp_path / "a.parquet"
    con = duckdb.connect()
    con.sql(
        "SELECT true AS ts, 'u' AS user_id, 'i' AS item_id, 'view' AS event_type"
    ).write_parquet(str(pq))
    con.close()
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
    report = ingest_paths(wh, pq, CFG, mapping=mapping)
    assert report.files[0].status == "failed"
    assert "column 'ts' ([columns] ts) has type BOOLEAN" in report.files[0].message


# --------------------------------------------------------------------------------------------
# run-level errors


@pytest.mark.parametrize(
    ("inputs", "kwargs", "error", "message"),
    [
        ("nope", {}, IngestError, r"input .*nope: no such file or directory"),
        ("*.nomatch", {}, IngestError, r"no files match this pattern"),
        ("data.xlsx", {}, IngestError, r"cannot tell the format from the file name"),
        ("emptydir", {}, IngestError, r"no raw log files found"),
        ("a.csv", {"date": "2024-13-01"}, IngestError, r"write the partition date as YYYY-MM-DD"),
        (
            "a.csv",
            {
                "mapping": parse_mapping(
                    {
                        "columns": {
                            "ts": "ts",
                            "user_id": "user_id",
                            "item_id": "item_id",
                            "event_type": "event_type",
                        },
                        "values": {"ts_timezone": "Mars/Olympus"},
                    }
                )
            },
            MappingError,
            r"ts_timezone = 'Mars/Olympus' is not a time zone name",
        ),
    ],
)
def test_run_level_errors(
    tmp_path: Path, wh: Path, h, monkeypatch, inputs, kwargs, error, message
) -> None:
    monkeypatch.chdir(tmp_path)
    h.write_csv(tmp_path / "a.csv", [h.canon(0)])
    (tmp_path / "data.xlsx").write_bytes(b"PK")
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "emptydir" / "readme.md").write_text("x")
    with pytest.raises(error, match=message):
        ingest_paths(wh, inputs if "*" in inputs else tmp_path / inputs, CFG, **kwargs)


def test_locked_warehouse_gives_a_clear_message(tmp_path: Path, wh: Path, h) -> None:
    open_warehouse(wh).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import duckdb, sys, time
            con = duckdb.connect({str(wh)!r})
            print("locked", flush=True)
            sys.stdin.readline()
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        src = h.write_csv(tmp_path / "a.csv", [h.canon(0)])
        with pytest.raises(
            WarehouseLockedError,
            match=rf"warehouse {wh} is locked by another process \(held by PID "
            rf"{holder.pid}\); wait for it to finish",
        ):
            ingest_paths(wh, src, CFG)
        with pytest.raises(WarehouseLockedError, match="is locked by another process"):
            open_warehouse(wh, read_only=True)
    finally:
        holder.communicate("\n", timeout=30)
    assert WarehouseLockedError.exit_code == 4


def test_not_a_database_file(tmp_path: Path, h) -> None:
    fake = tmp_path / "w.duckdb"
    fake.write_text("this is not a database\n" * 100)
    src = h.write_csv(tmp_path / "a.csv", [h.canon(0)])
    with pytest.raises(IngestError, match=rf"warehouse {fake}: cannot open it"):
        ingest_paths(fake, src, CFG)
    with pytest.raises(IngestError, match="is a directory"):
        ingest_paths(tmp_path, src, CFG)


def test_events_table_with_another_schema_is_refused(tmp_path: Path, h) -> None:
    wh = tmp_path / "w.duckdb"
    con = duckdb.connect(str(wh))
    con.execute("CREATE TABLE events (event_id VARCHAR, ts TIMESTAMP, user_id VARCHAR)")
    con.close()
    src = h.write_csv(tmp_path / "a.csv", [h.canon(0)])
    with pytest.raises(
        IngestError,
        match=r"the warehouse's events table does not have the "
        r"expected columns; it has \(event_id VARCHAR, ts "
        r"TIMESTAMP, user_id VARCHAR\)",
    ):
        ingest_paths(wh, src, CFG)
