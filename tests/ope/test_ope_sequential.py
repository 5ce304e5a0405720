"""Sequential estimators: hand-computed values, variable lengths, bootstrap, consistency."""

from __future__ import annotations

import numpy as np
import pytest

from ope import (
    OnPolicyReturn,
    PerDecisionImportanceSampling,
    SequentialDoublyRobust,
    TrajectoryWiseImportanceSampling,
    WeightedDoublyRobust,
    WeightedPerDecisionImportanceSampling,
    bootstrap_values,
    resample_weights,
)
from ope.bootstrap import session_clusters
from ope.sequential import validate_episode_inputs

# Three sessions in scrambled row order: a (2 steps), b (2 steps), c (1 step).
EP = np.array(["b", "a", "a", "b", "c"])
STEP = np.array([0, 0, 1, 1, 0])
R = np.array([1.0, 0.0, 2.0, 1.0, 3.0])
P = np.array([0.5, 0.5, 0.25, 0.5, 1.0])
PI = np.array([1.0, 0.5, 0.5, 0.25, 0.5])
Q = np.array([0.5, 0.2, 1.0, 0.5, 1.0])
V = np.array([0.4, 0.3, 0.9, 0.6, 0.8])
G = 0.9
# by hand, per session (ratios pi/p):  a: 1, 2 -> rho 1, 2;  b: 2, .5 -> rho 2, 1;  c: .5
#   D_0 = 1 + 2 + .5 = 3.5;  D_1 = 2 + 1 + .5 (c ended, keeps .5) = 3.5;  N = 3
EXPECTED = [
    (OnPolicyReturn(G), ((0 + G * 2) + (1 + G * 1) + 3) / 3),
    (TrajectoryWiseImportanceSampling(G), (2 * (0 + G * 2) + 1 * (1 + G * 1) + 0.5 * 3) / 3),
    (PerDecisionImportanceSampling(G), ((1 * 0 + G * 2 * 2) + (2 * 1 + G * 1 * 1) + 0.5 * 3) / 3),
    (WeightedPerDecisionImportanceSampling(G), (0 + 2 + 1.5) / 3.5 + G * (2 * 2 + 1 * 1) / 3.5),
    (
        SequentialDoublyRobust(G),
        (
            (1 * (0 - 0.2) + 0.3 + G * (2 * (2 - 1.0) + 1 * 0.9))
            + (2 * (1 - 0.5) + 0.4 + G * (1 * (1 - 0.5) + 2 * 0.6))
            + (0.5 * (3 - 1.0) + 0.8)
        )
        / 3,
    ),
    (
        WeightedDoublyRobust(G),
        (1 * -0.2 + 2 * 0.5 + 0.5 * 2.0) / 3.5
        + (0.3 + 0.4 + 0.8) / 3
        + G * ((2 * 1.0 + 1 * 0.5) / 3.5 + (1 * 0.9 + 2 * 0.6) / 3.5),
    ),
]


def _kw(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "reward": R,
        "episode_ids": EP,
        "steps": STEP,
        "pscore": P,
        "target_prob": PI,
        "q_hat": Q,
        "v_hat": V,
    }
    base.update(over)
    return base


@pytest.mark.parametrize(("estimator", "expected"), EXPECTED, ids=lambda x: repr(x)[:30])
def test_closed_form(estimator: object, expected: float) -> None:
    got = estimator.estimate_policy_value(**_kw())  # type: ignore[attr-defined]
    assert got == pytest.approx(expected, rel=1e-13)


def test_cumulative_weights() -> None:
    data = validate_episode_inputs(**_kw())
    np.testing.assert_allclose(data.rho, [2.0, 1.0, 2.0, 1.0, 0.5])
    np.testing.assert_allclose(data.rho_prev, [1.0, 1.0, 1.0, 2.0, 1.0])
    np.testing.assert_array_equal(data.lengths, [2, 2, 1])
    np.testing.assert_array_equal(data.is_last, [False, False, True, True, True])


@pytest.mark.parametrize("estimator", [e for e, _ in EXPECTED], ids=lambda e: e.estimator_name)
def test_row_order_does_not_matter(estimator: object) -> None:
    perm = np.array([4, 2, 0, 3, 1])
    shuffled = {k: v[perm] for k, v in _kw().items()}  # type: ignore[index]
    a = estimator.estimate_policy_value(**_kw())  # type: ignore[attr-defined]
    b = estimator.estimate_policy_value(**shuffled)  # type: ignore[attr-defined]
    assert a == pytest.approx(b, rel=1e-14)


def test_model_free_special_cases() -> None:
    zeros = np.zeros(5)
    wdr = WeightedDoublyRobust(G).estimate_policy_value(**_kw(q_hat=zeros, v_hat=zeros))
    wpdis = WeightedPerDecisionImportanceSampling(G).estimate_policy_value(**_kw())
    assert wdr == pytest.approx(wpdis, rel=1e-14)
    dr = SequentialDoublyRobust(G).estimate_policy_value(**_kw(q_hat=zeros, v_hat=zeros))
    pdis = PerDecisionImportanceSampling(G).estimate_policy_value(**_kw())
    assert dr == pytest.approx(pdis, rel=1e-14)


def test_on_policy_target_gives_the_logged_return() -> None:
    logged = OnPolicyReturn(G).estimate_policy_value(**_kw())
    for est in (
        TrajectoryWiseImportanceSampling(G),
        PerDecisionImportanceSampling(G),
        WeightedPerDecisionImportanceSampling(G),
    ):
        assert est.estimate_policy_value(**_kw(target_prob=P)) == pytest.approx(logged, rel=1e-14)


def test_gamma_zero_counts_first_steps_only() -> None:
    got = PerDecisionImportanceSampling(0.0).estimate_policy_value(**_kw())
    assert got == pytest.approx((1 * 0 + 2 * 1 + 0.5 * 3) / 3)


def _mdp(n_sessions: int, seed: int, horizon: int = 6) -> dict[str, np.ndarray]:
    """Sessions whose length depends on the action: a=1 keeps users longer.

    Each step: behaviour picks a=1 w.p. .5 (target: .8); reward ~ N(mu_a, 1) with
    mu = (1, 2); the session continues w.p. c_a = (.5, .8); at most ``horizon`` steps.
    """
    rng = np.random.default_rng(seed)
    alive = np.ones(n_sessions, dtype=bool)
    rows: list[tuple[np.ndarray, ...]] = []
    for t in range(horizon):
        idx = np.flatnonzero(alive)
        if idx.size == 0:
            break
        a = (rng.random(idx.size) < 0.5).astype(int)
        r = np.where(a == 1, 2.0, 1.0) + rng.normal(size=idx.size)
        p = np.full(idx.size, 0.5)
        pi = np.where(a == 1, 0.8, 0.2)
        qh = np.where(a == 1, 2.0, 1.0) * 1.2  # a biased reward model
        vh = np.full(idx.size, 0.8 * 2.4 + 0.2 * 1.2)
        rows.append((idx, np.full(idx.size, t), r, p, pi, qh, vh))
        alive[idx] = rng.random(idx.size) < np.where(a == 1, 0.8, 0.5)
    cols = [np.concatenate(c) for c in zip(*rows, strict=True)]
    return {
        "episode_ids": cols[0],
        "steps": cols[1],
        "reward": cols[2],
        "pscore": cols[3],
        "target_prob": cols[4],
        "q_hat": cols[5],
        "v_hat": cols[6],
    }


def mdp_truth(gamma: float, horizon: int = 6) -> float:
    mu = 0.8 * 2.0 + 0.2 * 1.0
    c = 0.8 * 0.8 + 0.2 * 0.5
    return mu * sum((gamma * c) ** t for t in range(horizon))


@pytest.mark.parametrize(
    "estimator",
    [
        TrajectoryWiseImportanceSampling(0.95),
        PerDecisionImportanceSampling(0.95),
        WeightedPerDecisionImportanceSampling(0.95),
        SequentialDoublyRobust(0.95),
        WeightedDoublyRobust(0.95),
    ],
    ids=lambda e: e.estimator_name,
)
def test_consistent_when_the_policy_changes_session_length(estimator: object) -> None:
    data = _mdp(40_000, seed=1)
    got = estimator.estimate_policy_value(**data)  # type: ignore[attr-defined]
    truth = mdp_truth(0.95)
    logged = OnPolicyReturn(0.95).estimate_policy_value(**data)
    assert abs(logged - truth) > 1.0  # the target really differs from the behaviour
    assert got == pytest.approx(truth, rel=0.03)


def test_reached_only_normalisation_would_be_biased() -> None:
    """Documents the choice: normalising over reaching sessions misses P(reach t)."""
    data = _mdp(40_000, seed=2)
    d = validate_episode_inputs(**data)
    g = np.power(0.95, d.steps)
    reached_only = sum(
        g[d.steps == t][0] * np.sum((d.rho * d.reward)[d.steps == t]) / np.sum(d.rho[d.steps == t])
        for t in range(d.max_length)
    )
    truth = mdp_truth(0.95)
    assert abs(reached_only - truth) / truth > 0.2
    ours = WeightedPerDecisionImportanceSampling(0.95).estimate_policy_value(**data)
    assert abs(ours - truth) / truth < 0.03


@pytest.mark.parametrize(
    "estimator",
    [
        TrajectoryWiseImportanceSampling(0.9),
        WeightedPerDecisionImportanceSampling(0.9),
        SequentialDoublyRobust(0.9),
        WeightedDoublyRobust(0.9),
    ],
    ids=lambda e: e.estimator_name,
)
def test_bootstrap_equals_slow_reference_loop(estimator: object) -> None:
    data = _mdp(30, seed=3)
    n_boot = 10
    matrix = np.vstack(list(resample_weights(30, n_boot, 4, scheme="multinomial")))
    clusters = session_clusters(data["episode_ids"], data["reward"].shape[0])
    slow = []
    for b in range(n_boot):
        parts = []
        for s in range(clusters.n_clusters):
            rows = np.flatnonzero(clusters.codes == s)
            for copy in range(int(matrix[b, s])):
                part = {k: v[rows] for k, v in data.items()}
                part["episode_ids"] = np.full(rows.size, f"{s}-{copy}")
                parts.append(part)
        resampled = {k: np.concatenate([p[k] for p in parts]) for k in data}
        slow.append(estimator.estimate_policy_value(**resampled))  # type: ignore[attr-defined]
    kernel = estimator.kernel(**data)  # type: ignore[attr-defined]
    fast = bootstrap_values(
        kernel, data["episode_ids"], n_bootstrap=n_boot, random_state=4, scheme="multinomial"
    )
    np.testing.assert_allclose(fast, slow, rtol=1e-10)


def test_interval_uses_sessions() -> None:
    data = _mdp(500, seed=5)
    iv = WeightedDoublyRobust(0.9).estimate_interval(
        **data, n_bootstrap_samples=200, random_state=0
    )
    assert iv.low < iv.point < iv.high
    nv = WeightedDoublyRobust(0.9).estimate_interval(**data, method="normal")
    assert nv.low < nv.point < nv.high and nv.n_bootstrap == 0
    assert nv.point == iv.point


def test_one_step_sessions_reduce_to_the_bandit_estimators() -> None:
    from ope import (
        DoublyRobust,
        InverseProbabilityWeighting,
        SelfNormalizedDoublyRobust,
        SelfNormalizedInverseProbabilityWeighting,
    )

    rng = np.random.default_rng(0)
    n, k = 50, 3
    action = rng.integers(0, k, size=n)
    behaviour = rng.dirichlet(np.ones(k), size=n)
    target = rng.dirichlet(np.ones(k), size=n)
    qhat = rng.normal(size=(n, k))
    reward = rng.normal(size=n)
    rows = np.arange(n)
    bandit = {
        "reward": reward,
        "action": action,
        "pscore": behaviour[rows, action],
        "action_dist": target,
        "estimated_rewards_by_reg_model": qhat,
    }
    seq = {
        "reward": reward,
        "episode_ids": rows,
        "steps": np.zeros(n, dtype=int),
        "pscore": behaviour[rows, action],
        "target_prob": target[rows, action],
        "q_hat": qhat[rows, action],
        "v_hat": np.sum(target * qhat, axis=1),
    }
    pairs = [
        (InverseProbabilityWeighting(), PerDecisionImportanceSampling()),
        (InverseProbabilityWeighting(), TrajectoryWiseImportanceSampling()),
        (SelfNormalizedInverseProbabilityWeighting(), WeightedPerDecisionImportanceSampling()),
        (DoublyRobust(), SequentialDoublyRobust()),
        (SelfNormalizedDoublyRobust(), WeightedDoublyRobust()),
    ]
    for b, s in pairs:
        assert s.estimate_policy_value(**seq) == pytest.approx(
            b.estimate_policy_value(**bandit), rel=1e-12
        ), s.estimator_name


def _padded_reference(data: dict[str, np.ndarray], gamma: float) -> dict[str, float]:
    """Brute force over an (episodes x steps) grid with explicit absorbing padding."""
    ids = sorted(set(data["episode_ids"].tolist()))
    t_max = int(data["steps"].max()) + 1
    shape = (len(ids), t_max)
    r, rho, rho_prev, q, v = (np.zeros(shape) for _ in range(5))
    alive = np.zeros(shape, dtype=bool)
    for e, ep in enumerate(ids):
        rows = np.flatnonzero(data["episode_ids"] == ep)
        rows = rows[np.argsort(data["steps"][rows])]
        w = 1.0
        for t, i in enumerate(rows):
            rho_prev[e, t] = w
            w *= data["target_prob"][i] / data["pscore"][i]
            rho[e, t], r[e, t], q[e, t], v[e, t] = (
                w,
                data["reward"][i],
                data["q_hat"][i],
                data["v_hat"][i],
            )
            alive[e, t] = True
        for t in range(len(rows), t_max):  # absorbing: keep the final weight, nothing else
            rho[e, t] = rho_prev[e, t] = w
    n_ep = len(ids)
    out = {"wpdis": 0.0, "wdr": 0.0, "pdis": 0.0, "sequential_dr": 0.0}
    for t in range(t_max):
        d_t = rho[:, t].sum()
        d_prev = rho[:, t - 1].sum() if t > 0 else n_ep
        out["wpdis"] += gamma**t * np.sum(rho[:, t] * r[:, t] * alive[:, t]) / d_t
        out["wdr"] += gamma**t * (
            np.sum(rho[:, t] * (r[:, t] - q[:, t]) * alive[:, t]) / d_t
            + np.sum(rho_prev[:, t] * v[:, t] * alive[:, t]) / d_prev
        )
        out["pdis"] += gamma**t * np.sum(rho[:, t] * r[:, t] * alive[:, t]) / n_ep
        out["sequential_dr"] += (
            gamma**t
            * np.sum((rho[:, t] * (r[:, t] - q[:, t]) + rho_prev[:, t] * v[:, t]) * alive[:, t])
            / n_ep
        )
    return out


@pytest.mark.parametrize("seed", range(8))
def test_matches_a_brute_force_padded_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 7, size=rng.integers(2, 12))
    ids = np.repeat(np.arange(lengths.size) * 7 + 3, lengths)
    steps = np.concatenate([np.arange(k) for k in lengths])
    n = ids.size
    perm = rng.permutation(n)
    data = {
        "reward": rng.normal(size=n),
        "episode_ids": ids,
        "steps": steps,
        "pscore": rng.uniform(0.1, 1.0, size=n),
        "target_prob": rng.uniform(0.0, 1.0, size=n) * (rng.random(n) > 0.1),
        "q_hat": rng.normal(size=n),
        "v_hat": rng.normal(size=n),
    }
    data = {k: v[perm] for k, v in data.items()}
    gamma = float(rng.uniform(0.5, 1.0))
    expected = _padded_reference(data, gamma)
    for est in (
        WeightedPerDecisionImportanceSampling(gamma),
        WeightedDoublyRobust(gamma),
        PerDecisionImportanceSampling(gamma),
        SequentialDoublyRobust(gamma),
    ):
        got = est.estimate_policy_value(**data)
        assert got == pytest.approx(expected[est.estimator_name], rel=1e-11, abs=1e-12)
