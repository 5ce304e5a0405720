"""OPE against simulator ground truth, through the real build: bias and interval coverage.

For 20 seeds: simulate logs, load them as warehouse events, build the dataset with the SQL
steps, and estimate per-decision values of fixed target policies (uniform, most-popular with
epsilon, and a softmax over a simple state score) on the test split with IPS and DR
(cross-fitted reward model, session bootstrap). The truth is the simulator's exact expected
reward of each policy at the same logged decisions. We assert the 95% intervals cover the
truth in at least 85% of (seed, policy) pairs and that the estimators are unbiased on average.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from offline_rl.policies import MostPopularPolicy, UniformPolicy
from offrec.simulator import SimulatorConfig, per_decision_value, simulate_events
from ope import DoublyRobust, InverseProbabilityWeighting, fit_reward_model
from sql.build import build_dataset
from sql.config import BuildConfig
from sql.dataset import load_action_space, load_feature_spec, load_transitions

pytestmark = pytest.mark.slow

N_SEEDS = 20


class _ScorePolicy:
    """Softmax over (last clicked item's action == a) bonus plus popularity: state-dependent."""

    def __init__(self, n_actions: int, offset: int, counts: np.ndarray) -> None:
        self.name, self.n_actions, self.offset = "score", n_actions, offset
        self.base = np.log(counts + 1.0)

    def action_probs(self, states: np.ndarray) -> np.ndarray:
        logits = np.tile(self.base, (states.shape[0], 1))
        last = states[:, self.offset].astype(int)
        ok = last < self.n_actions
        logits[np.flatnonzero(ok), last[ok]] += 2.0
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)


def _one_seed(seed: int, tmp: Path) -> list[tuple[str, str, float, float, float]]:
    sim = SimulatorConfig(seed=seed, world_seed=1, n_sessions=1500, n_items=25)
    logs = simulate_events(sim)
    con = duckdb.connect(str(tmp / f"w{seed}.duckdb"))
    events = logs.events  # Arrow table in the canonical raw schema
    con.register("raw_events", events)
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        "CREATE TABLE events AS SELECT event_id, ts::TIMESTAMP AS ts, user_id, session_id, event_type, item_id, "
        "position, propensity, price, request_id, NULL::JSON AS extra, "
        "'sim' AS source_file, row_number() OVER () AS source_row, now() AS ingested_at "
        "FROM raw_events")
    cfg = BuildConfig(top_n=25)
    build_dataset(con, cfg, datasets_dir=tmp / f"d{seed}")
    test = load_transitions(con, split="test")
    train = load_transitions(con, split="train")
    spec = load_feature_spec(con)
    space = load_action_space(con)
    con.close()
    a = space.n_actions
    policies = {
        "uniform": UniformPolicy(a),
        "most_popular": MostPopularPolicy(np.bincount(train.actions, minlength=a), epsilon=0.3),
        "score": _ScorePolicy(a, spec.offset("last_item_1"),
                              np.bincount(train.actions, minlength=a).astype(float)),
    }
    s_n = spec.normalise(test.states)
    q_hat = fit_reward_model(s_n, test.actions, test.rewards, test.episode_ids, a).q_hat
    out = []
    for name, pol in policies.items():
        probs = pol.action_probs(test.states)
        truth = float(np.mean(per_decision_value(test.user_ids, test.positions, probs, space,
                                                 config=sim)))
        for est in (InverseProbabilityWeighting(), DoublyRobust()):
            kw = {"estimated_rewards_by_reg_model": q_hat} if isinstance(est, DoublyRobust) else {}
            iv = est.estimate_interval(
                reward=test.rewards, action=test.actions, pscore=test.propensities,
                action_dist=probs, episode_ids=test.episode_ids, alpha=0.05,
                n_bootstrap_samples=400, random_state=seed, **kw)
            out.append((name, est.estimator_name, iv.point, iv.low, iv.high, truth))
    return out


def test_dr_and_ips_cover_simulator_truth(tmp_path: Path) -> None:
    rows = []
    for seed in range(N_SEEDS):
        rows += _one_seed(seed, tmp_path)
    report = []
    for est in ("ipw", "dr"):
        sel = [r for r in rows if r[1] == est]
        err = np.array([r[2] - r[5] for r in sel])
        truth = np.array([r[5] for r in sel])
        cover = np.mean([r[3] <= r[5] <= r[4] for r in sel])
        rel_bias = float(np.mean(err) / np.mean(truth))
        report.append(f"{est}: coverage {cover:.2f}, relative bias {rel_bias:+.3f}, "
                      f"RMSE {np.sqrt(np.mean(err ** 2)):.4f}")
        assert cover >= 0.85, report
        assert abs(rel_bias) < 0.05, report
    print("\n".join(report))
