"""Transitions -> d3rlpy MDPDataset and -> our tensors: the same transitions, timeouts handled."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from offline_rl.data import TransitionTensors, check_transitions, make_generator, to_mdp_dataset
from offline_rl.errors import TrainError


def _key(obs, act, rew, nxt, term):
    return (
        tuple(np.round(obs, 5)),
        int(act),
        round(float(rew), 5),
        tuple(np.round(nxt, 5)),
        float(term),
    )


def test_mdp_dataset_keeps_order_terminals_and_drops_only_timeout_last_rows(mdp):
    train, _, spec, _ = mdp
    ds = to_mdp_dataset(train, spec, 4)
    n_timeouts = int(train.timeouts.sum())
    assert ds.dataset_info.action_size == 4
    assert ds.size() == train.n_episodes == 600
    assert ds.transition_count == len(train) - n_timeouts
    assert n_timeouts == 200
    terminated = [ep.terminated for ep in ds.episodes]
    assert sum(terminated) == int(train.terminals.sum())
    # observations in episode/step order, normalised with the spec
    observed = np.concatenate([ep.observations for ep in ds.episodes])
    np.testing.assert_allclose(observed, spec.normalise(train.states), rtol=1e-6)


def test_our_td_rows_are_exactly_d3rlpys_transitions(mdp):
    train, _, spec, _ = mdp
    ds = to_mdp_dataset(train, spec, 4)
    theirs = []
    for ep in ds.episodes:
        for i in range(ep.transition_count):
            t = ds.transition_picker(ep, i)
            theirs.append(
                _key(t.observation, t.action[0], t.reward[0], t.next_observation, t.terminal)
            )
    tensors = TransitionTensors.build(train, spec, 4, "cpu:0")
    rows = tensors.td_rows.numpy()
    ours = [
        _key(
            tensors.observations[r].numpy(),
            tensors.actions[r, 0],
            tensors.rewards[r, 0],
            tensors.next_observations[r].numpy(),
            tensors.terminals[r, 0],
        )
        for r in rows
    ]
    assert ours == theirs
    # behaviour cloning may use every row, timeout-final ones included
    assert tensors.all_rows.shape[0] == len(train)
    assert set(np.flatnonzero(train.timeouts)) == set(range(len(train))) - set(rows.tolist())


def test_next_actions_follow_the_episode(mdp):
    train, _, spec, _ = mdp
    t = TransitionTensors.build(train, spec, 4, "cpu:0")
    acts = train.actions
    assert t.next_actions[0, 0] == acts[1]
    last = np.flatnonzero(train.terminals | train.timeouts)
    assert (t.next_actions[last, 0] == 0).all()
    assert (t.next_observations[last] == 0).all()


def test_sampling_is_seeded_and_uniform_over_the_pool(mdp):
    train, _, spec, _ = mdp
    t = TransitionTensors.build(train, spec, 4, "cpu:0")
    a = t.sample(64, make_generator(3, "cpu:0"))
    b = t.sample(64, make_generator(3, "cpu:0"))
    assert torch.equal(a.observations, b.observations) and torch.equal(a.actions, b.actions)
    c = t.sample(64, make_generator(4, "cpu:0"))
    assert not torch.equal(a.actions, c.actions) or not torch.equal(a.rewards, c.rewards)
    assert a.observations.shape == (64, 2) and a.actions.shape == (64, 1)
    assert a.intervals.shape == (64, 1) and float(a.intervals.min()) == 1.0
    # the terminal flag of a sampled row is 1 exactly when its next state is zeros
    big = t.sample(20000, make_generator(5, "cpu:0"))
    zero_next = (big.next_observations == 0).all(dim=1).float()
    term = big.terminals[:, 0]
    assert torch.equal(term * zero_next, term)
    # uniform over td rows: step-3 rows (terminal or timeout) appear a quarter minus timeouts
    td_share_last = (train.terminals.sum()) / (len(train) - train.timeouts.sum())
    assert abs(float(term.mean()) - td_share_last) < 0.02


def test_sampling_without_td_rows_is_an_error(tiny):
    one_step = tiny.make_mdp(5, seed=0)
    keep = one_step.steps == 3  # single-row episodes
    only = one_step.select(keep)
    import dataclasses

    only = dataclasses.replace(
        only,
        steps=np.zeros(len(only), dtype=np.int64),
        terminals=np.zeros(len(only), bool),
        timeouts=np.ones(len(only), bool),
    )
    t = TransitionTensors.build(only, tiny.make_spec(only), 4, "cpu:0")
    with pytest.raises(TrainError, match="no transition has a known next state"):
        t.sample(4, make_generator(0, "cpu:0"))
    assert t.sample(4, make_generator(0, "cpu:0"), td=False).observations.shape == (4, 2)


def test_apply_scalers_transforms_a_copy_of_the_rewards(mdp):
    from offline_rl._d3 import d3rlpy_module

    d3 = d3rlpy_module()
    train, _, spec, _ = mdp
    t = TransitionTensors.build(train, spec, 4, "cpu:0")
    before = t.rewards.clone()
    t.apply_scalers(reward_scaler=d3.preprocessing.MultiplyRewardScaler(0.5))
    assert torch.allclose(t.rewards, before * 0.5)


@pytest.mark.parametrize(
    "field, value, message",
    [
        (
            "rewards",
            lambda tr: np.where(np.arange(len(tr)) == 3, np.inf, tr.rewards),
            r"reward of row 3 \(episode 'train-0'\) is inf",
        ),
        ("steps", lambda tr: tr.steps[:-1], r"expected steps of shape \(40,\)"),
        ("actions", lambda tr: tr.actions - 1, r"action -1 in row \d+ is outside 0..3"),
    ],
)
def test_check_transitions_names_the_problem(tiny, field, value, message):
    import dataclasses

    tr = tiny.make_mdp(10, seed=0)
    bad = dataclasses.replace(tr, **{field: value(tr)})
    with pytest.raises(TrainError, match=message):
        check_transitions(bad, 4, 2)


def test_encoder_scales_index_features_to_unit_range():
    from offline_rl.encoding import StateEncoder
    from sql.dataset import FeatureSpec

    spec = FeatureSpec(
        names=("step", "prev_action_1", "bag_0"),
        kinds=("count", "index", "onehot"),
        mean=np.array([2.0, 0.0, 0.0]),
        std=np.array([2.0, 1.0, 1.0]),
        n_actions=50,
        last_k=1,
        item_encoding="onehot",
    )
    raw = np.array([[4.0, 50.0, 1.0], [0.0, 7.0, 0.0]])
    np.testing.assert_allclose(
        StateEncoder(spec)(raw), [[1.0, 1.0, 1.0], [-1.0, 0.14, 0.0]], rtol=1e-6
    )
    np.testing.assert_allclose(
        StateEncoder(spec, scale_index=False)(raw), [[1.0, 50.0, 1.0], [-1.0, 7.0, 0.0]]
    )
    assert StateEncoder(spec).to_dict() == {"scale_index_features": True, "index_divisor": 50}
