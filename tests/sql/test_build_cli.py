"""``offrec build`` in-process: prints the summary and version; maps errors to exit codes."""

from __future__ import annotations

import json

import duckdb
from typer.testing import CliRunner

from offrec.cli import app

ROWS = [
    dict(t=0, session="s1", type="impression", item="A", position=0, propensity=0.5, request="a"),
    dict(t=2, session="s1", type="click", item="A", request="a"),
    dict(t=9, session="s1", type="impression", item="B", position=1, propensity=0.5, request="b"),
    dict(
        t=50,
        session="s2",
        user="u2",
        type="impression",
        item="A",
        position=0,
        propensity=0.4,
        request="c",
    ),
]


def _project(tmp_path, make_events, rows=ROWS, config="[build]\ntop_n = 5\n"):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    make_events(con, rows)
    con.close()
    (tmp_path / "offrec.toml").write_text(config)
    return tmp_path / "offrec.toml"


def test_build_prints_summary_and_writes_json(tmp_path, make_events_fn):
    cfg = _project(tmp_path, make_events_fn)
    runner = CliRunner()
    out = tmp_path / "summary.json"
    res = runner.invoke(app, ["build", "-c", str(cfg), "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "episodes" in res.output and "decisions" in res.output
    version = json.loads(out.read_text())["version"]
    assert f"dataset version: {version}" in res.output
    assert (tmp_path / "datasets" / version / "transitions.parquet").exists()
    again = runner.invoke(app, ["build", "-c", str(cfg)])
    assert again.exit_code == 0 and "replaced the earlier build" in again.output


def test_build_exit_codes(tmp_path, make_events_fn):
    runner = CliRunner()
    cfg = _project(tmp_path, make_events_fn, config="[build]\ntop_n = 0\n")
    bad_cfg = runner.invoke(app, ["build", "-c", str(cfg)])
    assert bad_cfg.exit_code == 2 and "top_n = 0: must be >= 1" in bad_cfg.output
    cfg.write_text("")
    missing = runner.invoke(app, ["build", "-c", str(cfg), "-w", str(tmp_path / "x.duckdb")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    bad_date = runner.invoke(app, ["build", "-c", str(cfg), "--end-date", "soon"])
    assert bad_date.exit_code == 2 and "--end-date: end_date = 'soon'" in bad_date.output


def test_gate_failure_exits_3(tmp_path, make_events_fn):
    rows = [
        *ROWS,
        dict(
            t=60,
            session="s3",
            user="u3",
            type="impression",
            item="B",
            position=0,
            propensity=2.0,
            request="z",
        ),
    ]
    cfg = _project(tmp_path, make_events_fn, rows=rows)
    res = CliRunner().invoke(app, ["build", "-c", str(cfg)])
    assert res.exit_code == 3, res.output
    assert "dq_propensity_range" in res.output and "rolled back" in res.output
