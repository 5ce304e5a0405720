"""``offrec ingest`` in-process: the per-file table, exit codes, options and config."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from typer.testing import CliRunner

from offrec.cli import app

runner = CliRunner()


def _config(tmp_path: Path, extra: str = "") -> Path:
    cfg = tmp_path / "offrec.toml"
    cfg.write_text(
        textwrap.dedent(f"""
        [paths]
        inputs = "raw"
        warehouse = "wh/warehouse.duckdb"

        [ingest]
        threads = 1
        memory_limit = "1GB"
        {extra}
    """)
    )
    return cfg


def _statuses(output: str) -> list[str]:
    """The status column of the per-file lines of the table."""
    known = {"loaded", "replaced", "unchanged", "failed"}
    return [
        p[1] for p in (line.split() for line in output.splitlines()) if len(p) > 1 and p[1] in known
    ]


def test_ingest_prints_a_table_and_is_idempotent(tmp_path: Path, h) -> None:
    cfg = _config(tmp_path)
    h.write_csv(tmp_path / "raw" / "a.csv", [h.canon(0), h.canon(1), h.canon(1)])
    h.write_csv(tmp_path / "raw" / "b.csv", [h.canon(2), h.canon(3, price="-1")])
    result = runner.invoke(app, ["ingest", "-c", str(cfg)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["file", "status", "read", "loaded", "rejected", "duplicate"]
    a_line = next(line for line in lines if "a.csv" in line)
    assert a_line.split()[1:] == ["loaded", "3", "2", "0", "1"]
    total = next(line for line in lines if line.startswith("total"))
    assert total.split()[-4:] == ["5", "3", "1", "1"]
    assert "rejected in" in result.output and "1 bad_price" in result.output
    assert (tmp_path / "wh" / "warehouse.duckdb").exists()
    again = runner.invoke(app, ["ingest", "-c", str(cfg), "--check"])
    assert again.exit_code == 0, again.output
    statuses = _statuses(again.output)
    assert statuses == ["unchanged", "unchanged"]
    assert "nothing new: every file is unchanged since it was loaded" in again.output
    forced = runner.invoke(app, ["ingest", "-c", str(cfg), "--force"])
    assert forced.exit_code == 0, forced.output
    statuses = _statuses(forced.output)
    assert statuses == ["replaced", "replaced"]
    assert "checks: all passed" in again.output


def test_refused_file_exits_2_after_loading_the_others(tmp_path: Path, h) -> None:
    cfg = _config(tmp_path)
    h.write_csv(tmp_path / "raw" / "a.csv", [h.canon(0)])
    h.write_csv(tmp_path / "raw" / "b.csv", [{"ts": "2024-01-01"}], ("ts",))
    h.write_csv(tmp_path / "raw" / "c.csv", [h.canon(2)])
    result = runner.invoke(app, ["ingest", "-c", str(cfg)])
    assert result.exit_code == 2, result.output
    assert "refused" in result.output and "b.csv: missing column 'event_id'" in result.output
    assert "1 of 3 file(s) refused (see above); the other files were loaded" in result.output
    assert "Traceback" not in result.output
    wh = tmp_path / "wh" / "warehouse.duckdb"
    assert sorted(r[0] for r in h.query(wh, "SELECT event_id FROM events")) == ["e00000", "e00002"]


def test_options_override_config(tmp_path: Path, h) -> None:
    cfg = _config(tmp_path)
    rr = tmp_path / "elsewhere" / "dt=2015-06-02" / "events.csv"
    h.write_csv(
        rr,
        [
            {
                "timestamp": "1433221332117",
                "visitorid": "257597",
                "event": "view",
                "itemid": "355908",
                "transactionid": None,
            }
        ],
        ("timestamp", "visitorid", "event", "itemid", "transactionid"),
    )
    other_wh = tmp_path / "other.duckdb"
    result = runner.invoke(
        app,
        [
            "ingest",
            "-c",
            str(cfg),
            "-i",
            str(tmp_path / "elsewhere"),
            "--date",
            "2015-06-02",
            "-w",
            str(other_wh),
            "--mapping",
            "retailrocket",
        ],
    )
    assert result.exit_code == 0, result.output
    assert h.query(other_wh, "SELECT user_id, event_type, item_id, extra FROM events") == [
        ("257597", "view", "355908", '{"transactionid":null}')
    ]
    bad = runner.invoke(app, ["ingest", "-c", str(cfg), "--mapping", "shopify"])
    assert bad.exit_code == 2
    assert "--mapping: mapping = 'shopify': not a built-in mapping" in bad.output
    missing = runner.invoke(app, ["ingest", "-c", str(cfg), "-i", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2
    assert "no such file or directory" in missing.output


def test_locked_warehouse_exits_4(tmp_path: Path, h) -> None:
    cfg = _config(tmp_path)
    h.write_csv(tmp_path / "raw" / "a.csv", [h.canon(0)])
    wh = tmp_path / "wh" / "warehouse.duckdb"
    wh.parent.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys\n"
            f"c = duckdb.connect({str(wh)!r})\n"
            "print('locked', flush=True)\nsys.stdin.readline()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        result = runner.invoke(app, ["ingest", "-c", str(cfg)])
    finally:
        holder.communicate("\n", timeout=30)
    assert result.exit_code == 4, result.output
    assert "is locked by another process (held by PID" in result.output
    assert "Traceback" not in result.output


def test_tty_progress_redraws_one_line(capsys) -> None:
    from offrec.commands.ingest import tty_progress

    show, end = tty_progress()
    first, second = "ingest [####....] 1/2 files, 10 rows  a.csv", "ingest done"
    show(first)
    show(second)
    end()
    # the shorter second line is padded so no characters of the first remain visible
    assert capsys.readouterr().err == f"\r{first}\r{second}{' ' * (len(first) - len(second))}\n"
