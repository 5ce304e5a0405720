"""Bad inputs raise OPEError naming the argument, the row and what to fix."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ope import (
    DoublyRobust,
    DoublyRobustWithShrinkage,
    InverseProbabilityWeighting,
    Kernel,
    OffPolicyEvaluation,
    OPEError,
    PerDecisionImportanceSampling,
    SequentialOffPolicyEvaluation,
    SwitchDoublyRobust,
    WeightedDoublyRobust,
    bootstrap_values,
    compare,
    estimate_interval,
    kish_ess,
    unsupported_mass,
)

N, K = 6, 3
OK = {
    "reward": np.array([1.0, 0.0, 1.0, 0.0, 1.0, 1.0]),
    "action": np.array([0, 1, 2, 0, 1, 2]),
    "pscore": np.full(N, 1 / 3),
    "action_dist": np.full((N, K), 1 / 3),
    "estimated_rewards_by_reg_model": np.full((N, K), 0.5),
}


def _with(**over: object) -> dict[str, object]:
    out = dict(OK)
    out.update(over)
    return out


def _set(name: str, index: tuple[int, ...] | int, value: float) -> np.ndarray:
    arr = np.array(OK[name], dtype=float)
    arr[index] = value
    return arr


BANDIT_CASES = [
    (
        "reward length",
        _with(reward=np.ones(12)),
        r"expected reward.shape\[0\] == action.shape\[0\], got 12 and 6",
    ),
    (
        "pscore length",
        _with(pscore=np.full(5, 0.5)),
        r"expected pscore.shape\[0\] == action.shape\[0\], got 5 and 6",
    ),
    (
        "dist length",
        _with(action_dist=np.full((4, K), 1 / 3)),
        r"expected action_dist.shape\[0\] == action.shape\[0\], got 4 and 6",
    ),
    (
        "reward 2-d",
        _with(reward=np.ones((N, 1))),
        r"reward must be a 1-d array of shape \(n,\), got shape \(6, 1\)",
    ),
    (
        "reward nan",
        _with(reward=_set("reward", 3, math.nan)),
        r"reward\[3\] = nan; reward must be finite",
    ),
    ("reward text", _with(reward=np.array(["a"] * N)), "reward must hold numbers"),
    (
        "empty",
        _with(reward=np.array([]), action=np.array([], dtype=int), pscore=np.array([])),
        "reward is empty",
    ),
    (
        "pscore zero",
        _with(pscore=_set("pscore", 2, 0.0)),
        r"pscore\[2\] = 0.0; propensities must be in \(0, 1\]",
    ),
    ("pscore above one", _with(pscore=_set("pscore", 1, 1.5)), r"pscore\[1\] = 1.5"),
    ("pscore nan", _with(pscore=_set("pscore", 0, math.nan)), r"pscore\[0\] = nan"),
    (
        "float actions",
        _with(action=np.array([0.0, 1, 2, 0, 1, 2])),
        r"action must hold integers, got dtype float64; cast it with .astype\(int\)",
    ),
    (
        "negative action",
        _with(action=np.array([0, 1, -1, 0, 1, 2])),
        r"action\[2\] = -1; action must be >= 0",
    ),
    (
        "action out of range",
        _with(action=np.array([0, 1, 2, 3, 1, 2])),
        r"action\[3\] = 3 is out of range: action_dist has 3 actions \(ids 0..2\)",
    ),
    (
        "dist rows",
        _with(action_dist=_set("action_dist", (4, 0), 0.5)),
        r"action_dist\[4, :, 0\] sums to 1.166.*sum 1 within 1e-06",
    ),
    (
        "dist negative",
        _with(action_dist=_set("action_dist", (1, 2), -0.1)),
        r"action_dist\[1, 2, 0\] = -0.1; probabilities must be >= 0",
    ),
    (
        "dist nan",
        _with(action_dist=_set("action_dist", (1, 2), math.nan)),
        r"action_dist\[1, 2, 0\] is not finite",
    ),
    (
        "dist 1-d",
        _with(action_dist=np.full(N, 1.0)),
        r"action_dist must have shape \(n, n_actions\) or \(n, n_actions, len_list\), got shape \(6,\)",
    ),
    (
        "model shape",
        _with(estimated_rewards_by_reg_model=np.zeros((N, K + 1))),
        r"expected estimated_rewards_by_reg_model.shape == action_dist.shape, got \(6, 4\) and \(6, 3\)",
    ),
    (
        "model nan",
        _with(
            estimated_rewards_by_reg_model=_set("estimated_rewards_by_reg_model", (5, 1), math.nan)
        ),
        r"estimated_rewards_by_reg_model\[5, 1, 0\] is not finite",
    ),
    (
        "position needed",
        _with(
            action_dist=np.full((N, K, 2), 1 / 3),
            estimated_rewards_by_reg_model=np.zeros((N, K, 2)),
        ),
        "position is required: action_dist has len_list = 2",
    ),
    (
        "position range",
        _with(
            action_dist=np.full((N, K, 2), 1 / 3),
            estimated_rewards_by_reg_model=np.zeros((N, K, 2)),
            position=np.array([0, 1, 2, 0, 0, 0]),
        ),
        r"position\[2\] = 2 is out of range: action_dist has len_list = 2",
    ),
    (
        "position length",
        _with(position=np.zeros(3, dtype=int)),
        r"expected position.shape\[0\] == action.shape\[0\], got 3 and 6",
    ),
    ("position float", _with(position=np.zeros(N)), "position must hold integers"),
    (
        "model missing",
        _with(estimated_rewards_by_reg_model=None),
        "DoublyRobust needs estimated_rewards_by_reg_model",
    ),
    ("pscore missing", _with(pscore=None), r"DoublyRobust needs pscore of shape \(n,\)"),
]


@pytest.mark.parametrize(
    ("label", "kwargs", "match"), BANDIT_CASES, ids=[c[0] for c in BANDIT_CASES]
)
def test_bandit_bad_inputs(label: str, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(OPEError, match=match):
        DoublyRobust().estimate_policy_value(**kwargs)


HYPER_CASES = [
    (
        lambda: InverseProbabilityWeighting(lambda_=-1.0),
        r"InverseProbabilityWeighting: lambda_ == -1.0, must be >= 0",
    ),
    (lambda: InverseProbabilityWeighting(lambda_=math.nan), "lambda_ is NaN"),
    (lambda: DoublyRobust(lambda_="3"), "lambda_ must be a number, got '3'"),
    (lambda: SwitchDoublyRobust(), "SwitchDoublyRobust: lambda_ is required"),
    (lambda: DoublyRobustWithShrinkage(), "DoublyRobustWithShrinkage: lambda_ is required"),
    (
        lambda: InverseProbabilityWeighting(estimator_name=""),
        "estimator_name must be a non-empty string",
    ),
    (lambda: PerDecisionImportanceSampling(gamma=1.5), r"gamma == 1.5, must be in \[0, 1\]"),
    (lambda: PerDecisionImportanceSampling(gamma=-0.1), r"gamma == -0.1, must be >= 0"),
    (lambda: OffPolicyEvaluation(()), "give at least one estimator"),
    (
        lambda: OffPolicyEvaluation(
            (InverseProbabilityWeighting(), InverseProbabilityWeighting(3.0))
        ),
        "estimator_name 'ipw' is used twice",
    ),
    (lambda: OffPolicyEvaluation((PerDecisionImportanceSampling(),)), "is not a bandit estimator"),
    (
        lambda: SequentialOffPolicyEvaluation(
            (PerDecisionImportanceSampling(0.9), WeightedDoublyRobust(1.0))
        ),
        r"different gamma \[0.9, 1.0\]",
    ),
]


@pytest.mark.parametrize(("make", "match"), HYPER_CASES, ids=[c[1][:40] for c in HYPER_CASES])
def test_bad_hyperparameters(make: object, match: str) -> None:
    with pytest.raises(OPEError, match=match):
        make()  # type: ignore[operator]


KERNEL = Kernel.mean(np.arange(10.0), "k")
IDS = np.repeat(np.arange(5), 2)
INTERVAL_CASES = [
    ({"alpha": 0.0}, r"alpha == 0.0, must be in \(0, 1\)"),
    ({"alpha": 1.2}, r"alpha == 1.2, must be in \(0, 1\)"),
    ({"n_bootstrap": 5}, "n_bootstrap == 5, must be >= 10"),
    ({"n_bootstrap": 10.5}, "n_bootstrap must be a whole number"),
    ({"method": "bca"}, "method == 'bca', must be one of percentile, normal"),
    ({"scheme": "wild"}, "scheme == 'wild', must be one of auto, multinomial, poisson"),
    ({"scheme": "poisson"}, "scheme='poisson' needs at least 100 sessions, got 5"),
    ({"random_state": "seed"}, "random_state must be None, an int seed or a numpy Generator"),
    ({"random_state": -3}, "random_state == -3, must be >= 0"),
]


@pytest.mark.parametrize(
    ("kwargs", "match"), INTERVAL_CASES, ids=[c[1][:30] for c in INTERVAL_CASES]
)
def test_bad_interval_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(OPEError, match=match):
        estimate_interval(KERNEL, IDS, **kwargs)  # type: ignore[arg-type]


def test_interval_needs_two_sessions() -> None:
    with pytest.raises(OPEError, match="an interval needs at least 2 sessions"):
        estimate_interval(KERNEL, np.zeros(10, dtype=int))
    with pytest.raises(OPEError, match="an interval needs at least 2 sessions"):
        estimate_interval(KERNEL, np.zeros(10, dtype=int), method="normal")


def test_bad_episode_ids() -> None:
    with pytest.raises(
        OPEError, match=r"expected episode_ids.shape\[0\] == reward.shape\[0\], got 4 and 10"
    ):
        bootstrap_values(KERNEL, np.arange(4))
    with pytest.raises(OPEError, match=r"episode_ids\[2\] is missing"):
        bootstrap_values(KERNEL, np.array(["a", "b", None] + ["c"] * 7, dtype=object))
    with pytest.raises(OPEError, match=r"episode_ids\[1\] is NaN"):
        bootstrap_values(KERNEL, np.array([0.0, math.nan] + [1.0] * 8))


def test_compare_needs_the_same_rows() -> None:
    with pytest.raises(OPEError, match="cover different rows \\(4 and 10\\)"):
        compare(KERNEL, Kernel.mean(np.ones(4), "b"))


SEQ_OK = {
    "reward": np.array([1.0, 0.0, 2.0, 1.0]),
    "episode_ids": np.array(["a", "a", "b", "b"]),
    "steps": np.array([0, 1, 0, 1]),
    "pscore": np.full(4, 0.5),
    "target_prob": np.full(4, 0.5),
    "q_hat": np.zeros(4),
    "v_hat": np.zeros(4),
}


def _seq(**over: object) -> dict[str, object]:
    out = dict(SEQ_OK)
    out.update(over)
    return out


SEQ_CASES = [
    (
        "gap in steps",
        _seq(steps=np.array([0, 2, 0, 1])),
        r"episode 'a' \(row 1\) has steps \[0, 2\]; steps must run 0, 1, ..., T-1",
    ),
    (
        "repeated step",
        _seq(steps=np.array([0, 1, 1, 1])),
        r"episode 'b' \(row 2\) has steps \[1, 1\]",
    ),
    ("negative step", _seq(steps=np.array([0, 1, -1, 0])), r"steps\[2\] = -1; steps must be >= 0"),
    (
        "length",
        _seq(target_prob=np.full(3, 0.5)),
        r"expected target_prob.shape\[0\] == reward.shape\[0\], got 3 and 4",
    ),
    (
        "target above one",
        _seq(target_prob=np.array([0.5, 1.2, 0.5, 0.5])),
        r"target_prob\[1\] = 1.2; probabilities must be in \[0, 1\]",
    ),
    (
        "pscore zero",
        _seq(pscore=np.array([0.5, 0.5, 0.0, 0.5])),
        r"pscore\[2\] = 0.0; propensities must be in \(0, 1\]",
    ),
    ("missing q", _seq(q_hat=None), r"WeightedDoublyRobust needs q_hat of shape \(n,\)"),
    ("missing target", _seq(target_prob=None), "pscore and target_prob must be given together"),
    ("nan reward", _seq(reward=np.array([1.0, math.nan, 0, 0])), r"reward\[1\] = nan"),
    (
        "missing id",
        _seq(episode_ids=np.array(["a", None, "b", "b"], dtype=object)),
        r"episode_ids\[1\] is missing",
    ),
]


@pytest.mark.parametrize(("label", "kwargs", "match"), SEQ_CASES, ids=[c[0] for c in SEQ_CASES])
def test_sequential_bad_inputs(label: str, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(OPEError, match=match):
        WeightedDoublyRobust(0.9).estimate_policy_value(**kwargs)


def test_diagnostics_bad_inputs() -> None:
    with pytest.raises(OPEError, match=r"weights\[1\] = -1.0; importance weights must be >= 0"):
        kish_ess(np.array([1.0, -1.0]))
    with pytest.raises(
        OPEError, match="give exactly one of behaviour_action_dist and support_mask"
    ):
        unsupported_mass(np.full((2, 3), 1 / 3))
    with pytest.raises(OPEError, match=r"support_mask has shape \(4,\); expected \(3,\)"):
        unsupported_mass(np.full((2, 3), 1 / 3), support_mask=np.ones(4, dtype=bool))
    with pytest.raises(OPEError, match="support_mask must be boolean"):
        unsupported_mass(np.full((2, 3), 1 / 3), support_mask=np.ones(3))
