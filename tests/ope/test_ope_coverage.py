"""Interval coverage on synthetic problems with a known value (fixed seeds: deterministic)."""

from __future__ import annotations

import numpy as np
import pytest

from ope import (
    DoublyRobust,
    InverseProbabilityWeighting,
    PerDecisionImportanceSampling,
    SelfNormalizedInverseProbabilityWeighting,
    SequentialDoublyRobust,
    WeightedDoublyRobust,
    WeightedPerDecisionImportanceSampling,
    estimate_intervals,
)
from ope.meta import OffPolicyEvaluation

REPLICATIONS = 200
MU = np.array([0.2, 0.5, 1.0, 0.4])
BEHAVIOUR = np.array([0.4, 0.3, 0.1, 0.2])
TARGET = np.array([0.1, 0.2, 0.6, 0.1])
BANDIT_TRUTH = float(TARGET @ MU)


def _sessions_bandit(rng: np.random.Generator, n_sessions: int, session_sd: float) -> dict:
    """Decisions grouped in sessions that share a random reward shift (sd ``session_sd``)."""
    lengths = rng.integers(1, 9, size=n_sessions)
    episode = np.repeat(np.arange(n_sessions), lengths)
    n = episode.size
    action = rng.choice(4, size=n, p=BEHAVIOUR)
    shift = rng.normal(0.0, session_sd, size=n_sessions)[episode]
    reward = MU[action] + shift + rng.normal(0.0, 0.3, size=n)
    return {
        "reward": reward,
        "action": action,
        "pscore": BEHAVIOUR[action],
        "action_dist": np.broadcast_to(TARGET, (n, 4)),
        "estimated_rewards_by_reg_model": np.broadcast_to(MU + 0.15, (n, 4)),  # biased model
        "episode_ids": episode,
    }


ESTIMATORS = (
    InverseProbabilityWeighting(),
    SelfNormalizedInverseProbabilityWeighting(),
    DoublyRobust(),
)


def _bandit_coverage(method: str, by_session: bool, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    hits = {e.estimator_name: 0 for e in ESTIMATORS}
    for rep in range(REPLICATIONS):
        data = _sessions_bandit(rng, n_sessions=150, session_sd=1.5)
        ids = data.pop("episode_ids")
        kernels = OffPolicyEvaluation(ESTIMATORS).kernels(**data)
        intervals = estimate_intervals(
            kernels,
            ids if by_session else None,
            method=method,
            n_bootstrap=200,
            random_state=rep,
        )
        for name, iv in intervals.items():
            hits[name] += iv.contains(BANDIT_TRUTH)
    return {k: v / REPLICATIONS for k, v in hits.items()}


@pytest.mark.slow
@pytest.mark.parametrize("method", ["percentile", "normal"])
def test_session_bootstrap_covers_the_bandit_truth(method: str) -> None:
    coverage = _bandit_coverage(method, by_session=True, seed=11)
    for name, share in coverage.items():
        assert share >= 0.88, f"{name} ({method}) covered {share:.1%}"


@pytest.mark.slow
def test_row_level_intervals_undercover_clustered_data() -> None:
    """The reason sessions are the unit: ignoring them gives far too narrow intervals."""
    by_row = _bandit_coverage("normal", by_session=False, seed=11)
    by_session = _bandit_coverage("normal", by_session=True, seed=11)
    for name, share in by_row.items():
        assert share < 0.88, f"{name} covered {share:.1%} even without sessions"
        assert share < by_session[name] - 0.05


def _mdp(rng: np.random.Generator, n_sessions: int, horizon: int = 5) -> dict:
    """Length depends on the action (a=1 keeps users: continue .8 vs .5)."""
    alive = np.ones(n_sessions, dtype=bool)
    cols: list[list[np.ndarray]] = [[] for _ in range(7)]
    for t in range(horizon):
        idx = np.flatnonzero(alive)
        if idx.size == 0:
            break
        a = (rng.random(idx.size) < 0.5).astype(int)
        values = (
            idx,
            np.full(idx.size, t),
            np.where(a == 1, 2.0, 1.0) + rng.normal(size=idx.size),
            np.full(idx.size, 0.5),
            np.where(a == 1, 0.8, 0.2),
            np.where(a == 1, 2.5, 1.2),
            np.full(idx.size, 0.8 * 2.5 + 0.2 * 1.2),
        )
        for c, v in zip(cols, values, strict=True):
            c.append(v)
        alive[idx] = rng.random(idx.size) < np.where(a == 1, 0.8, 0.5)
    names = ("episode_ids", "steps", "reward", "pscore", "target_prob", "q_hat", "v_hat")
    return {k: np.concatenate(c) for k, c in zip(names, cols, strict=True)}


def _mdp_truth(gamma: float, horizon: int = 5) -> float:
    mu, c = 0.8 * 2.0 + 0.2 * 1.0, 0.8 * 0.8 + 0.2 * 0.5
    return mu * sum((gamma * c) ** t for t in range(horizon))


@pytest.mark.slow
@pytest.mark.parametrize("method", ["percentile", "normal"])
def test_session_bootstrap_covers_the_sequential_truth(method: str) -> None:
    gamma = 0.9
    truth = _mdp_truth(gamma)
    estimators = (
        PerDecisionImportanceSampling(gamma),
        WeightedPerDecisionImportanceSampling(gamma),
        SequentialDoublyRobust(gamma),
        WeightedDoublyRobust(gamma),
    )
    rng = np.random.default_rng(21)
    hits = {e.estimator_name: 0 for e in estimators}
    for rep in range(REPLICATIONS):
        data = _mdp(rng, n_sessions=300)
        kernels = {e.estimator_name: e.kernel(**data) for e in estimators}
        intervals = estimate_intervals(
            kernels, data["episode_ids"], method=method, n_bootstrap=200, random_state=rep
        )
        for name, iv in intervals.items():
            hits[name] += iv.contains(truth)
    for name, count in hits.items():
        assert count / REPLICATIONS >= 0.88, f"{name} ({method}) covered {count / REPLICATIONS:.1%}"
