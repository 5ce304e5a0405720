"""Simulator logs -> dataset: logged propensities are the simulator's behaviour policy."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from sql.build import build_dataset
from sql.config import BuildConfig
from sql.dataset import load_action_space, load_transitions

simulator = pytest.importorskip("offrec.simulator")


def test_logged_propensities_match_the_behaviour_policy(tmp_path):
    cfg = simulator.SimulatorConfig(n_sessions=300, seed=5, n_days=3, n_items=40)
    logs = simulator.simulate_events(cfg)
    con = duckdb.connect()
    con.execute("SET threads = 1")
    con.register("simulated", logs.events)
    con.execute(
        "CREATE TABLE events AS SELECT event_id, timezone('UTC', ts) AS ts, user_id, session_id, "
        "event_type, item_id, position, propensity, price, request_id FROM simulated"
    )
    res = build_dataset(con, BuildConfig(top_n=30), datasets_dir=tmp_path)
    data = load_transitions(con, res.version)
    space = load_action_space(con, res.version)
    assert len(data) == logs.summary.n_decisions
    probs = simulator.behaviour_action_probs(data.user_ids, data.positions, space, config=cfg)
    assert probs.shape == (len(data), space.n_actions)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-9)
    named = data.actions < space.other
    assert named.mean() > 0.5
    np.testing.assert_allclose(
        data.propensities[named], probs[np.flatnonzero(named), data.actions[named]], rtol=1e-9
    )
    # the other bucket's decisions carry an item's propensity, at most the bucket's total
    other = ~named
    assert np.all(data.propensities[other] <= probs[np.flatnonzero(other), space.other] + 1e-12)
    # the build's split and terminal flags are consistent with whole simulated sessions
    assert set(np.unique(data.split)) == {"train", "validation", "test"}
    assert int(data.is_last.sum()) == data.n_episodes == res.summary["episodes"]["total"]
