"""Bandit estimators against hand-computed values on a 4-decision example."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ope import (
    DirectMethod,
    DoublyRobust,
    DoublyRobustWithShrinkage,
    InverseProbabilityWeighting,
    LoggedPolicyValue,
    OPEError,
    SelfNormalizedDoublyRobust,
    SelfNormalizedInverseProbabilityWeighting,
    SwitchDoublyRobust,
    importance_weights,
)

# Four logged decisions, three actions, one slot.
REWARD = np.array([1.0, 0.0, 2.0, 2.0])
ACTION = np.array([0, 1, 2, 0])
PSCORE = np.array([0.5, 0.25, 0.5, 0.2])
DIST = np.array(
    [
        [0.5, 0.25, 0.25],  # pi(a=0) = .5  -> w = 1
        [0.2, 0.6, 0.2],  # pi(a=1) = .6  -> w = 2.4
        [0.0, 0.5, 0.5],  # pi(a=2) = .5  -> w = 1
        [0.8, 0.2, 0.0],  # pi(a=0) = .8  -> w = 4
    ]
)
QHAT = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 1.0], [0.0, 1.0, 2.0], [1.0, 2.0, 3.0]])
# by hand: w = [1, 2.4, 1, 4]; dm = [.5, .6, 1.5, 1.2]; q(x, a_logged) = [1, .5, 2, 1];
# residual r - q = [0, -.5, 0, 1]
DM = [0.5, 0.6, 1.5, 1.2]
W = [1.0, 2.4, 1.0, 4.0]
RES = [0.0, -0.5, 0.0, 1.0]

EXPECTED = [
    (LoggedPolicyValue(), (1 + 0 + 2 + 2) / 4),
    (InverseProbabilityWeighting(), (1 * 1 + 2.4 * 0 + 1 * 2 + 4 * 2) / 4),
    (InverseProbabilityWeighting(lambda_=2.0), (1 * 1 + 2 * 0 + 1 * 2 + 2 * 2) / 4),
    (SelfNormalizedInverseProbabilityWeighting(), 11 / 8.4),
    (DirectMethod(), (0.5 + 0.6 + 1.5 + 1.2) / 4),
    (DoublyRobust(), (0.5 + (0.6 - 2.4 * 0.5) + 1.5 + (1.2 + 4 * 1)) / 4),
    (DoublyRobust(lambda_=2.0), (0.5 + (0.6 - 2 * 0.5) + 1.5 + (1.2 + 2 * 1)) / 4),
    (SelfNormalizedDoublyRobust(), 3.8 / 4 + (2.4 * -0.5 + 4 * 1) / 8.4),
    # Switch at 3: the w = 4 decision falls back to the model
    (SwitchDoublyRobust(lambda_=3.0), (0.5 + (0.6 - 2.4 * 0.5) + 1.5 + 1.2) / 4),
    (SwitchDoublyRobust(lambda_=math.inf), (0.5 + (0.6 - 2.4 * 0.5) + 1.5 + (1.2 + 4)) / 4),
    (SwitchDoublyRobust(lambda_=0.5), 3.8 / 4),
    (
        DoublyRobustWithShrinkage(lambda_=1.0),
        (0.5 + (0.6 - 0.5 * 2.4 / (2.4**2 + 1)) + 1.5 + (1.2 + 4 / (16 + 1))) / 4,
    ),
    (DoublyRobustWithShrinkage(lambda_=0.0), 3.8 / 4),
    (DoublyRobustWithShrinkage(lambda_=math.inf), (0.5 - 0.6 + 1.5 + 5.2) / 4),
]


def _kwargs(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "reward": REWARD,
        "action": ACTION,
        "pscore": PSCORE,
        "action_dist": DIST,
        "estimated_rewards_by_reg_model": QHAT,
    }
    base.update(over)
    return base


@pytest.mark.parametrize(("estimator", "expected"), EXPECTED, ids=[f"{e!r}" for e, _ in EXPECTED])
def test_closed_form(estimator: object, expected: float) -> None:
    got = estimator.estimate_policy_value(**_kwargs())  # type: ignore[attr-defined]
    assert got == pytest.approx(expected, rel=1e-13)
    # the per-sample kernel's mean is the estimate
    rounds = estimator.estimate_round_rewards(**_kwargs())  # type: ignore[attr-defined]
    assert rounds.shape == (4,)
    assert float(rounds.mean()) == pytest.approx(expected, rel=1e-13)


def test_importance_weights_by_hand() -> None:
    w = importance_weights(action=ACTION, pscore=PSCORE, action_dist=DIST)
    np.testing.assert_allclose(w, W, rtol=1e-15)


def test_two_and_three_dimensional_action_dist_agree() -> None:
    for est, _ in EXPECTED:
        a = est.estimate_policy_value(**_kwargs())
        b = est.estimate_policy_value(
            **_kwargs(action_dist=DIST[:, :, None], estimated_rewards_by_reg_model=QHAT[:, :, None])
        )
        assert a == b


def test_position_selects_the_slot() -> None:
    # slot 1 holds the example's distribution; slot 0 a different (uniform) one
    uniform = np.full_like(DIST, 1 / 3)
    dist = np.stack([uniform, DIST], axis=2)
    qhat = np.stack([np.zeros_like(QHAT), QHAT], axis=2)
    position = np.ones(4, dtype=int)
    for est, expected in EXPECTED:
        got = est.estimate_policy_value(
            **_kwargs(action_dist=dist, estimated_rewards_by_reg_model=qhat, position=position)
        )
        assert got == pytest.approx(expected, rel=1e-13)
    # slot 0: uniform target, q = 0 -> IPW = mean(r / (3 p)); DM = 0
    got0 = InverseProbabilityWeighting().estimate_policy_value(
        **_kwargs(action_dist=dist, estimated_rewards_by_reg_model=qhat, position=position * 0)
    )
    assert got0 == pytest.approx(float(np.mean(REWARD / (3 * PSCORE))), rel=1e-13)


def test_snipw_is_a_ratio_not_a_fixed_vector() -> None:
    kernel = SelfNormalizedInverseProbabilityWeighting().kernel(**_kwargs())
    # numerator and denominator columns: sum w r / sum w
    np.testing.assert_allclose(kernel.components[:, 0], np.multiply(W, REWARD))
    np.testing.assert_allclose(kernel.components[:, 1], W)
    # dropping the w = 4 decision changes the normaliser too
    half = kernel.evaluate(kernel.components[:3].sum(axis=0))[0]
    assert half == pytest.approx((1 + 0 + 2) / (1 + 2.4 + 1))


def test_dr_needs_the_reward_model() -> None:
    with pytest.raises(OPEError, match="DoublyRobust needs estimated_rewards_by_reg_model"):
        DoublyRobust().estimate_policy_value(
            reward=REWARD, action=ACTION, pscore=PSCORE, action_dist=DIST
        )


def test_dm_needs_no_logged_rewards() -> None:
    got = DirectMethod().estimate_policy_value(
        action_dist=DIST, estimated_rewards_by_reg_model=QHAT
    )
    assert got == pytest.approx(0.95)


def test_estimator_name_and_frozen() -> None:
    est = InverseProbabilityWeighting(lambda_=3.0, estimator_name="ipw_3")
    assert est.estimator_name == "ipw_3"
    assert SwitchDoublyRobust(3.0).lambda_ == 3.0  # positional hyper-parameter, as obp
    with pytest.raises(AttributeError):
        est.lambda_ = 1.0  # type: ignore[misc]
