"""Writing logs: formats, gzip, date partitions, dropped columns, determinism, the CLI."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from offrec.cli import app
from offrec.simulator import (
    RAW_SCHEMA,
    SimulatorConfig,
    load_simulation_config,
    simulate_events,
    write_logs,
)
from offrec.simulator.errors import SimulatorError

N = 300
CFG = SimulatorConfig(n_sessions=N, seed=4)
runner = CliRunner()


@pytest.fixture(scope="module")
def reference() -> pa.Table:
    return simulate_events(CFG).events


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([("ts", "ascending"), ("event_id", "ascending")])


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_parquet_holds_exactly_the_simulated_events(tmp_path: Path, reference: pa.Table) -> None:
    summary = write_logs(tmp_path / "out", CFG)
    assert [p.name for p in summary.files] == ["events.parquet"]
    table = pq.read_table(summary.files[0])
    assert table.schema.equals(RAW_SCHEMA, check_metadata=False)
    assert _sorted(table).equals(reference)
    assert summary.n_events == reference.num_rows and summary.n_sessions == N
    assert load_simulation_config(tmp_path / "out") == CFG


@pytest.mark.parametrize(
    ("fmt", "compress", "partition"),
    [
        ("parquet", "gzip", True),
        ("csv", "gzip", False),
        ("csv", "none", True),
        ("jsonl", "gzip", True),
        ("jsonl", "none", False),
    ],
)
def test_same_seed_same_bytes_in_every_format(
    tmp_path: Path, fmt: str, compress: str, partition: bool
) -> None:
    cfg = dataclasses.replace(CFG, format=fmt, compress=compress, partition_by_date=partition)
    a = write_logs(tmp_path / "a", cfg)
    b = write_logs(tmp_path / "b", cfg)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    write_logs(tmp_path / "c", dataclasses.replace(cfg, seed=5))
    assert _files(tmp_path / "a") != _files(tmp_path / "c")
    ext = {"parquet": ".parquet", "csv": ".csv", "jsonl": ".jsonl"}[fmt]
    if compress == "gzip" and fmt != "parquet":
        ext += ".gz"
    assert all(p.name.endswith(ext) for p in a.files) and len(a.files) == len(b.files)
    if partition:
        assert len(a.files) >= 20 and all(p.parent.name.startswith("dt=2024-01-") for p in a.files)


def _read_with_duckdb(summary, fmt: str) -> pa.Table:
    files = [str(p) for p in summary.files]
    reader = {"csv": "read_csv", "jsonl": "read_json", "parquet": "read_parquet"}[fmt]
    con = duckdb.connect()
    return con.sql(
        f"select * exclude (ts), epoch_ms(ts::timestamptz) as ts_ms from {reader}($files) "
        "order by ts_ms, event_id",
        params={"files": files},
    ).to_arrow_table()


@pytest.mark.parametrize(("fmt", "compress"), [("csv", "gzip"), ("jsonl", "none")])
def test_text_formats_round_trip_values(
    tmp_path: Path, reference: pa.Table, fmt: str, compress: str
) -> None:
    cfg = dataclasses.replace(CFG, format=fmt, compress=compress)
    summary = write_logs(tmp_path / fmt, cfg)
    back = _read_with_duckdb(summary, fmt)
    ref = reference
    ts_ms = ref.column("ts").cast(pa.int64()).to_numpy() // 1000
    np.testing.assert_array_equal(back.column("ts_ms").to_numpy(), ts_ms)
    for name in ("event_id", "user_id", "session_id", "event_type", "item_id", "request_id"):
        assert back.column(name).to_pylist() == ref.column(name).to_pylist(), name
    for name in ("position", "propensity", "price"):
        # floats are written in shortest round-trip form: equal bit for bit after parsing
        assert back.column(name).to_pylist() == ref.column(name).to_pylist(), name


def test_jsonl_lines_are_json_objects_in_schema_order(tmp_path: Path) -> None:
    cfg = dataclasses.replace(CFG, format="jsonl", compress="gzip", drop_propensity=True)
    summary = write_logs(tmp_path / "j", cfg)
    with gzip.open(summary.files[0], "rt", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    assert len(lines) == summary.n_events
    rows = [json.loads(line) for line in lines[:50]]
    expected = [f.name for f in RAW_SCHEMA if f.name != "propensity"]
    assert all(list(r) == expected for r in rows)
    assert rows[0]["ts"].endswith("Z") and rows[0]["ts"][10] == "T"
    clicks = [r for r in rows if r["event_type"] != "impression"]
    assert clicks and all(r["position"] is None for r in clicks)


def test_partitions_hold_their_dates_and_drop_columns(tmp_path: Path, reference) -> None:
    cfg = dataclasses.replace(
        CFG, partition_by_date=True, drop_session_id=True, drop_propensity=True
    )
    summary = write_logs(tmp_path / "p", cfg)
    parts = []
    for path in summary.files:
        assert path.name == "part-0.parquet"
        table = pq.read_table(path)
        assert "session_id" not in table.column_names
        assert "propensity" not in table.column_names
        day = path.parent.name.removeprefix("dt=")
        dates = {str(d) for d in table.column("ts").cast(pa.date32()).to_pylist()}
        assert dates == {day}
        parts.append(table)
    merged = _sorted(pa.concat_tables(parts))
    assert merged.equals(reference.drop_columns(["session_id", "propensity"]))
    assert summary.first_ts.startswith(summary.files[0].parent.name[3:])


def test_output_directory_rules(tmp_path: Path) -> None:
    out = tmp_path / "logs"
    write_logs(out, dataclasses.replace(CFG, partition_by_date=True))
    with pytest.raises(SimulatorError, match=r"already holds simulated logs .* --overwrite"):
        write_logs(out, CFG)
    summary = write_logs(out, CFG, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["events.parquet", "offrec-simulation.toml"]
    assert summary.files == [out / "events.parquet"]
    (out / "notes.txt").write_text("mine")
    with pytest.raises(
        SimulatorError,
        match=r"holds files offrec simulate did not write "
        r"\(notes.txt\)",
    ):
        write_logs(out, CFG, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(SimulatorError, match="exists and is not a directory"):
        write_logs(a_file, CFG)
    with pytest.raises(SimulatorError, match="no simulation manifest"):
        load_simulation_config(tmp_path)


def test_cli_simulate_uses_config_defaults_and_flags(tmp_path: Path) -> None:
    config = tmp_path / "offrec.toml"
    config.write_text('[paths]\ninputs = "raw"\n\n[simulate]\nn_sessions = 120\nformat = "csv"\n')
    result = runner.invoke(app, ["simulate", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "raw" / "events.csv").exists()
    assert "sessions: 120 of 30 users" in result.output
    assert "time range: 2024-01-" in result.output and "events: " in result.output
    out = tmp_path / "flags"
    result = runner.invoke(
        app,
        [
            "simulate",
            "-c",
            str(config),
            "--out",
            str(out),
            "--sessions",
            "50",
            "--seed",
            "9",
            "--format",
            "jsonl",
            "--compress",
            "gzip",
            "--partition-by-date",
            "--drop-session-id",
            "--drop-propensity",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "(partitioned by date)" in result.output
    files = sorted(out.glob("dt=*/part-0.jsonl.gz"))
    assert files
    with gzip.open(files[0], "rt") as fh:
        row = json.loads(fh.readline())
    assert "session_id" not in row and "propensity" not in row
    saved = load_simulation_config(out)
    assert (saved.n_sessions, saved.seed, saved.format) == (50, 9, "jsonl")


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--format", "xml"], "--format xml: format = 'xml': must be one of parquet, csv, jsonl"),
        (["--sessions", "0"], "--sessions 0: n_sessions = 0: must be >= 1"),
        (["--compress", "zip"], "--compress zip: compress = 'zip': must be one of none, gzip"),
    ],
)
def test_cli_bad_flags_exit_2(tmp_path: Path, args: list[str], match: str) -> None:
    result = runner.invoke(app, ["simulate", "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2
    assert match in result.output
    assert "Traceback" not in result.output


def test_cli_refuses_to_overwrite_without_the_flag(tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert runner.invoke(app, ["simulate", "--out", str(out), "-n", "20"]).exit_code == 0
    again = runner.invoke(app, ["simulate", "--out", str(out), "-n", "20"])
    assert again.exit_code == 2 and "pass --overwrite" in again.output
    assert (
        runner.invoke(app, ["simulate", "--out", str(out), "-n", "20", "--overwrite"]).exit_code
        == 0
    )
