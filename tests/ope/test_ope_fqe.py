"""FQE against exact dynamic programming on a small MDP, and against d3rlpy's DiscreteFQE."""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch

from ope.errors import OPEError
from ope.fqe import (
    FQEConfig,
    FQEResult,
    _diagnose,
    fit_fqe,
    initial_state_rows,
    support_clip_probs,
)

torch.set_num_threads(1)

GAMMA = 0.9
# smaller and quicker to settle than the defaults; still matches the exact answers
FAST = FQEConfig(
    hidden_units=(32, 32),
    batch_size=256,
    steps_per_epoch=200,
    tau=0.01,
    learning_rate=5e-4,
    tolerance=0.02,
)


# ------------------------------------------------------------------------------------------
# a small MDP whose values are known exactly


def make_mdp(seed: int = 0, n_states: int = 6, n_actions: int = 3) -> dict[str, Any]:
    """Random transitions, per-(s, a) termination probabilities and mean rewards."""
    rng = np.random.default_rng(seed)
    return {
        "P": rng.dirichlet(np.full(n_states, 0.5), size=(n_states, n_actions)),
        "term": rng.uniform(0.05, 0.3, size=(n_states, n_actions)),
        "R": rng.uniform(0.0, 2.0, size=(n_states, n_actions)),
        "d0": rng.dirichlet(np.ones(n_states)),
        "mu": rng.dirichlet(np.full(n_actions, 2.0), size=n_states),
        "S": n_states,
        "A": n_actions,
    }


def q_of_policy(m: dict[str, Any], pi: np.ndarray, gamma: float) -> np.ndarray:
    """Solve Q = R + gamma * P_continue (pi . Q) exactly: (S, A)."""
    s, a = m["S"], m["A"]
    cont = m["P"] * (1 - m["term"])[..., None]
    op = gamma * np.einsum("xay,yb->xayb", cont, pi).reshape(s * a, s * a)
    return np.linalg.solve(np.eye(s * a) - op, m["R"].reshape(-1)).reshape(s, a)


def q_optimal(m: dict[str, Any], gamma: float) -> np.ndarray:
    """The fixed point of the *max* backup (what FQE would find bootstrapping with max)."""
    cont = m["P"] * (1 - m["term"])[..., None]
    q = np.zeros((m["S"], m["A"]))
    for _ in range(500):
        q = m["R"] + gamma * cont @ q.max(axis=1)
    return q


def empirical_q(m: dict[str, Any], d: dict[str, np.ndarray], pi: np.ndarray) -> np.ndarray:
    """Tabular FQE: the exact fixed point on the *empirical* MDP of the data (S, A).

    That is what FQE with a flexible Q converges to on these rows, so it separates the error
    of our fit from the sampling error of the data.
    """
    s, a = m["S"], m["A"]
    count = np.zeros((s, a))
    np.add.at(count, (d["s"], d["a"]), 1)
    reward = np.zeros((s, a))
    np.add.at(reward, (d["s"], d["a"]), d["r"])
    moves = np.zeros((s, a, s))
    go = ~d["t"]
    np.add.at(moves, (d["s"][go], d["a"][go], d["s2"][go]), 1)
    denom = np.maximum(count, 1)
    op = GAMMA * np.einsum("xay,yb->xayb", moves / denom[..., None], pi).reshape(s * a, s * a)
    return np.linalg.solve(np.eye(s * a) - op, (reward / denom).reshape(-1)).reshape(s, a)


def sample(m: dict[str, Any], n_episodes: int, seed: int, cap: int = 200) -> dict[str, np.ndarray]:
    """Episodes under the behaviour policy ``mu``; rows sorted by (episode, step).

    An episode ends when the termination draw fires (terminal) or after ``cap`` steps
    (timeout: the next state is still drawn and recorded, as the process goes on).
    """
    rng = np.random.default_rng(seed)
    cols: dict[str, list[np.ndarray]] = {
        k: [] for k in ("s", "a", "r", "s2", "t", "ep", "step", "to")
    }
    alive = np.arange(n_episodes)
    cur = rng.choice(m["S"], size=n_episodes, p=m["d0"])
    for step in range(cap):
        if alive.size == 0:
            break
        st = cur[alive]
        a = (
            (rng.random(alive.size)[:, None] > np.cumsum(m["mu"][st], 1))
            .sum(1)
            .clip(max=m["A"] - 1)
        )
        r = m["R"][st, a] + 0.5 * rng.standard_normal(alive.size)
        s2 = (
            (rng.random(alive.size)[:, None] > np.cumsum(m["P"][st, a], 1))
            .sum(1)
            .clip(max=m["S"] - 1)
        )
        t = rng.random(alive.size) < m["term"][st, a]
        to = ~t & (step == cap - 1)
        for k, v in zip(cols, (st, a, r, s2, t, alive, np.full(alive.size, step), to), strict=True):
            cols[k].append(v)
        cur[alive] = s2
        alive = alive[~t]
    out = {k: np.concatenate(v) for k, v in cols.items()}
    order = np.lexsort((out["step"], out["ep"]))
    return {k: v[order] for k, v in out.items()}


def run_fqe(m: dict[str, Any], d: dict[str, np.ndarray], pi: np.ndarray, **kw: Any) -> FQEResult:
    eye = np.eye(m["S"], dtype=np.float32)
    return fit_fqe(
        eye[d["s"]],
        d["a"],
        d["r"],
        eye[d["s2"]],
        d["t"],
        d["ep"],
        d["step"],
        pi[d["s"]],
        pi[d["s2"]],
        GAMMA,
        **kw,
    )


def true_value(m: dict[str, Any], d: dict[str, np.ndarray], pi: np.ndarray) -> float:
    """Exact value averaged over the logged initial states (FQE's estimand)."""
    v = (q_of_policy(m, pi, GAMMA) * pi).sum(axis=1)
    return float(v[d["s"][d["step"] == 0]].mean())


def empirical_value(m: dict[str, Any], d: dict[str, np.ndarray], pi: np.ndarray) -> float:
    v = (empirical_q(m, d, pi) * pi).sum(axis=1)
    return float(v[d["s"][d["step"] == 0]].mean())


@pytest.fixture(scope="module")
def mdp() -> dict[str, Any]:
    return make_mdp(0)


@pytest.fixture(scope="module")
def stochastic_pi(mdp: dict[str, Any]) -> np.ndarray:
    return np.random.default_rng(5).dirichlet(np.ones(mdp["A"]), size=mdp["S"])


# ------------------------------------------------------------------------------------------
# ground truth


def test_fqe_recovers_the_exact_value_of_a_stochastic_policy(mdp, stochastic_pi) -> None:
    d = sample(mdp, 1500, seed=1)
    truth = true_value(mdp, d, stochastic_pi)
    res = run_fqe(mdp, d, stochastic_pi, config=FAST)
    assert res.converged and not res.diverged, res.warnings
    assert res.refit_epochs > 0  # the held-out episodes were folded back in at the end
    assert res.value == pytest.approx(empirical_value(mdp, d, stochastic_pi), rel=0.03)
    assert res.value == pytest.approx(truth, rel=0.05)
    # the max backup's fixed point is far away: bootstrapping with max would be clearly wrong
    v_max = float(q_optimal(mdp, GAMMA).max(axis=1)[d["s"][d["step"] == 0]].mean())
    assert v_max - truth > 0.3 * truth
    assert abs(res.value - truth) < 0.15 * (v_max - truth)
    # Q itself (every state, every action), not only the average, is close to the truth
    q_true = q_of_policy(mdp, stochastic_pi, GAMMA)
    q_hat = res.q_values(np.eye(mdp["S"], dtype=np.float32))
    assert np.abs(q_hat - q_true).max() < 0.1 * np.abs(q_true).max()
    # per-episode initial values: one per episode, in order of first appearance, mean = value
    n_ep = np.unique(d["ep"]).size
    assert res.initial_values.shape == (n_ep,) and res.n_episodes == n_ep
    assert np.array_equal(res.episode_ids, np.arange(n_ep))
    assert res.value == pytest.approx(res.initial_values.mean())
    first = d["s"][d["step"] == 0]
    assert np.allclose(res.initial_values, (q_hat * stochastic_pi).sum(axis=1)[first], atol=1e-5)
    # curves are exposed, one entry per epoch
    assert res.train_loss.shape == res.value_curve.shape == (res.epochs_run,)
    assert res.validation_loss.size == res.epochs_run - res.refit_epochs
    assert res.n_validation_episodes == round(0.2 * n_ep)


@pytest.mark.slow
def test_fqe_bootstraps_through_timeouts(mdp, stochastic_pi) -> None:
    """Episodes cut after 3 steps: the value is still the infinite-horizon one.

    With the real next state recorded, timeout rows bootstrap. With the next state unknown
    (zeros, as offrec datasets store it) they are marked ``next_valid=False`` and bootstrap
    from the learnt continuation value W(s, a). Simply dropping those rows would be biased (at
    the cut, only the rows that happened to terminate would remain: tabular FQE on this data
    then loses ~15%), and treating timeouts as terminals truncates the return.
    """
    d = sample(mdp, 2500, seed=2, cap=3)
    assert d["to"].sum() > 0.4 * 2500  # most episodes are cut
    truth = true_value(mdp, d, stochastic_pi)
    res = run_fqe(mdp, d, stochastic_pi, config=FAST)
    assert res.value == pytest.approx(truth, rel=0.06)

    unknown = dict(d)
    eye = np.eye(mdp["S"], dtype=np.float32)
    next_states = eye[d["s2"]].copy()
    next_states[d["to"]] = 0.0
    masked = fit_fqe(
        eye[d["s"]],
        d["a"],
        d["r"],
        next_states,
        d["t"],
        d["ep"],
        d["step"],
        stochastic_pi[d["s"]],
        stochastic_pi[d["s2"]],
        GAMMA,
        next_valid=~unknown["to"],
        config=FAST,
    )
    assert masked.value == pytest.approx(truth, rel=0.06)
    truncated = run_fqe(mdp, {**d, "t": d["t"] | d["to"]}, stochastic_pi, config=FAST)
    assert truncated.value < 0.8 * truth


@pytest.mark.slow
def test_fqe_agrees_with_d3rlpy_discrete_fqe_on_a_greedy_policy(mdp, tmp_path, monkeypatch) -> None:
    """Same data, same greedy policy: ours, d3rlpy's DiscreteFQE and exact tabular FQE agree.

    d3rlpy is given a reward scaler so its Huber loss (threshold 1) stays quadratic; on raw
    rewards it converges to a median-like fixed point about twice the value (see
    docs/ope_models.md). Its estimate is averaged over its last epochs to damp SGD noise.
    """
    monkeypatch.chdir(tmp_path)  # nothing may be written to the working directory
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        import d3rlpy
        from d3rlpy.logging import NoopAdapterFactory

        d3rlpy.seed(3)
        d = sample(mdp, 1500, seed=3)
        eye = np.eye(mdp["S"], dtype=np.float32)
        dataset = d3rlpy.dataset.MDPDataset(
            observations=eye[d["s"]],
            actions=d["a"],
            rewards=d["r"].astype(np.float32),
            terminals=d["t"].astype(np.float32),
            action_space=d3rlpy.constants.ActionSpace.DISCRETE,
            action_size=mdp["A"],
        )
        algo = d3rlpy.algos.DQNConfig().create(device="cpu:0")
        algo.build_with_dataset(dataset)
        greedy = algo.predict(eye)
        scale = 0.05
        fqe = d3rlpy.ope.DiscreteFQE(
            algo=algo,
            config=d3rlpy.ope.FQEConfig(
                gamma=GAMMA,
                learning_rate=5e-4,
                batch_size=256,
                target_update_interval=100,
                encoder_factory=d3rlpy.models.VectorEncoderFactory(hidden_units=[64, 64]),
                reward_scaler=d3rlpy.preprocessing.MultiplyRewardScaler(scale),
            ),
        )
        starts = eye[d["s"][d["step"] == 0]]
        estimates: list[float] = []

        def record(model: Any, epoch: int, total_step: int) -> None:
            if epoch > 4:  # average the second half: d3rlpy's hard target updates are noisy
                values = model.predict_value(starts, algo.predict(starts))
                estimates.append(float(values.mean()) / scale)

        fqe.fit(
            dataset,
            n_steps=2500,
            n_steps_per_epoch=250,
            logger_adapter=NoopAdapterFactory(),
            show_progress=False,
            epoch_callback=record,
        )
    assert not (tmp_path / "d3rlpy_logs").exists()
    pi = np.eye(mdp["A"])[greedy]
    ours = run_fqe(mdp, d, pi, config=FAST)
    theirs = float(np.mean(estimates))
    truth = true_value(mdp, d, pi)
    exact = empirical_value(mdp, d, pi)
    assert ours.value == pytest.approx(exact, rel=0.04)
    assert theirs == pytest.approx(exact, rel=0.08)
    assert ours.value == pytest.approx(theirs, rel=0.08)
    assert ours.value == pytest.approx(truth, rel=0.08)


# ------------------------------------------------------------------------------------------
# divergence, reproducibility, threads


def test_a_diverging_fit_is_flagged() -> None:
    """The deadly triad in miniature: every transition goes from x = 1 to the never-seen x = 2.

    The network's extrapolation to x = 2 rises with every update of Q(1) (Q(2) moves 1.5x as
    much as Q(1) for a ReLU net on positive inputs), so the bootstrap target runs away and the
    held-out Bellman residual keeps rising: the fit must be flagged, not reported.
    """
    n = 400
    rng = np.random.default_rng(0)
    states = np.ones((n, 1), dtype=np.float32)
    probs = np.ones((n, 1))
    res = fit_fqe(
        states,
        np.zeros(n, dtype=np.int64),
        1.0 + 0.1 * rng.standard_normal(n),
        2 * states,
        np.zeros(n, dtype=bool),
        np.arange(n),
        np.zeros(n, dtype=np.int64),
        probs,
        probs,
        0.99,
        config=FQEConfig(hidden_units=(16,), batch_size=64, steps_per_epoch=100, max_epochs=10),
    )
    assert res.diverged and not res.converged
    assert any("loss rose" in w for w in res.warnings), res.warnings
    assert np.all(np.diff(res.validation_loss[-5:]) > 0)


_FLAT = [5.0] * 6
_RISING = [3.0, 3.5, 4.0, 4.5, 5.0, 5.5]
_SLOW = [0.1 * 1.05**k for k in range(40)]  # +5% per epoch: 1.28x over a window, 6.7x overall

DIAGNOSE_CASES = [
    # (value, loss curve, value curve, converged, diverged?, message fragment)
    (5.0, [1.0, 0.9, 0.9, 0.9, 0.9, 0.9], _FLAT, True, False, None),
    (25.0, [1.0, 0.9, 0.9, 0.9, 0.9, 0.9], _FLAT, True, True, "outside the attainable range"),
    (-1.0, [1.0, 0.9, 0.9, 0.9, 0.9, 0.9], _FLAT, True, True, "outside the attainable range"),
    # a runaway: the loss climbs every epoch while the value climbs with it
    (5.5, [0.5, 0.55, 0.6, 0.8, 1.1, 1.6], _RISING, False, True, "loss rose at each"),
    # a slow geometric blow-up is caught against the loss's minimum over the whole phase
    (9.0, _SLOW, list(np.linspace(2.0, 9.0, 40)), False, True, "loss rose at each"),
    # the held-out residual rising while the value stands still is normal FQE learning
    (5.0, [0.1, 0.12, 0.14, 0.17, 0.2, 0.25], _FLAT, True, False, None),
    # a value still propagating under a flat loss is slow, not divergent
    (5.5, [0.3, 0.29, 0.3, 0.31, 0.3, 0.3], _RISING, False, False, "may not have converged"),
    # the loss dipping once inside the window is not a sustained rise
    (5.5, [0.5, 0.8, 0.7, 1.0, 1.3, 1.6], _RISING, False, False, "may not have converged"),
    # too few epochs to judge a trend: only the range and finiteness rules apply
    (5.5, [0.5, 1.0, 2.0], _RISING[:3], False, False, "may not have converged"),
    (5.0, [1.0, 0.9, 0.8, 0.7, 0.6, 0.5], _FLAT, False, False, "may not have converged"),
    (float("nan"), [1.0, float("nan")], [5.0, float("nan")], False, True, "non-finite"),
]


@pytest.mark.parametrize(
    ("value", "curve", "values", "converged", "diverged", "fragment"), DIAGNOSE_CASES
)
def test_divergence_rules(value, curve, values, converged, diverged, fragment) -> None:
    # rewards in [0, 2] with gamma 0.9: attainable values lie in [0, 20]
    warnings, flag = _diagnose(
        value,
        np.array([value]),
        (0.0, 20.0),
        [np.array(curve)],
        converged,
        FQEConfig(),
        [np.array(values)],
        1.0,
    )
    assert flag is diverged
    if fragment is None:
        assert warnings == []
    else:
        assert any(fragment in w for w in warnings), warnings


def test_same_seed_same_result_and_threads_restored(mdp, stochastic_pi) -> None:
    d = sample(mdp, 200, seed=5)
    cfg = replace(FAST, steps_per_epoch=30, max_epochs=3, threads=1)
    before = torch.get_num_threads()
    one = run_fqe(mdp, d, stochastic_pi, config=cfg)
    two = run_fqe(mdp, d, stochastic_pi, config=cfg)
    other = run_fqe(mdp, d, stochastic_pi, config=replace(cfg, seed=1))
    assert torch.get_num_threads() == before
    assert one.value == two.value
    assert np.array_equal(one.train_loss, two.train_loss)
    assert np.array_equal(one.validation_loss, two.validation_loss)
    assert one.value != other.value
    assert one.epochs_run == 3 and not one.converged
    assert any("may not have converged" in w for w in one.warnings)


def test_reward_units_do_not_change_the_fit(mdp, stochastic_pi) -> None:
    """Revenue in cents or in euros: the automatic reward scale makes training identical.

    (An unscaled Huber loss would not: with threshold 1 it is a median-like regression for
    large rewards, which is how d3rlpy's DiscreteFQE ends up about twice the true value on raw
    rewards of this MDP.)
    """
    d = sample(mdp, 200, seed=8)
    cfg = replace(FAST, steps_per_epoch=40, max_epochs=3)
    small = run_fqe(mdp, d, stochastic_pi, config=cfg)
    big = run_fqe(mdp, {**d, "r": d["r"] * 1000.0}, stochastic_pi, config=cfg)
    assert big.reward_scale == pytest.approx(small.reward_scale / 1000.0)
    assert big.value == pytest.approx(1000.0 * small.value, rel=1e-4)
    assert np.allclose(big.train_loss, small.train_loss, rtol=1e-3)


def test_validation_can_be_switched_off(mdp, stochastic_pi) -> None:
    d = sample(mdp, 100, seed=6)
    res = run_fqe(
        mdp,
        d,
        stochastic_pi,
        config=replace(FAST, validation_fraction=0.0, steps_per_epoch=20, max_epochs=2),
    )
    assert res.validation_loss.size == 0 and res.n_validation_episodes == 0
    assert res.train_loss.size == 2


# ------------------------------------------------------------------------------------------
# bad inputs


def _args(**override: Any) -> dict[str, Any]:
    n, d, a = 6, 2, 3
    args: dict[str, Any] = {
        "states": np.zeros((n, d), dtype=np.float32),
        "actions": np.array([0, 1, 2, 0, 1, 2]),
        "rewards": np.ones(n),
        "next_states": np.zeros((n, d), dtype=np.float32),
        "terminals": np.array([False, False, True, False, False, True]),
        "episode_ids": np.array(["a", "a", "a", "b", "b", "b"]),
        "steps": np.array([0, 1, 2, 0, 1, 2]),
        "target_probs": np.full((n, a), 1 / 3),
        "next_target_probs": np.full((n, a), 1 / 3),
        "gamma": 0.9,
    }
    args.update(override)
    return args


def _with(name: str, row: int, col: int | None, value: Any) -> np.ndarray:
    arr = _args()[name].copy()
    if col is None:
        arr[row] = value
    else:
        arr[row, col] = value
    return arr


BAD_PROBS = np.full((6, 3), 1 / 3)
BAD_PROBS[3] = [0.5, 0.5, 0.5]
NEXT_BAD = np.full((6, 3), 1 / 3)
NEXT_BAD[1] = [1.0, -0.5, 0.5]

FQE_BAD = [
    ({"gamma": 1.0}, r"gamma == 1.0, must be in \[0, 1\)"),
    ({"gamma": -0.1}, r"gamma == -0.1, must be in \[0, 1\)"),
    ({"states": np.zeros(6)}, "states: expected a non-empty 2-d array"),
    ({"states": _with("states", 4, 1, np.nan)}, "states: row 4 has NaN/inf"),
    ({"next_states": np.zeros((6, 3))}, r"next_states: expected a numeric array of shape \(6, 2\)"),
    (
        {"next_states": _with("next_states", 1, 0, np.inf)},
        "next_states: row 1 has NaN/inf but is bootstrapped",
    ),
    ({"actions": np.array([0, 1, 2, 0, 1, 3])}, r"actions: row 5 has action 3, outside \[0, 3\)"),
    ({"actions": np.zeros(6)}, "actions: expected integer action ids"),
    ({"actions": np.zeros(5, dtype=int)}, r"actions: expected shape \(6,\)"),
    (
        {"rewards": _with("rewards", 2, None, np.nan)},
        "rewards: row 2 is nan; rewards must be finite",
    ),
    ({"rewards": np.ones(7)}, r"rewards: expected a numeric array of shape \(6,\)"),
    ({"terminals": np.zeros(6)}, r"terminals: expected a bool array of shape \(6,\)"),
    ({"episode_ids": np.array(["a"] * 5)}, r"episode_ids: expected shape \(6,\)"),
    ({"steps": np.array([0, 1, 2, 1, 2, 3])}, "steps: episode 'b' has no row with step == 0"),
    ({"steps": np.array([0, 0, 1, 0, 1, 2])}, "steps: episode 'a' has several rows with step == 0"),
    ({"steps": np.zeros(6)}, r"steps: expected an integer array of shape \(6,\)"),
    ({"target_probs": np.full((6, 0), 1.0)}, r"target_probs: expected shape \(n, A\) with n == 6"),
    ({"target_probs": BAD_PROBS}, "target_probs: row 3 is not a probability distribution"),
    ({"next_target_probs": NEXT_BAD}, "next_target_probs: row 1 is not a probability"),
    ({"next_target_probs": np.full((6, 4), 0.25)}, "next_target_probs: expected 3 action columns"),
    ({"next_valid": np.ones(6)}, r"next_valid: expected a bool array of shape \(6,\)"),
    ({"config": {"lr": 1}}, "config: expected an FQEConfig"),
    ({"pscore": np.ones(5)}, r"pscore: expected a numeric array of shape \(6,\)"),
    (
        {"pscore": np.array([0.5, 0.5, 0.0, 0.5, 0.5, 0.5])},
        r"pscore: row 2 is 0.0; behaviour propensities must be in \(0, 1\]",
    ),
    (
        {
            "pscore": np.full(6, 0.5),
            "actions": np.zeros(6, dtype=np.int64),
            "target_probs": np.tile([0.0, 1.0, 0.0], (6, 1)),
        },
        "gives probability 0 to every logged action",
    ),
    (
        {
            "pscore": np.full(6, 0.5),
            "target_probs": np.where(np.arange(6)[:, None] == 4, np.nan, np.full((6, 3), 1 / 3)),
        },
        "target_probs: row 4 is not a probability distribution",
    ),
    (
        {"episode_ids": np.array(["a"] * 6), "steps": np.arange(6)},
        "only 1 episode; a validation split needs >= 2 episodes",
    ),
]


@pytest.mark.parametrize(("override", "match"), FQE_BAD)
def test_fit_fqe_rejects_bad_input(override: dict[str, Any], match: str) -> None:
    with pytest.raises(OPEError, match=match):
        fit_fqe(**_args(**override))


def test_probabilities_are_only_checked_where_used() -> None:
    """Rows neither initial nor bootstrapped from may hold anything (e.g. zeros on terminals)."""
    tp = np.full((6, 3), 1 / 3)
    tp[[1, 2, 4, 5]] = np.nan  # only rows 0 and 3 are initial states
    ntp = np.full((6, 3), 1 / 3)
    ntp[[2, 5]] = 0.0  # terminal rows: no bootstrap
    res = fit_fqe(
        **_args(target_probs=tp, next_target_probs=ntp),
        config=replace(FAST, steps_per_epoch=5, max_epochs=1),
    )
    assert np.isfinite(res.value)


CONFIG_BAD = [
    ({"hidden_units": ()}, "FQEConfig.hidden_units == \\(\\)"),
    ({"hidden_units": (64, 0)}, "FQEConfig.hidden_units"),
    ({"batch_size": 0}, "FQEConfig.batch_size == 0, must be an integer >= 1"),
    ({"learning_rate": 0.0}, r"FQEConfig.learning_rate == 0.0, must be in \(0.0, 1.0\)"),
    ({"tau": 0.0}, r"FQEConfig.tau == 0.0, must be in \(0, 1\]"),
    ({"tau": 1.5}, r"FQEConfig.tau == 1.5"),
    ({"validation_fraction": 1.0}, r"FQEConfig.validation_fraction == 1.0, must be in \[0, 1\)"),
    ({"reward_scale": -1.0}, "FQEConfig.reward_scale == -1.0, must be > 0"),
    ({"huber_delta": 0.0}, "FQEConfig.huber_delta == 0.0, must be > 0"),
    ({"divergence_ratio": 1.0}, "FQEConfig.divergence_ratio == 1.0, must be > 1.0"),
    ({"tolerance": 0.0}, "FQEConfig.tolerance == 0.0"),
    ({"seed": -1}, "FQEConfig.seed == -1, must be an integer >= 0"),
    ({"threads": 0}, "FQEConfig.threads == 0"),
    ({"importance_weighting": "full"}, "FQEConfig.importance_weighting == 'full': choose one"),
    ({"max_weight": 0.0}, "FQEConfig.max_weight == 0.0, must be > 0"),
    ({"weight_decay": -0.1}, "FQEConfig.weight_decay == -0.1, must be >= 0"),
    ({"interval_refits": 1}, "FQEConfig.interval_refits == 1: give 0"),
    ({"interval_refits": -2}, "FQEConfig.interval_refits == -2"),
    ({"support_clip": -1.0}, "FQEConfig.support_clip == -1.0: give 0 \\(off\\)"),
    ({"support_clip": math.inf}, "FQEConfig.support_clip == inf"),
    ({"support_clip": True}, "FQEConfig.support_clip == True"),
]


@pytest.mark.parametrize(("kwargs", "match"), CONFIG_BAD)
def test_fqe_config_rejects_bad_values(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(OPEError, match=match):
        FQEConfig(**kwargs)


def test_initial_state_rows_follow_first_appearance() -> None:
    rows = initial_state_rows(np.array([7, 7, 3, 3, 3, 9]), np.array([1, 0, 0, 2, 1, 0]))
    assert rows.tolist() == [1, 2, 5]


def test_fitted_q_rejects_states_of_the_wrong_width(mdp, stochastic_pi) -> None:
    d = sample(mdp, 50, seed=7)
    res = run_fqe(mdp, d, stochastic_pi, config=replace(FAST, steps_per_epoch=5, max_epochs=1))
    with pytest.raises(OPEError, match=r"states: expected shape \(m, 6\)"):
        res.q_values(np.zeros((2, 5)))
    with pytest.raises(OPEError, match=r"action_probs: expected shape \(2, 3\)"):
        res.q_values.values(np.zeros((2, 6)), np.ones((2, 2)))


# ------------------------------------------------------------------------------------------
# confounding: a behaviour policy that sees what the states do not


def _confounded(n: int = 2000, seed: int = 0) -> dict[str, Any]:
    """One-step sessions; a hidden user type u in {0, 1} the state does not show.

    The behaviour shows item u with probability 0.9 and the reward is 1 exactly when the item
    is u's. Under the uniform target the value is 0.5; regressing rewards on (state, action)
    alone gives E[r | a] = 0.9, since a is mostly shown to the users who like it.
    """
    rng = np.random.default_rng(seed)
    u = rng.integers(0, 2, n)
    a = np.where(rng.random(n) < 0.9, u, 1 - u)
    return {
        "states": np.ones((n, 1), dtype=np.float32),
        "actions": a.astype(np.int64),
        "rewards": (a == u).astype(np.float64),
        "pscore": np.where(a == u, 0.9, 0.1),
        "n": n,
    }


@pytest.mark.parametrize(
    ("weighting", "expected"), [("none", 0.9), ("per_decision", 0.5), ("cumulative", 0.5)]
)
def test_importance_weighting_removes_confounding(weighting: str, expected: float) -> None:
    c = _confounded()
    n = c["n"]
    probs = np.full((n, 2), 0.5)
    res = fit_fqe(
        c["states"],
        c["actions"],
        c["rewards"],
        c["states"],
        np.ones(n, dtype=bool),
        np.arange(n),
        np.zeros(n, dtype=np.int64),
        probs,
        probs,
        0.9,
        pscore=c["pscore"],
        config=replace(FAST, steps_per_epoch=100, importance_weighting=weighting),
    )
    assert res.value == pytest.approx(expected, abs=0.05)
    assert not res.diverged


def test_fqe_interval_counts_the_refit_spread(mdp, stochastic_pi) -> None:
    from ope.fqe import fqe_interval

    d = sample(mdp, 300, seed=3)
    cfg = replace(FAST, steps_per_epoch=50, max_epochs=4)
    res = run_fqe(mdp, d, stochastic_pi, config=cfg)
    s = np.eye(mdp["S"], dtype=np.float32)
    args = (
        s[d["s"]],
        d["a"],
        d["r"],
        s[d["s2"]],
        d["t"],
        d["ep"],
        d["step"],
        stochastic_pi[d["s"]],
        stochastic_pi[d["s2"]],
    )
    iv = fqe_interval(res, *args, n_refits=3, n_bootstrap=200, random_state=0)
    assert iv.point == res.value and iv.refit_values.shape == (3,)
    half = max(1.959964 * iv.bootstrap_se, 4.302653 * iv.refit_se)  # t with 2 dof
    assert iv.bootstrap_se > 0 and iv.se == pytest.approx(half / 1.959964, rel=1e-6)
    assert iv.low < res.value < iv.high
    assert iv.high - iv.low == pytest.approx(2 * half, rel=1e-6)
    assert iv.extra_se == pytest.approx(math.sqrt(max(iv.se**2 - iv.bootstrap_se**2, 0.0)))
    fixed = fqe_interval(res, *args, n_refits=0, n_bootstrap=200, random_state=0)
    assert fixed.se == fixed.bootstrap_se and fixed.refit_values.size == 0
    for kwargs, match in (
        ({"n_refits": 1}, "at least 2 refits"),
        ({"n_refits": -1}, ">= 0"),
        ({"alpha": 1.5}, "alpha"),
        ({"n_bootstrap": 1}, "n_bootstrap"),
    ):
        with pytest.raises(OPEError, match=match):
            fqe_interval(res, *args, **kwargs)
    with pytest.raises(OPEError, match="FQEResult"):
        fqe_interval(object(), *args)  # type: ignore[arg-type]


def test_widen_rows_adds_the_fitting_error_in_quadrature() -> None:
    import pandas as pd

    from ope.fqe import FQEInterval, widen_rows

    iv = FQEInterval(2.0, 1.0, 3.0, 0.05, 1.0 / 1.959964, 0.3, 0.5, np.array([1.0, 2.0]))
    add = 1.959964 * iv.extra_se
    assert iv.extra_se == pytest.approx(math.sqrt(iv.se**2 - 0.09))
    row = pd.DataFrame(
        {
            "value": [2.0],
            "low": [1.7],
            "high": [2.5],
            "baseline_value": [-4.0],
            "lift": [0.5],
            "lift_low": [0.1],
            "lift_high": [0.8],
            "rel_lift": [0.1],
            "rel_lift_low": [0.0],
            "rel_lift_high": [0.2],
        }
    )
    out = widen_rows(row, iv)
    assert out.low[0] == pytest.approx(2.0 - math.hypot(0.3, add))
    assert out.high[0] == pytest.approx(2.0 + math.hypot(0.5, add))
    assert out.lift_low[0] == pytest.approx(0.5 - math.hypot(0.4, add))
    assert out.lift_high[0] == pytest.approx(0.5 + math.hypot(0.3, add))
    assert out.rel_lift_low[0] == pytest.approx(0.1 - math.hypot(0.1, add / 4.0))
    assert row.low[0] == 1.7  # the input is not modified
    no_extra = FQEInterval(2.0, 1.0, 3.0, 0.05, 0.3, 0.3, 0.1, np.array([1.0, 2.0]))
    pd.testing.assert_frame_equal(widen_rows(row, no_extra), row)
    with pytest.raises(OPEError, match="expected an FQEInterval"):
        widen_rows(row, (1.0, 2.0))  # type: ignore[arg-type]


SUPPORT_CASES = [
    # pi within M * mu everywhere: unchanged
    ([0.5, 0.5, 0.0], [0.4, 0.4, 0.2], 2.0, [0.5, 0.5, 0.0]),
    # pi on an action mu takes 5% of the time, M = 2: 0.1 kept, 0.9 follows mu
    ([0.0, 0.0, 1.0], [0.5, 0.45, 0.05], 2.0, [0.45, 0.405, 0.145]),
    # an action mu never takes: all of pi's mass follows mu
    ([1.0, 0.0, 0.0], [0.0, 0.5, 0.5], 10.0, [0.0, 0.5, 0.5]),
]


@pytest.mark.parametrize(("pi", "mu", "multiple", "expected"), SUPPORT_CASES)
def test_support_clip_moves_only_the_unsupported_mass(pi, mu, multiple, expected) -> None:
    out = support_clip_probs(np.array([pi]), np.array([mu]), multiple)
    assert np.allclose(out, [expected]) and np.allclose(out.sum(axis=1), 1.0)


@pytest.mark.parametrize(
    ("pi", "mu", "multiple", "match"),
    [
        (np.ones((2, 3)) / 3, np.ones((2, 2)) / 2, 2.0, r"behaviour_probs: expected .*\(2, 3\)"),
        (np.ones((2, 3)) / 3, np.ones((2, 3)) / 3, 0.0, "multiple == 0.0, must be"),
    ],
)
def test_support_clip_rejects_bad_input(pi, mu, multiple, match) -> None:
    with pytest.raises(OPEError, match=match):
        support_clip_probs(pi, mu, multiple)


def test_support_clip_leaves_a_well_supported_fit_exact(mdp, stochastic_pi) -> None:
    # the behaviour takes every action often, so a generous multiple changes nothing material
    d = sample(mdp, 1500, seed=1)
    res = run_fqe(mdp, d, stochastic_pi, config=replace(FAST, support_clip=20.0))
    assert not res.diverged, res.warnings
    assert res.value == pytest.approx(true_value(mdp, d, stochastic_pi), rel=0.05)
