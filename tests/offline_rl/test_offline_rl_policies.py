"""Policies: probabilities, heads over Q, baselines, top-k lists, sampling and bad inputs."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

from offline_rl.errors import TrainError
from offline_rl.policies import (
    BehaviorCloningPolicy,
    EpsilonGreedyPolicy,
    GreedyPolicy,
    LoggedBehaviourPolicy,
    MostPopularPolicy,
    Policy,
    SoftmaxPolicy,
    UniformPolicy,
)
from offline_rl.qfunction import QFunction
from sql.dataset import ActionSpace


@pytest.fixture(scope="module")
def states(mdp):
    train, _, _, _ = mdp
    return train.states[:40]


def _rows_are_distributions(p, n, a):
    assert p.shape == (n, a) and p.dtype == np.float64
    assert (p >= 0).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)


def test_heads_over_q_follow_their_formulas(trained, states):
    _, models = trained
    q = models["dqn"].q_function
    values = q.q_values(states)
    best = values.argmax(axis=1)
    greedy = GreedyPolicy(q).action_probs(states)
    _rows_are_distributions(greedy, 40, 4)
    np.testing.assert_array_equal(greedy.argmax(axis=1), best)
    assert set(np.unique(greedy)) == {0.0, 1.0}
    eps = EpsilonGreedyPolicy(q, 0.2).action_probs(states)
    np.testing.assert_allclose(eps, 0.8 * greedy + 0.05)
    soft = SoftmaxPolicy(q, temperature=0.5).action_probs(states)
    z = np.exp((values - values.max(axis=1, keepdims=True)) / 0.5)
    np.testing.assert_allclose(soft, z / z.sum(axis=1, keepdims=True), rtol=1e-10)
    for p in (GreedyPolicy(q), EpsilonGreedyPolicy(q), SoftmaxPolicy(q)):
        assert isinstance(p, Policy) and p.n_actions == 4


def test_q_values_are_in_reward_units(trained, tiny):
    _, models = trained
    q = models["dqn"].q_function
    assert q.units == "reward" and q.scale == pytest.approx(0.1)  # max reward 10
    # unlocked at the last step: Q(s, 2) is the immediate 10, Q(s, 0) is 1
    v = q.q_values(np.array([[1, 3]], dtype=np.float32))[0]
    assert v[2] == pytest.approx(10.0, abs=1.5) and v[0] == pytest.approx(1.0, abs=1.0)


def test_bcq_heads_respect_the_imitator_mask(trained, states):
    _, models = trained
    model = models["bcq"]
    # with flexibility 0.3 every action of this behaviour (0.4 vs 0.2) is allowed, and our
    # greedy head agrees with d3rlpy's own BCQ action choice
    q = model.q_function
    assert q.allowed(states).all()
    greedy = GreedyPolicy(q).action_probs(states).argmax(axis=1)
    np.testing.assert_array_equal(model.algo.predict(model.spec.normalise(states)), greedy)
    # a strict filter (0.9 of the most likely action) keeps about the imitator's favourite only
    strict = copy.deepcopy(model.algo)
    strict.config.action_flexibility = 0.9
    q = QFunction(strict, model.spec, "bcq-strict", bcq=True)
    values, allowed = q.q_and_allowed(states)
    favourite = model.imitator.logits(states).argmax(axis=1)
    assert allowed[np.arange(40), favourite].all() and not allowed.all()
    greedy = GreedyPolicy(q).action_probs(states).argmax(axis=1)
    np.testing.assert_array_equal(greedy, np.where(allowed, values, -np.inf).argmax(axis=1))
    assert (greedy != values.argmax(axis=1)).any(), "the mask, not Q alone, decides somewhere"
    soft = SoftmaxPolicy(q).action_probs(states)
    assert (soft[~allowed] == 0).all()
    _rows_are_distributions(soft, 40, 4)


def test_behaviour_cloning_temperature(trained, states):
    _, models = trained
    imitator = models["bc"].imitator
    logits = imitator.logits(states)
    for temperature in (1.0, 3.0):
        p = BehaviorCloningPolicy(imitator, temperature).action_probs(states)
        z = np.exp((logits - logits.max(axis=1, keepdims=True)) / temperature)
        np.testing.assert_allclose(p, z / z.sum(axis=1, keepdims=True), rtol=1e-10)
    hot = BehaviorCloningPolicy(imitator, 3.0).action_probs(states)
    cold = BehaviorCloningPolicy(imitator, 1.0).action_probs(states)
    assert hot.max() < cold.max()


def test_uniform_and_most_popular(mdp, states):
    train, _, _, actions = mdp
    u = UniformPolicy(4).action_probs(states)
    np.testing.assert_allclose(u, 0.25)
    mp = MostPopularPolicy.from_transitions(train, 4, actions=actions)
    p = mp.action_probs(states)
    _rows_are_distributions(p, 40, 4)
    assert (p[:, 0] == 1.0).all() and mp.best_action == 0
    counts = np.bincount(train.actions, minlength=4)
    mixed = MostPopularPolicy(counts, epsilon=0.5).action_probs(states[:1])[0]
    np.testing.assert_allclose(mixed, 0.5 * np.eye(4)[0] + 0.5 * counts / counts.sum())


def test_most_popular_never_picks_the_other_bucket():
    counts = np.array([5, 9, 2, 100])  # 'other' (last) is the most frequent
    mp = MostPopularPolicy(counts)
    assert mp.best_action == 1
    np.testing.assert_array_equal(mp.top_k_actions(np.zeros((2, 3)), 3), [[1, 0, 2], [1, 0, 2]])
    np.testing.assert_array_equal(
        mp.top_k_actions(np.zeros((1, 3)), 4, include_other=True), [[1, 3, 0, 2]]
    )
    only_other = MostPopularPolicy(np.array([0, 0, 7]))
    assert only_other.best_action == 2


def test_logged_behaviour_policy_is_exact_at_the_logged_action(mdp):
    train, _, _, actions = mdp
    logged = train.select(np.arange(len(train)) < 12)
    pol = LoggedBehaviourPolicy(logged, 4, actions=actions)
    p = pol.action_probs(logged.states)
    _rows_are_distributions(p, 12, 4)
    rows = np.arange(12)
    expected = logged.propensities.copy()
    other = logged.actions == 3
    expected[other] = np.minimum(1.0, logged.propensities[other] * 2)  # 2 items in 'other'
    np.testing.assert_allclose(p[rows, logged.actions], expected)
    np.testing.assert_allclose(pol.logged_propensities(), expected)
    with pytest.raises(TrainError, match="known only at the 12 logged rows"):
        pol.action_probs(logged.states[::-1])


def test_logged_behaviour_policy_needs_propensities(mdp):
    train, _, _, actions = mdp
    organic = dataclasses.replace(train, propensities=np.where(train.steps == 2, np.nan, 0.5))
    with pytest.raises(TrainError, match=r"propensity unknown for 600 of 2400 rows \(first: row 2"):
        LoggedBehaviourPolicy(organic, 4, actions=actions)
    bad = dataclasses.replace(train, propensities=np.full(len(train), 1.5))
    with pytest.raises(TrainError, match=r"propensity 1.5 in row 0 is outside \(0, 1\]"):
        LoggedBehaviourPolicy(bad, 4, actions=actions)


def test_top_k_actions_and_items(trained, states):
    _, models = trained
    pol = models["dqn"].policy("softmax")
    probs = pol.action_probs(states)
    top2 = pol.top_k_actions(states, 2)
    assert top2.shape == (40, 2) and (top2 != 3).all()
    order = np.argsort(-probs[:, :3], axis=1, kind="stable")[:, :2]
    np.testing.assert_array_equal(top2, order)
    items = pol.top_k_items(states[:3], 3)
    assert all(sorted(row) == ["item0", "item1", "item2"] for row in items)
    assert items[0][0] == f"item{top2[0, 0]}"
    with_other = pol.top_k_actions(states, 4, include_other=True)
    np.testing.assert_array_equal(np.sort(with_other, axis=1), np.tile(np.arange(4), (40, 1)))


def test_top_k_items_can_expand_the_other_bucket():
    space = ActionSpace(("a", "b"), ("x", "y"))
    pol = MostPopularPolicy(np.array([1.0, 3.0, 90.0]), epsilon=1.0, actions=space)
    # probabilities: a 1/94, b 3/94, other 90/94 -> x and y 45/94 each, ahead of b and a
    lists = pol.top_k_items(np.zeros((2, 1)), 4, expand_other=True, rng=np.random.default_rng(0))
    for row in lists:
        assert sorted(row[:2]) == ["x", "y"] and row[2:] == ["b", "a"]
    assert pol.top_k_items(np.zeros((1, 1)), 2) == [["b", "a"]]


def test_sample_actions_follow_the_probabilities():
    rng = np.random.default_rng(0)
    pol = MostPopularPolicy(np.array([1.0, 1.0, 2.0, 0.0]), epsilon=1.0)
    draws = pol.sample_actions(np.zeros((20000, 1)), rng)
    freq = np.bincount(draws, minlength=4) / draws.size
    np.testing.assert_allclose(freq, [0.25, 0.25, 0.5, 0.0], atol=0.015)
    again = pol.sample_actions(np.zeros((50, 1)), np.random.default_rng(1))
    np.testing.assert_array_equal(
        again, pol.sample_actions(np.zeros((50, 1)), np.random.default_rng(1))
    )


def test_bad_policy_inputs(trained, states):
    _, models = trained
    q = models["dqn"].q_function
    greedy = GreedyPolicy(q)
    space = ActionSpace(("a", "b"))
    cases = [
        (lambda: greedy.action_probs(states[:, :1]), r"expected raw states of shape \(n, 2\)"),
        (lambda: greedy.action_probs(states[0]), r"wrap one state as states\[None\]"),
        (lambda: greedy.action_probs(np.array([[np.nan, 1.0]])), "row 0 has NaN"),
        (lambda: EpsilonGreedyPolicy(q, 1.5), r"epsilon = 1.5, must be between 0 and 1"),
        (lambda: SoftmaxPolicy(q, 0.0), r"temperature = 0.0, must be a finite number > 0"),
        (lambda: GreedyPolicy(object()), "expected a QFunction, got object"),
        (lambda: UniformPolicy(0), r"n_actions = 0, must be a whole number >= 1"),
        (lambda: UniformPolicy(4, actions=space), "the action space has 3 actions"),
        (lambda: MostPopularPolicy(np.array([0.0, 0.0])), "not all zero"),
        (lambda: MostPopularPolicy(np.array([1.0, -1.0])), "counts must be finite, >= 0"),
        (lambda: greedy.top_k_actions(states, 4), r"k = 4, must be between 1 and 3"),
        (lambda: greedy.top_k_items(states, 1), "top_k_items needs the action space"),
        (
            lambda: UniformPolicy(3, actions=space).top_k_items(states, 1, expand_other=True),
            "lists no items in the other bucket",
        ),
        (
            lambda: UniformPolicy(3, actions=ActionSpace(("a", "b"), ("c",))).top_k_items(
                states, 1, expand_other=True
            ),
            "needs rng=",
        ),
        (lambda: models["bc"].q_function, "learns a policy, not a Q-function"),
        (lambda: models["dqn"].imitator, "has no imitator network"),
        (lambda: models["dqn"].policy("boltzmann"), "head = 'boltzmann': choose one of greedy"),
    ]
    for call, message in cases:
        with pytest.raises(TrainError, match=message):
            call()
