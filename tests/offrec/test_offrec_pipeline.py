"""The nightly job end to end on a small simulation: outputs, idempotence, resume, lock, faults.

These are the slowest tests of the suite (each pipeline run trains and evaluates for real on a
few hundred sessions); they share one module-scoped reference run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from offrec.cli import app
from offrec.config import load_config
from offrec.simulator import write_logs

pytestmark = pytest.mark.slow

SMALL_CONFIG = """\
[paths]
inputs = "raw"

[simulate]
seed = 3
n_sessions = 700
n_items = 30
partition_by_date = true

[build]
top_n = 20

[train]
algorithms = ["cql", "bc"]
n_steps = 300
n_steps_per_epoch = 100
hidden_units = [32, 32]
batch_size = 64
threads = 1

[evaluate]
n_bootstrap = 50
ground_truth_sessions = 200

[evaluate.fqe]
max_epochs = 3
steps_per_epoch = 50
hidden_units = [32]

[evaluate.reward_model]
kind = "ridge"

[nightly]
keep_runs = 3
"""

runner = CliRunner()
RUN = "test-night"


def make_project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    cfg_path = root / "offrec.toml"
    cfg_path.write_text(SMALL_CONFIG)
    cfg = load_config(cfg_path)
    write_logs(cfg.paths.inputs, cfg.simulate)
    return cfg_path


def nightly(cfg_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "offrec", "nightly", "-c", str(cfg_path), "--run-id", RUN, *extra],
        capture_output=True, text=True, timeout=900, env=env,
    )


def event_count(root: Path) -> tuple[int, int]:
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    try:
        total, distinct = con.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM events").fetchone()
        return int(total), int(distinct)
    finally:
        con.close()


def results(root: Path) -> pd.DataFrame:
    run_dir = root / "runs" / RUN
    table = pd.read_parquet(run_dir / "evaluation" / "ope_results.parquet")
    return table.sort_values(["policy", "estimator", "objective"], ignore_index=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ref")
    cfg_path = make_project(root)
    out = nightly(cfg_path)
    assert out.returncode == 0, out.stderr[-3000:]
    return root


def test_nightly_writes_every_output(reference: Path) -> None:
    run_dir = reference / "runs" / RUN
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "ok" and manifest["exit_code"] == 0
    assert {k: v["status"] for k, v in manifest["stages"].items()} == {
        s: "done" for s in ("ingest", "build", "train", "evaluate", "report")}
    assert manifest["dataset_version"] and manifest["simulated"] is True
    assert manifest["inputs"] and all("content_hash" in f or "hash" in str(f)
                                      for f in manifest["inputs"])
    for rel in ("report.html", "data_summary.json", "evaluation/ope_results.parquet",
                "evaluation/summary.json", "models/cql", "models/bc", "config.toml"):
        assert (run_dir / rel).exists(), rel
    assert (reference / "runs" / "index.html").exists()
    notes = json.loads((run_dir / "evaluation" / "summary.json").read_text())["notes"]
    assert any("interval_refits = 3 for honest FQE intervals" in n for n in notes), notes
    assert "interval_refits = 3 for honest FQE intervals" in (run_dir / "report.html").read_text()
    table = results(reference)
    assert set(table["policy"]) >= {"cql", "bc", "uniform", "most_popular", "behaviour"}
    assert {"dr", "ipw", "fqe", "wdr"} <= set(table["estimator"])
    assert table["ground_truth"].notna().any()
    con = duckdb.connect(str(reference / "warehouse.duckdb"), read_only=True)
    try:
        n_rows = con.execute("SELECT count(*) FROM ope_results WHERE run_id = "
                             "'test-night'").fetchone()[0]
        runs = con.execute("SELECT status FROM runs").fetchall()
    finally:
        con.close()
    assert n_rows == len(table)
    assert runs == [("ok",)]


def test_rerun_is_idempotent(reference: Path, tmp_path: Path) -> None:
    root = tmp_path / "p"
    shutil.copytree(reference, root)
    before = event_count(root)
    out = nightly(root / "offrec.toml")
    assert out.returncode == 0, out.stderr[-3000:]
    assert event_count(root) == before
    assert before[0] == before[1]  # no duplicated events
    pd.testing.assert_frame_equal(results(root), results(reference), check_exact=False,
                                  rtol=1e-6)


def test_second_concurrent_run_is_refused(reference: Path) -> None:
    from offrec.locking import JobLock

    cfg = load_config(reference / "offrec.toml")
    with JobLock(cfg.paths.runs / ".offrec.lock", command="test"):
        out = nightly(reference / "offrec.toml")
    assert out.returncode == 4
    assert "another offrec run holds the lock" in out.stderr


def _kill_during(cfg_path: Path, stage: str) -> None:
    """Start a nightly run, SIGKILL it once ``stage`` is running."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "offrec", "nightly", "-c", str(cfg_path), "--run-id", RUN],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    manifest = cfg_path.parent / "runs" / RUN / "manifest.json"
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"the run ended before {stage} could be interrupted")
            try:
                status = json.loads(manifest.read_text())["stages"][stage]["status"]
            except (OSError, ValueError, KeyError):
                status = None
            if status == "running":
                time.sleep(0.3 if stage == "ingest" else 0.5)
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"{stage} never started")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


@pytest.mark.parametrize("stage", ["ingest", "train"])
def test_killed_run_resumes_to_identical_outputs(reference: Path, tmp_path: Path,
                                                 stage: str) -> None:
    root = tmp_path / "p"
    cfg_path = make_project(root)
    _kill_during(cfg_path, stage)
    manifest = json.loads((root / "runs" / RUN / "manifest.json").read_text())
    assert manifest["stages"][stage]["status"] == "running"  # the kill left it unfinished
    assert not (root / "runs" / RUN / "report.html").exists()
    out = nightly(cfg_path, "--resume")
    assert out.returncode == 0, out.stderr[-3000:]
    total, distinct = event_count(root)
    assert total == distinct == event_count(reference)[0]
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    try:
        bad = con.execute("SELECT count(*) FROM ingest_log WHERE rows_read <> rows_loaded + "
                          "rows_rejected + rows_duplicate").fetchone()[0]
    finally:
        con.close()
    assert bad == 0
    pd.testing.assert_frame_equal(results(root), results(reference), check_exact=False,
                                  rtol=1e-6)


def test_corrupt_file_is_refused_while_others_load(tmp_path: Path) -> None:
    root = tmp_path / "p"
    cfg_path = make_project(root)
    parts = sorted((root / "raw").rglob("*.parquet"))
    assert len(parts) >= 2
    bad = parts[0].parent / "corrupt.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    out = runner.invoke(app, ["ingest", "-c", str(cfg_path)])
    assert "corrupt.parquet" in out.output
    total, _ = event_count(root)
    assert total > 0


def test_report_write_failure_exits_1_and_keeps_earlier_outputs(reference: Path,
                                                                tmp_path: Path) -> None:
    root = tmp_path / "p"
    shutil.copytree(reference, root)
    run_dir = root / "runs" / RUN
    before = (run_dir / "report.html").read_bytes()
    # root ignores permission bits: make the directory immutable instead where we can
    report = run_dir / "report.html"
    immutable = shutil.which("chattr") is not None and subprocess.run(
        ["chattr", "+i", str(report)], capture_output=True).returncode == 0
    if not immutable:
        os.chmod(run_dir, 0o555)
    try:
        if not immutable and os.access(run_dir, os.W_OK):
            pytest.skip("cannot make the run directory read-only here")
        out = nightly(root / "offrec.toml", "--stage", "report")
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(report)], check=True)
        else:
            os.chmod(run_dir, 0o755)
    assert out.returncode == 1, out.stderr[-2000:]
    assert str(report) in out.stderr or str(run_dir) in out.stderr
    assert report.read_bytes() == before


def test_nightly_explains_changes_and_splits_new_vs_returning(reference: Path) -> None:
    run_dir = reference / "runs" / RUN
    explain = json.loads((run_dir / "evaluation" / "explain.json").read_text())
    assert set(explain["policies"]) == {"cql", "bc", "uniform", "most_popular"}
    assert explain["categories"]["available"] is False  # simulator events carry none
    assert all(p["examples"] and p["gains"] for p in explain["policies"].values())
    segments = pd.read_parquet(run_dir / "evaluation" / "segments.parquet")
    counts = json.loads((run_dir / "evaluation" / "summary.json").read_text())["segments"]
    evaluated = {c["segment"] for c in counts["counts"] if c["evaluated"]}
    assert set(segments["segment"]) == evaluated and evaluated
    assert {"ipw", "snipw", "dr", "pdis"} <= set(segments["estimator"])
    cold = json.loads((run_dir / "data_summary.json").read_text())["cold_start"]
    assert cold["test_episodes"] == sum(c["n_episodes"] for c in counts["counts"])
    html = (run_dir / "report.html").read_text()
    assert 'id="changes"' in html and 'id="segments-table-1"' in html
    assert "Cold start: the test split against the train split" in html
