"""Issue 9.3 end to end: with [ingest] pseudonymise on, no raw user id reaches any output.

One real ``offrec nightly`` run (simulate -> ingest -> build -> train -> evaluate -> report) on
a tiny simulation whose user ids are known from the raw files; then every table of the
warehouse, every file under datasets/ and runs/ (Parquet read value by value), every JSON log
line and the report HTML are searched for them, while user-history features stay non-trivial.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from ingest import IngestConfig, pseudonymise_ids
from offrec.config import load_config
from offrec.errors import ConfigError
from offrec.simulator import write_logs

KEY = "3f0c9a7d51e2b8a4c6d0e9f1a2b3c4d5"

CONFIG = """\
[paths]
inputs = "raw"

[simulate]
seed = 5
n_sessions = 240
sessions_per_user = 4.0
n_items = 20
n_days = 6
max_steps = 8
format = "csv"
partition_by_date = true
drop_session_id = true

[ingest]
pseudonymise = ["user_id", "request_id", "event_id"]

[build]
top_n = 10

[train]
algorithms = ["bc"]
n_steps = 60
n_steps_per_epoch = 30
hidden_units = [16]
batch_size = 32
threads = 1

[evaluate]
n_bootstrap = 20
ground_truth_sessions = 100
fqe_enabled = false

[evaluate.reward_model]
kind = "ridge"
"""

# the simulator writes user ids as "u" + 7 digits; request and event ids embed them
RAW_ID = re.compile(r"u[0-9]{7}")


def _raw_user_ids(raw: Path) -> set[str]:
    con = duckdb.connect()
    try:
        rows = con.execute(
            "SELECT DISTINCT user_id FROM read_csv($p, all_varchar = true)",
            {"p": str(raw / "**" / "*.csv")},
        ).fetchall()
    finally:
        con.close()
    return {str(r[0]) for r in rows}


def _leaks_in_text(text: str, ids: set[str]) -> set[str]:
    return {m for m in RAW_ID.findall(text) if m in ids}


def _warehouse_leaks(path: Path, ids: set[str]) -> dict[str, set[str]]:
    """Raw ids found in any value of any column of any table or view (cast to text)."""
    found: dict[str, set[str]] = {}
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables ORDER BY 1"
            ).fetchall()
        ]
        assert {"events", "rejected_events", "transitions", "episodes", "ope_results"} <= set(
            tables
        )
        for t in tables:
            cols = [
                r[0]
                for r in con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = $t",
                    {"t": t},
                ).fetchall()
            ]
            for c in cols:
                hits = con.execute(
                    f'SELECT DISTINCT unnest(regexp_extract_all(CAST("{c}" AS VARCHAR), '
                    f"'u[0-9]{{7}}')) FROM \"{t}\""
                ).fetchall()
                leaked = {str(h[0]) for h in hits} & ids
                if leaked:
                    found[f"{t}.{c}"] = leaked
    finally:
        con.close()
    return found


def _file_leaks(root: Path, ids: set[str]) -> dict[str, set[str]]:
    """Raw ids in the bytes of every file under ``root``, and in every Parquet value."""
    found: dict[str, set[str]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        leaked = _leaks_in_text(path.read_bytes().decode("latin-1"), ids)
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            for name in table.column_names:
                values = table.column(name).to_pylist()
                leaked |= _leaks_in_text(json.dumps(values, default=str), ids)
        if leaked:
            found[str(path)] = leaked
    return found


@pytest.mark.slow
def test_nightly_with_pseudonymised_users_leaks_no_raw_id(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    cfg_path = project / "offrec.toml"
    cfg_path.write_text(CONFIG)
    cfg = load_config(cfg_path)
    write_logs(cfg.paths.inputs, cfg.simulate)
    ids = _raw_user_ids(cfg.paths.inputs)
    assert len(ids) > 20 and all(RAW_ID.fullmatch(i) for i in ids)
    # the raw files themselves do hold the ids: the searches below can find them
    assert _file_leaks(cfg.paths.inputs, ids)

    env = {**os.environ, "OMP_NUM_THREADS": "1", "OFFREC_PSEUDONYM_KEY": KEY}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "offrec",
            "nightly",
            "-c",
            str(cfg_path),
            "--run-id",
            "pz",
            "--log-format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    log_lines = [json.loads(line) for line in out.stderr.splitlines() if line.startswith("{")]
    assert any(rec.get("msg") == "run finished" for rec in log_lines)
    assert not _leaks_in_text(out.stderr + out.stdout, ids)

    report = project / "runs" / "pz" / "report.html"
    assert report.exists()
    assert not _leaks_in_text(report.read_text(), ids)
    # and the report tells its reader the ids are pseudonyms
    assert "were pseudonymised at ingest (keyed HMAC-SHA256" in report.read_text()
    assert _warehouse_leaks(cfg.paths.warehouse, ids) == {}
    assert _file_leaks(cfg.paths.datasets, ids) == {}
    assert _file_leaks(cfg.paths.runs, ids) == {}
    # the key is stored nowhere either
    for root in (cfg.paths.datasets, cfg.paths.runs):
        assert not any(
            KEY in p.read_bytes().decode("latin-1") for p in root.rglob("*") if p.is_file()
        )
    assert KEY not in out.stderr + out.stdout

    con = duckdb.connect(str(cfg.paths.warehouse), read_only=True)
    try:
        users = {r[0] for r in con.execute("SELECT DISTINCT user_id FROM events").fetchall()}
        returning = con.execute(
            "SELECT count(*) FILTER (WHERE NOT is_new_user), count(*) FROM episodes"
        ).fetchone()
        files = con.execute("SELECT count(*) FROM ingest_log").fetchone()[0]
        truths = con.execute(
            "SELECT count(*) FROM ope_results WHERE estimator = 'dr' AND ground_truth IS NOT NULL"
        ).fetchone()[0]
        history = con.execute(
            'SELECT max(state[o."offset" + 1]) FROM transitions, feature_spec AS o '
            "WHERE o.name = 'hist_sessions' AND o.dataset_version = transitions.dataset_version"
        ).fetchone()[0]
    finally:
        con.close()
    # the stored ids are exactly the pseudonyms of the raw ones, one per user
    ingest_cfg = IngestConfig(pseudonymise=("user_id",))
    os.environ["OFFREC_PSEUDONYM_KEY"] = KEY
    try:
        assert users == set(pseudonymise_ids(sorted(ids), ingest_cfg))
    finally:
        del os.environ["OFFREC_PSEUDONYM_KEY"]
    # user history still links sessions across days (files): returning users exist
    assert files >= 5
    assert returning[0] > 0.2 * returning[1]
    assert history >= 1
    # simulator ground truth still works: evaluation maps the pseudonyms back with the key
    assert truths > 0


def test_bad_pseudonymise_config_is_a_config_error(tmp_path: Path) -> None:
    cases = [
        ('pseudonymise = ["price"]', r"\[ingest\].*price cannot be pseudonymised"),
        ('pseudonymise = "user_id"', r"\[ingest\] pseudonymise = \"user_id\": must be a list"),
        ('pseudonymise = ["user_id", "USER_ID"]', r"listed twice"),
        ('pseudonym_key_env = "MY-KEY"', r"not an environment variable name"),
    ]
    for line, match in cases:
        path = tmp_path / "offrec.toml"
        path.write_text(f"[ingest]\n{line}\n")
        with pytest.raises(ConfigError, match=match):
            load_config(path)
