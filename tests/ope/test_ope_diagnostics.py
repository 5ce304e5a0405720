"""Weight diagnostics by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ope import (
    Interval,
    bandit_diagnostics,
    estimator_disagreement,
    kish_ess,
    sequential_diagnostics,
    support_from_actions,
    unsupported_mass,
    weight_diagnostics,
)


def test_kish_ess_by_hand() -> None:
    assert kish_ess(np.ones(10)) == pytest.approx(10.0)
    # (1 + 1 + 4)^2 / (1 + 1 + 16) = 36 / 18
    assert kish_ess(np.array([1.0, 1.0, 4.0])) == pytest.approx(2.0)
    assert kish_ess(np.zeros(3)) == 0.0


def test_weight_diagnostics_by_hand() -> None:
    w = np.concatenate([np.zeros(50), np.ones(49), [51.0]])
    d = weight_diagnostics(w)
    assert d.n == 100
    assert d.ess == pytest.approx(100.0**2 / (49 + 51.0**2))
    assert d.ess_ratio == pytest.approx(d.ess / 100)
    assert d.max_weight == 51.0
    assert d.p99_weight == pytest.approx(float(np.quantile(w, 0.99)))
    assert d.zero_support_share == 0.5
    assert d.unsupported_mass is None


ACTION = np.array([0, 1, 2, 0])
PSCORE = np.array([0.5, 0.25, 0.5, 0.2])
TARGET = np.array([[0.5, 0.25, 0.25], [0.2, 0.6, 0.2], [0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])
BEHAVIOUR = np.array([[0.5, 0.5, 0.0], [0.5, 0.25, 0.25], [0.5, 0.0, 0.5], [0.2, 0.4, 0.4]])


def test_bandit_diagnostics_by_hand() -> None:
    d = bandit_diagnostics(
        action=ACTION, pscore=PSCORE, action_dist=TARGET, behaviour_action_dist=BEHAVIOUR
    )
    w = np.array([1.0, 2.4, 1.0, 5.0])
    assert d.ess == pytest.approx(w.sum() ** 2 / np.sum(w**2))
    assert d.max_weight == pytest.approx(5.0)
    assert d.zero_support_share == 0.0
    # unsupported: row 0 action 2 (.25), row 2 action 1 (.5): (.25 + .5) / 4
    assert d.unsupported_mass == pytest.approx(0.75 / 4)


def test_zero_support_share_counts_zero_target_mass_on_logged_action() -> None:
    d = bandit_diagnostics(action=ACTION, pscore=PSCORE, action_dist=TARGET)
    assert d.zero_support_share == 0.0
    # logged actions 0, 1, 0, 1: the target gives 0 to action 0 in row 2 and action 1 in row 3
    d2 = bandit_diagnostics(action=np.array([0, 1, 0, 1]), pscore=PSCORE, action_dist=TARGET)
    assert d2.zero_support_share == pytest.approx(0.5)


def test_unsupported_mass_with_masks() -> None:
    seen = support_from_actions(np.array([0, 0, 1]), 3)
    np.testing.assert_array_equal(seen, [True, True, False])
    # global mask: action 2 unsupported -> mean of target[:, 2]
    assert unsupported_mass(TARGET, support_mask=seen) == pytest.approx(np.mean(TARGET[:, 2]))
    per_row = BEHAVIOUR > 0
    assert unsupported_mass(TARGET, support_mask=per_row) == pytest.approx(0.75 / 4)
    slots = np.stack([TARGET, np.full_like(TARGET, 1 / 3)], axis=2)
    got = unsupported_mass(slots, support_mask=seen, position=np.array([1, 1, 1, 1]))
    assert got == pytest.approx(1 / 3)


def test_sequential_diagnostics_use_trajectory_weights() -> None:
    d = sequential_diagnostics(
        episode_ids=np.array(["a", "a", "b"]),
        steps=np.array([0, 1, 0]),
        pscore=np.array([0.5, 0.5, 0.25]),
        target_prob=np.array([1.0, 0.5, 0.0]),
    )
    # trajectory weights: a: 2 * 1 = 2; b: 0
    assert d.n == 2
    assert d.max_weight == 2.0
    assert d.ess == pytest.approx(1.0)
    assert d.zero_support_share == pytest.approx(1 / 3)


def test_estimator_disagreement() -> None:
    ivs = [
        Interval(1.0, 0.5, 1.5, 0.05, "normal", 0),
        Interval(2.0, 1.0, 3.0, 0.05, "normal", 0),
        Interval(1.5, 1.0, 2.0, 0.05, "normal", 0),
    ]
    # spread 1.0 / median width 1.0
    assert estimator_disagreement(ivs) == pytest.approx(1.0)
    assert math.isnan(estimator_disagreement(ivs[:1]))
    flat = [Interval(1.0, 1.0, 1.0, 0.05, "normal", 0), Interval(2.0, 2.0, 2.0, 0.05, "normal", 0)]
    assert estimator_disagreement(flat) == math.inf
