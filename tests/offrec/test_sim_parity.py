"""SQL/simulator parity: the build's offline states equal the simulator's online states.

simulate -> Parquet -> DuckDB ``events`` -> ``sql.build.build_dataset`` -> compare every
decision's ``transitions.state`` with the state the simulator computed online for the same
impression (``record_states=True`` with the build's action space and settings). Also checks
that the build's rewards and propensities are the simulator's and that the per-decision ground
truth can be called with ``transitions`` columns.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import duckdb
import numpy as np
import pytest

from offrec.simulator import (
    SimulatorConfig,
    StateOptions,
    expected_rewards,
    simulate_events,
    write_logs,
)

build = pytest.importorskip("sql.build")
sql_config = pytest.importorskip("sql.config")
from sql.dataset import ActionSpace  # noqa: E402

CFG = SimulatorConfig(n_sessions=800, seed=3, n_days=6, sessions_per_user=5.0)


def _warehouse(tmp_path: Path, cfg: SimulatorConfig) -> duckdb.DuckDBPyConnection:
    write_logs(tmp_path / "raw", cfg)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute(
        "create table events as select event_id, (ts at time zone 'UTC')::timestamp as ts, "
        "user_id, session_id, event_type, item_id, position, propensity, price, request_id "
        "from read_parquet($glob)",
        {"glob": str(tmp_path / "raw" / "*.parquet")},
    )
    return con


def _action_space(con: duckdb.DuckDBPyConnection, version: str) -> ActionSpace:
    rows = con.execute(
        "select item_id from actions where dataset_version = $v and not is_other order by action",
        {"v": version},
    ).fetchall()
    top = tuple(r[0] for r in rows)
    seen = {r[0] for r in con.execute("select distinct item_id from events").fetchall()}
    return ActionSpace(top, tuple(sorted(seen - set(top))))


@pytest.mark.parametrize(
    "build_kwargs",
    [
        {"top_n": 30, "lookback_days": 2.0},
        {"top_n": 12, "last_k": 2, "item_encoding": "index", "lookback_days": 30.0},
        {"top_n": 60, "last_k": 4, "lookback_days": 0.5},
    ],
)
def test_offline_states_equal_online_states(tmp_path: Path, build_kwargs: dict) -> None:
    con = _warehouse(tmp_path, CFG)
    bcfg = dataclasses.replace(sql_config.BuildConfig(), **build_kwargs)
    result = build.build_dataset(con, bcfg, datasets_dir=tmp_path / "datasets")
    space = _action_space(con, result.version)
    assert space.n_actions == min(bcfg.top_n, 100) + 1
    logs = simulate_events(
        CFG, record_states=True, action_space=space, state_options=StateOptions.from_build(bcfg)
    )
    rows = con.execute(
        "select event_id, state, propensity, r_click, r_cart, r_purchase, r_revenue, user_id, "
        "position, action from transitions where dataset_version = $v order by event_id",
        {"v": result.version},
    ).fetchall()
    n_impressions = logs.summary.events_by_type["impression"]
    assert len(rows) == n_impressions, "every impression is a decision"
    ids = [r[0] for r in rows]
    offline = np.array([r[1] for r in rows], dtype=np.float64)
    online = logs.states.lookup(ids)
    assert offline.shape == online.shape == (n_impressions, len(logs.states.names))
    # states are stored as FLOAT (float32) by the build
    np.testing.assert_allclose(offline, online.astype(np.float32), rtol=1e-6, atol=1e-6)

    # rewards and propensities attributed by the build are the simulator's responses
    events = logs.to_pandas()
    counts = events.pivot_table(
        index="request_id", columns="event_type", values="event_id", aggfunc="count", fill_value=0
    )
    req = [i.rsplit("-", 1)[0] for i in ids]
    for col, kind in ((3, "click"), (4, "add_to_cart"), (5, "purchase")):
        np.testing.assert_array_equal([r[col] for r in rows], counts.loc[req, kind].to_numpy())
    imp = events.set_index("event_id").loc[ids]
    np.testing.assert_allclose([r[2] for r in rows], imp.propensity.to_numpy(), rtol=1e-12)

    # per-decision truth from transitions columns: realised rewards scatter around it
    users = np.array([r[7] for r in rows], dtype=object)
    positions = np.array([r[8] for r in rows])
    actions = np.array([r[9] for r in rows])
    matrix = expected_rewards(users, positions, space, config=CFG)
    top = actions < space.other
    realised = np.array([r[3] + 2 * r[4] + 5 * r[5] for r in rows], dtype=np.float64)
    resid = realised[top] - matrix[np.flatnonzero(top), actions[top]]
    assert abs(resid.mean()) < 4 * resid.std(ddof=1) / math.sqrt(resid.size)


def test_parity_through_ingest_without_session_ids(tmp_path: Path) -> None:
    """CSV.gz by date, no session_id: ingest re-sessionises by the 30-minute gap."""
    load = pytest.importorskip("ingest.load")
    cfg = dataclasses.replace(
        CFG,
        n_sessions=400,
        format="csv",
        compress="gzip",
        partition_by_date=True,
        drop_session_id=True,
    )
    write_logs(tmp_path / "raw", cfg)
    report = load.ingest_paths(tmp_path / "warehouse.duckdb", tmp_path / "raw")
    assert report.files and all(f.status == "loaded" for f in report.files)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    n_sessions = con.execute("select count(distinct session_id) from events").fetchone()[0]
    assert n_sessions == 400, "ingest's sessions are the simulator's sessions"
    bcfg = dataclasses.replace(sql_config.BuildConfig(), top_n=25, lookback_days=3.0)
    result = build.build_dataset(con, bcfg, datasets_dir=tmp_path / "datasets")
    space = _action_space(con, result.version)
    logs = simulate_events(
        cfg, record_states=True, action_space=space, state_options=StateOptions.from_build(bcfg)
    )
    rows = con.execute(
        "select event_id, state from transitions where dataset_version = $v",
        {"v": result.version},
    ).fetchall()
    assert len(rows) == logs.summary.n_decisions
    offline = np.array([r[1] for r in rows], dtype=np.float64)
    online = logs.states.lookup([r[0] for r in rows])
    np.testing.assert_allclose(offline, online.astype(np.float32), rtol=1e-6, atol=1e-6)
