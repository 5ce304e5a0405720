"""The vectorised session bootstrap equals a slow reference loop; normal SEs by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from ope import (
    DoublyRobust,
    InverseProbabilityWeighting,
    Kernel,
    LoggedPolicyValue,
    SelfNormalizedDoublyRobust,
    SelfNormalizedInverseProbabilityWeighting,
    bootstrap_values,
    compare,
    estimate_interval,
    estimate_intervals,
    resample_weights,
    standard_error,
)
from ope.bootstrap import poisson_table, session_clusters
from ope.intervals import normal_quantile


def _bandit(n_sessions: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 5, size=n_sessions)
    episode = np.repeat(np.array([f"s{i:04d}" for i in range(n_sessions)]), lengths)
    n, k = episode.size, 4
    behaviour = rng.dirichlet(np.ones(k), size=n)
    action = np.array([rng.choice(k, p=p) for p in behaviour])
    target = rng.dirichlet(np.ones(k), size=n)
    return {
        "reward": rng.normal(1.0, 1.0, size=n),
        "action": action,
        "pscore": behaviour[np.arange(n), action],
        "action_dist": target,
        "estimated_rewards_by_reg_model": rng.normal(1.0, 0.5, size=(n, k)),
        "episode_ids": episode,
    }


def _resampled(data: dict[str, np.ndarray], counts: np.ndarray) -> dict[str, np.ndarray]:
    """Rows of each session repeated ``counts[s]`` times (sessions ordered by id)."""
    clusters = session_clusters(data["episode_ids"], data["reward"].shape[0])
    rows = np.concatenate(
        [
            np.flatnonzero(clusters.codes == s)
            for s in range(clusters.n_clusters)
            for _ in range(int(counts[s]))
        ]
    )
    return {k: v[rows] for k, v in data.items() if k != "episode_ids"}


ESTIMATORS = [
    InverseProbabilityWeighting(),
    SelfNormalizedInverseProbabilityWeighting(),
    DoublyRobust(),
    SelfNormalizedDoublyRobust(),
]


@pytest.mark.parametrize("scheme", ["multinomial", "poisson"])
@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: e.estimator_name)
def test_bootstrap_equals_slow_reference_loop(scheme: str, estimator: object) -> None:
    data = _bandit(n_sessions=120, seed=3)
    n_boot = 12
    matrix = np.vstack(list(resample_weights(120, n_boot, 7, scheme=scheme)))
    assert matrix.shape == (n_boot, 120)
    slow = [
        estimator.estimate_policy_value(**_resampled(data, matrix[b]))  # type: ignore[attr-defined]
        for b in range(n_boot)
    ]
    inputs = {k: v for k, v in data.items() if k != "episode_ids"}
    kernel = estimator.kernel(**inputs)  # type: ignore[attr-defined]
    fast = bootstrap_values(
        kernel, data["episode_ids"], n_bootstrap=n_boot, random_state=7, scheme=scheme
    )
    np.testing.assert_allclose(fast, slow, rtol=1e-10)


def test_multinomial_counts_draw_every_session_total() -> None:
    m = np.vstack(list(resample_weights(50, 30, 1, scheme="multinomial")))
    np.testing.assert_array_equal(m.sum(axis=1), 50)


@pytest.mark.parametrize("scheme", ["multinomial", "poisson"])
def test_results_do_not_depend_on_chunking(scheme: str) -> None:
    data = _bandit(n_sessions=300, seed=4)
    inputs = {k: v for k, v in data.items() if k != "episode_ids"}
    kernel = SelfNormalizedDoublyRobust().kernel(**inputs)
    whole = bootstrap_values(
        kernel, data["episode_ids"], n_bootstrap=50, random_state=5, scheme=scheme
    )
    chunked = bootstrap_values(
        kernel,
        data["episode_ids"],
        n_bootstrap=50,
        random_state=5,
        scheme=scheme,
        max_bytes=300 * 24 * 3,  # three resamples per chunk
    )
    np.testing.assert_array_equal(whole, chunked)


def test_row_order_does_not_change_the_resamples() -> None:
    data = _bandit(n_sessions=200, seed=8)
    perm = np.random.default_rng(0).permutation(data["reward"].shape[0])
    shuffled = {k: v[perm] for k, v in data.items()}
    vals = []
    for d in (data, shuffled):
        kernel = InverseProbabilityWeighting().kernel(
            **{k: v for k, v in d.items() if k != "episode_ids"}
        )
        vals.append(bootstrap_values(kernel, d["episode_ids"], n_bootstrap=20, random_state=1))
    np.testing.assert_allclose(vals[0], vals[1], rtol=1e-12)


def test_poisson_table_is_poisson_one() -> None:
    table = poisson_table().astype(np.float64)
    assert table.shape == (65536,)
    assert abs(table.mean() - 1.0) < 1e-4
    assert abs(table.var() - 1.0) < 1e-3
    for k in range(5):
        assert np.mean(table == k) == pytest.approx(math.exp(-1) / math.factorial(k), abs=2e-5)


def test_normal_se_of_a_mean_with_independent_rows() -> None:
    v = np.array([1.0, 4.0, 2.0, 7.0, 3.0])
    kernel = Kernel.mean(v)
    assert standard_error(kernel) == pytest.approx(np.std(v, ddof=1) / math.sqrt(5), rel=1e-13)


def test_normal_se_of_a_clustered_mean_by_hand() -> None:
    v = np.array([1.0, 4.0, 2.0, 7.0, 3.0, 5.0])
    ids = np.array(["a", "a", "b", "c", "c", "c"])
    g = v.mean()  # 22 / 6
    # per session: sum v_s - g * n_s
    u = np.array([5 - 2 * g, 2 - g, 15 - 3 * g]) / 6
    expected = math.sqrt(3 / 2 * float(np.sum(u**2)))
    assert standard_error(Kernel.mean(v), ids) == pytest.approx(expected, rel=1e-13)


def test_normal_se_of_a_ratio_by_hand() -> None:
    a = np.array([1.0, 0.0, 3.0, 2.0])
    b = np.array([1.0, 2.0, 1.5, 0.5])
    g = a.sum() / b.sum()
    u = (a - g * b) / b.sum()
    expected = math.sqrt(4 / 3 * float(np.sum(u**2)))
    assert standard_error(Kernel.ratio(a, b)) == pytest.approx(expected, rel=1e-13)


def test_gradient_matches_finite_differences_with_cumulative_columns() -> None:
    rng = np.random.default_rng(0)
    comp = rng.uniform(0.5, 2.0, size=(30, 5))
    num = sp.csr_array(np.array([[1.0, 0, 0, 0, 0], [0, 1.0, 0, 0, 0]]))
    den = sp.csr_array(np.array([[0, 0, 1.0, 0, 0], [0, 0, 1.0, 1.0, 1.0]]))
    kernel = Kernel(comp, num, den, np.array([1.0, 0.7]), "k", cumulative=(3, 5))
    t = kernel.totals()
    grad = kernel.gradient(t)
    for j in range(5):
        h = 1e-6 * t[j]
        up, down = t.copy(), t.copy()
        up[j] += h
        down[j] -= h
        fd = (kernel.evaluate(up)[0] - kernel.evaluate(down)[0]) / (2 * h)
        assert grad[j] == pytest.approx(fd, rel=1e-6, abs=1e-12)
    # columns 3..4 become running sums (T3, T3 + T4): D_1 = T2 + T3 + (T3 + T4)
    expected = t[0] / t[2] + 0.7 * t[1] / (t[2] + 2 * t[3] + t[4])
    assert kernel.value() == pytest.approx(expected, rel=1e-14)


def test_interval_fields_and_normal_quantile() -> None:
    data = _bandit(n_sessions=150, seed=9)
    inputs = {k: v for k, v in data.items() if k != "episode_ids"}
    kernel = DoublyRobust().kernel(**inputs)
    iv = estimate_interval(kernel, data["episode_ids"], method="normal", alpha=0.1)
    se = standard_error(kernel, data["episode_ids"])
    assert normal_quantile(0.1) == pytest.approx(1.6448536269514722, rel=1e-12)
    assert iv.point == pytest.approx(kernel.value())
    assert iv.low == pytest.approx(iv.point - 1.6448536269514722 * se, rel=1e-12)
    assert iv.high == pytest.approx(iv.point + 1.6448536269514722 * se, rel=1e-12)
    assert (iv.alpha, iv.method, iv.n_bootstrap) == (0.1, "normal", 0)
    pct = estimate_interval(kernel, data["episode_ids"], n_bootstrap=200, random_state=0)
    values = bootstrap_values(kernel, data["episode_ids"], n_bootstrap=200, random_state=0)
    assert (pct.low, pct.high) == tuple(np.quantile(values, [0.025, 0.975]))
    assert pct.method == "percentile" and pct.n_bootstrap == 200


def test_joint_intervals_share_resamples_and_compare_is_paired() -> None:
    data = _bandit(n_sessions=200, seed=10)
    inputs = {k: v for k, v in data.items() if k != "episode_ids"}
    ids = data["episode_ids"]
    target = DoublyRobust().kernel(**inputs)
    base = LoggedPolicyValue().kernel(**inputs)
    joint = estimate_intervals({"t": target, "b": base}, ids, n_bootstrap=300, random_state=2)
    alone = estimate_interval(target, ids, n_bootstrap=300, random_state=2)
    assert (joint["t"].low, joint["t"].high) == (alone.low, alone.high)
    c = compare(target, base, ids, n_bootstrap=300, random_state=2)
    vt = bootstrap_values(target, ids, n_bootstrap=300, random_state=2)
    vb = bootstrap_values(base, ids, n_bootstrap=300, random_state=2)
    assert c.difference.point == pytest.approx(target.value() - base.value())
    np.testing.assert_allclose(
        [c.difference.low, c.difference.high], np.quantile(vt - vb, [0.025, 0.975])
    )
    np.testing.assert_allclose(
        [c.relative_lift.low, c.relative_lift.high], np.quantile(vt / vb - 1, [0.025, 0.975])
    )
    assert c.relative_lift.point == pytest.approx(target.value() / base.value() - 1)
    assert c.baseline.point == pytest.approx(float(np.mean(data["reward"])))


def test_compare_normal_uses_joint_influence() -> None:
    data = _bandit(n_sessions=200, seed=11)
    inputs = {k: v for k, v in data.items() if k != "episode_ids"}
    ids = data["episode_ids"]
    target = InverseProbabilityWeighting().kernel(**inputs)
    base = LoggedPolicyValue().kernel(**inputs)
    c = compare(target, base, ids, method="normal")
    # difference of two means over the same rows is the mean of the row differences
    diff = Kernel.mean(target.components[:, 0] - base.components[:, 0])
    se = standard_error(diff, ids)
    z = normal_quantile(0.05)
    assert c.difference.high - c.difference.point == pytest.approx(z * se, rel=1e-12)


def test_relative_lift_is_nan_when_the_baseline_is_zero() -> None:
    reward = np.zeros(20)
    base = Kernel.mean(reward, "logged")
    target = Kernel.mean(np.arange(20.0), "t")
    c = compare(target, base, n_bootstrap=50, random_state=0)
    assert math.isnan(c.relative_lift.point) and math.isnan(c.relative_lift.low)
    assert c.difference.point == pytest.approx(9.5)
