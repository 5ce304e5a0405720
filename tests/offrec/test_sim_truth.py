"""Ground truth: agrees with the logs, orders policies sensibly, checks its inputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from offrec.simulator import (
    RewardWeights,
    SimulatorConfig,
    behaviour_action_probs,
    behaviour_per_decision_value,
    expected_rewards,
    per_decision_value,
    run_behaviour,
    run_policy,
    simulate_events,
)
from offrec.simulator.errors import SimulatorError
from offrec.simulator.world import World
from sql.dataset import ActionSpace

CFG = SimulatorConfig()
WORLD = World(CFG)
ALL_ITEMS = ActionSpace(tuple(WORLD.catalog.item_ids))  # every item is an action, no 'other'
ORDER = np.argsort(-WORLD.catalog.popularity, kind="stable")
TOP50 = ActionSpace(
    tuple(WORLD.catalog.item_ids[ORDER[:50]]), tuple(WORLD.catalog.item_ids[ORDER[50:]])
)


class Uniform:
    def __init__(self, n_actions: int) -> None:
        self.name, self.n_actions = "uniform", n_actions

    def action_probs(self, states: np.ndarray) -> np.ndarray:
        return np.full((states.shape[0], self.n_actions), 1.0 / self.n_actions)


class SameCategory:
    """Reads the state: after an interaction, show the best top item of that item's category."""

    name = "same-category"

    def __init__(self, space: ActionSpace, k: int = 3) -> None:
        cat = WORLD.catalog
        self.top = cat.index_of(space.top_items, what="top")
        self.n_actions, self.k = space.n_actions, k
        users = WORLD.users(np.arange(2000))
        reward = WORLD.responses(users).expected_reward(cat.price, RewardWeights())[:, self.top]
        self.start = int(np.argmax(reward.mean(axis=0)))
        self.best = {}
        for c in range(CFG.n_categories):
            fans = users.favourite == c
            self.best[c] = int(np.argmax(reward[fans].mean(axis=0)))

    def action_probs(self, states: np.ndarray) -> np.ndarray:
        last = states[:, 1 + self.k].astype(int)  # last_item_1
        probs = np.zeros((states.shape[0], self.n_actions))
        known = last < self.n_actions - 1
        probs[~known, self.start] = 1.0
        cats = WORLD.catalog.category[self.top[last[known]]]
        probs[np.flatnonzero(known), [self.best[c] for c in cats]] = 1.0
        return probs


def logged_returns(frame: pd.DataFrame, gamma: float, w: RewardWeights) -> np.ndarray:
    """Per-session discounted realised return, rewards attributed by request_id."""
    kind = frame.event_type
    reward = (
        w.click * (kind == "click")
        + w.add_to_cart * (kind == "add_to_cart")
        + (w.purchase + w.revenue * frame.price) * (kind == "purchase")
    )
    per_request = reward.groupby(frame.request_id).sum()
    imp = frame[kind == "impression"].sort_values("ts")
    step = imp.groupby("session_id").cumcount().to_numpy()
    disc = per_request.loc[imp.request_id].to_numpy() * gamma**step
    return pd.Series(disc).groupby(imp.session_id.to_numpy()).sum().to_numpy()


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return simulate_events(CFG, n_sessions=6000, seed=21).to_pandas()


@pytest.mark.parametrize(
    ("gamma", "weights"),
    [
        (1.0, RewardWeights()),
        (0.9, RewardWeights(click=0.5, add_to_cart=0, purchase=1, revenue=0.2)),
    ],
)
def test_behaviour_truth_matches_its_own_logs(frame, gamma: float, weights) -> None:
    returns = logged_returns(frame, gamma, weights)
    truth = run_behaviour(n_sessions=20000, seed=99, gamma=gamma, weights=weights, config=CFG)
    se = math.hypot(returns.std(ddof=1) / math.sqrt(len(returns)), truth.value_se)
    assert abs(returns.mean() - truth.value) < 3.5 * se, (returns.mean(), truth.value, se)
    assert truth.n_sessions == 20000 and truth.policy == "behaviour"
    low, high = truth.interval(0.05)
    assert low < truth.value < high and high - low == pytest.approx(2 * 1.959964 * truth.value_se)
    n_dec = (frame.event_type == "impression").sum()
    assert truth.mean_length == pytest.approx(n_dec / 6000, rel=0.05)


def test_policies_are_ordered_uniform_behaviour_state_aware() -> None:
    kw = {"n_sessions": 20000, "seed": 5, "gamma": 0.95, "config": CFG}
    uniform = run_policy(Uniform(TOP50.n_actions), TOP50, **kw)
    behaviour = run_behaviour(**kw)
    smart = run_policy(SameCategory(TOP50), TOP50, **kw)
    assert uniform.value + 5 * uniform.value_se < behaviour.value
    # a policy reading the state's last item beats the logging policy clearly (> 25 %)
    assert smart.value > 1.25 * behaviour.value
    assert smart.value - 5 * smart.value_se > behaviour.value + 5 * behaviour.value_se
    # and good recommendations keep users longer (sequential, not a bandit)
    assert smart.mean_length > behaviour.mean_length > uniform.mean_length - 0.1
    assert smart.realised["clicks"] > behaviour.realised["clicks"]


def test_same_seed_same_truth_and_horizon() -> None:
    a = run_policy(Uniform(51), TOP50, n_sessions=2000, seed=3, config=CFG)
    b = run_policy(Uniform(51), TOP50, n_sessions=2000, seed=3, config=CFG)
    assert a.to_dict() == b.to_dict()
    one = run_policy(Uniform(51), TOP50, n_sessions=2000, seed=3, config=CFG, horizon=1)
    assert one.value == pytest.approx(a.value_by_step[0])
    assert one.mean_length == 1.0 and one.value < a.value
    assert a.value == pytest.approx(a.value_by_step.sum())


class Fixed:
    def __init__(self, out, n_actions: int | None = 51, name: str = "broken") -> None:
        self.out, self.name = out, name
        if n_actions is not None:
            self.n_actions = n_actions

    def action_probs(self, states: np.ndarray) -> np.ndarray:
        return self.out(states.shape[0])


@pytest.mark.parametrize(
    ("policy", "space", "match"),
    [
        (
            Fixed(lambda n: np.full((n, 50), 1 / 50)),
            TOP50,
            r"policy 'broken': action_probs returned shape \(\d+, 50\), expected \(\d+, 51\)",
        ),
        (
            Fixed(lambda n: np.full((n, 51), 0.5)),
            TOP50,
            r"action_probs row 0 sums to 25.5, not 1; return probabilities",
        ),
        (
            Fixed(lambda n: np.where(np.arange(51) == 0, np.nan, 1 / 50) * np.ones((n, 1))),
            TOP50,
            r"action_probs row 0 has NaN or inf values",
        ),
        (
            Fixed(lambda n: np.tile(np.r_[-0.1, 1.1, np.zeros(49)], (n, 1))),
            TOP50,
            r"action_probs row 0 has a negative probability \(-0.1\)",
        ),
        (Fixed(lambda n: "probs"), TOP50, r"action_probs returned str, not a numeric array"),
        (
            Fixed(lambda n: np.full((n, 51), 1 / 51), n_actions=40),
            TOP50,
            r"has n_actions = 40 but the action space has 51 actions",
        ),
        (
            Fixed(lambda n: np.full((n, 101), 1 / 101), n_actions=101),
            ALL_ITEMS,
            r"gives probability 0.0099 to 'other', but the action space has no other items",
        ),
        (object(), TOP50, r"policy object has no action_probs\(states\) method"),
        (Uniform(51), ("i00001",), r"action_space must be a sql.dataset.ActionSpace"),
    ],
)
def test_bad_policies_are_named_errors(policy, space, match: str) -> None:
    with pytest.raises(SimulatorError, match=match):
        run_policy(policy, space, n_sessions=50, config=CFG)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gamma": 1.5}, r"gamma = 1.5: must be a number in \[0, 1\]"),
        ({"horizon": 0}, r"horizon = 0: must be a whole number >= 1 or None"),
        ({"n_sessions": 0}, r"n_sessions = 0: must be >= 1"),
        ({"weights": {"clicks": 1}}, r"weights: unknown reward weight 'clicks'"),
    ],
)
def test_bad_run_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(SimulatorError, match=match):
        run_behaviour(**{"n_sessions": 10, "config": CFG, **kwargs})


def test_per_decision_truth_matches_realised_rewards(frame) -> None:
    imp = frame[frame.event_type == "impression"]
    kind = frame.event_type
    reward = (kind == "click") + 2.0 * (kind == "add_to_cart") + 5.0 * (kind == "purchase")
    realised = reward.groupby(frame.request_id).sum().loc[imp.request_id].to_numpy()
    users, positions = imp.user_id.to_numpy(), imp.position.to_numpy()
    matrix = expected_rewards(users, positions, ALL_ITEMS, config=CFG)
    assert matrix.shape == (len(imp), 101) and np.all(matrix[:, -1] == 0)
    shown = WORLD.catalog.index_of(list(imp.item_id), what="item")
    resid = realised - matrix[np.arange(len(imp)), shown]
    assert abs(resid.mean()) < 3.5 * resid.std(ddof=1) / math.sqrt(len(resid))
    # the logging policy's own per-decision value is its mean realised reward
    beh = behaviour_action_probs(users, positions, ALL_ITEMS, config=CFG)
    np.testing.assert_allclose(beh.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(beh[np.arange(len(imp)), shown], imp.propensity, rtol=1e-12)
    v_beh = per_decision_value(users, positions, beh, ALL_ITEMS, config=CFG)
    np.testing.assert_allclose(v_beh, behaviour_per_decision_value(users, positions, config=CFG))
    resid = realised - v_beh
    assert abs(resid.mean()) < 3.5 * resid.std(ddof=1) / math.sqrt(len(resid))
    # IPS with the logged propensities recovers a target's per-decision truth
    target = np.zeros((len(imp), 101))
    target[:, :100] = WORLD.catalog.category[None, :] == 0
    target /= target.sum(axis=1, keepdims=True)
    truth = per_decision_value(users, positions, target, ALL_ITEMS, config=CFG).mean()
    ips = target[np.arange(len(imp)), shown] / imp.propensity.to_numpy() * realised
    assert abs(ips.mean() - truth) < 4 * ips.std(ddof=1) / math.sqrt(len(ips))


def test_other_bucket_reward_is_the_mean_over_its_items() -> None:
    users, pos = np.array(["u0000001", "u0000500", "u0000001"]), np.array([0, 2, 1])
    m_top = expected_rewards(users, pos, TOP50, config=CFG)
    m_all = expected_rewards(users, pos, ALL_ITEMS, config=CFG)
    others = [int(i[1:]) for i in TOP50.other_items]
    np.testing.assert_allclose(m_top[:, -1], m_all[:, others].mean(axis=1))
    np.testing.assert_allclose(m_top[:, :50], m_all[:, ORDER[:50]])
    np.testing.assert_allclose(m_top[2], m_top[0] * CFG.position_decay)
    probs = behaviour_action_probs(users, pos, TOP50, config=CFG)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    # with an other bucket, the exact behaviour value is not per_decision_value(probs)
    exact = behaviour_per_decision_value(users, pos, config=CFG)
    all_probs = behaviour_action_probs(users, pos, ALL_ITEMS, config=CFG)
    np.testing.assert_allclose(exact, (all_probs * m_all).sum(axis=1))


@pytest.mark.parametrize(
    ("users", "positions", "match"),
    [
        (["u0000001", "bob"], [0, 0], r"user_ids\[1\] = 'bob' is not a simulator user id"),
        (["u0000001"], [3], r"positions\[0\] = 3 is outside 0..2"),
        (["u0000001"], [0.5], r"positions\[0\] = 0.5 is not a whole number"),
        (["u0000001", "u0000002"], [0], r"positions must have shape \(2,\) like user_ids"),
    ],
)
def test_bad_per_decision_inputs(users, positions, match: str) -> None:
    with pytest.raises(SimulatorError, match=match):
        expected_rewards(users, positions, TOP50, config=CFG)


def test_bad_target_distribution_is_rejected() -> None:
    with pytest.raises(SimulatorError, match=r"policy 'target': action_probs row 0 sums to 2"):
        per_decision_value(["u0000001"], [0], np.full((1, 51), 2 / 51), TOP50, config=CFG)
