"""Training on the tiny MDP: the learned greedy policies find the optimal action."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("name", ["dqn", "double_dqn", "cql", "bcq", "sac"])
def test_greedy_policy_finds_the_optimal_action(trained, tiny, name):
    _, models = trained
    greedy = models[name].policy("greedy").action_probs(tiny.probe_states).argmax(axis=1)
    np.testing.assert_array_equal(greedy, tiny.optimal)
    # and the behaviour's favourite is something else
    assert int(np.argmax(tiny.behaviour)) not in set(tiny.optimal.tolist())


def test_behaviour_cloning_imitates_the_favourite(trained, tiny):
    _, models = trained
    probs = models["bc"].policy().action_probs(tiny.probe_states)
    assert (probs.argmax(axis=1) == 0).all()
    np.testing.assert_allclose(probs[:, 0], 0.4, atol=0.08)


def test_sac_actor_prefers_the_optimal_action(trained, tiny):
    # sac's own policy is its actor's distribution: most mass on the optimal action, and more
    # than on the logging policy's favourite (action 0)
    _, models = trained
    probs = models["sac"].policy().action_probs(tiny.probe_states)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    rows = np.arange(len(tiny.optimal))
    assert (probs.argmax(axis=1) == tiny.optimal).all()
    assert (probs[rows, tiny.optimal] > 0.9).all(), probs
    assert (probs[rows, tiny.optimal] > 2 * probs[:, 0]).all(), probs
