"""``sac``: d3rlpy-exact update without its two changes, the penalty, heads, config, artifacts."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from offline_rl._d3 import d3rlpy_module, quiet
from offline_rl.algorithms import build_d3rlpy_config
from offline_rl.artifacts import load_model
from offline_rl.config import ALGORITHM_DEFAULTS, TrainConfig
from offline_rl.data import TransitionTensors, make_generator
from offline_rl.errors import TrainError
from offline_rl.policies import ActorPolicy
from offline_rl.train import create_learner, train_algorithms

STOCK_EQUIVALENT = {"conservative_weight": 0.0, "target_entropy_ratio": 0.98}


def _tensors(mdp):
    train, _, spec, _ = mdp
    t = TransitionTensors.build(train, spec, 4, "cpu:0")
    t.apply_scalers(reward_scaler=d3rlpy_module().preprocessing.MultiplyRewardScaler(0.1))
    return t


def _ours_and_stock(tiny, **overrides):
    d3 = d3rlpy_module()
    cfg = tiny.small_config(sac=overrides)
    ours_cfg = build_d3rlpy_config("sac", cfg, reward_scale=0.1)
    stock_cfg = d3.algos.DiscreteSACConfig(
        **{
            f.name: getattr(ours_cfg, f.name)
            for f in dataclasses.fields(d3.algos.DiscreteSACConfig)
        }
    )
    with quiet():
        torch.manual_seed(0)
        ours = ours_cfg.create(device="cpu:0")
        ours.create_impl((2,), 4)
        torch.manual_seed(0)
        stock = stock_cfg.create(device="cpu:0")
        stock.create_impl((2,), 4)
    return ours, stock


def _params(algo):
    mods = algo.impl.modules
    out = list(mods.policy.parameters()) + list(mods.q_funcs.parameters())
    out += list(mods.targ_q_funcs.parameters()) + list(mods.log_temp.parameters())
    return [p.detach().clone() for p in out]


def test_without_its_changes_the_update_is_d3rlpys_discrete_sac(mdp, tiny):
    # target_update_interval 100 in small_config: step 100 syncs the target critics too
    ours, stock = _ours_and_stock(tiny, **STOCK_EQUIVALENT)
    assert type(ours.impl).__name__ == "ConservativeSACImpl"
    assert type(stock.impl).__name__ == "DiscreteSACImpl"
    for a, b in zip(_params(ours), _params(stock), strict=True):
        torch.testing.assert_close(a, b)
    tensors = _tensors(mdp)
    gen = make_generator(0, "cpu:0")
    for step in [1, 2, 3, 99, 100, 101]:
        batch = tensors.sample(64, gen)
        out_ours = ours.impl.update(batch, step)
        out_stock = stock.impl.update(batch, step)
        for key in ("critic_loss", "actor_loss"):
            assert out_ours[key] == pytest.approx(out_stock[key], rel=1e-5, abs=1e-6)
    for a, b in zip(_params(ours), _params(stock), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_conservative_penalty_is_the_cql_term_of_every_critic(mdp, tiny):
    ours, _ = _ours_and_stock(tiny, conservative_weight=0.5, target_entropy_ratio=0.98)
    batch = _tensors(mdp).sample(64, make_generator(3, "cpu:0"))
    with torch.no_grad():
        qs = torch.stack([q(batch.observations).q_value for q in ours.impl.modules.q_funcs])
        taken = qs.gather(2, batch.actions.long().view(1, -1, 1).expand(qs.shape[0], -1, 1))
        expected = (torch.logsumexp(qs, dim=2, keepdim=True) - taken).mean(dim=(1, 2)).sum()
    twin, _ = _ours_and_stock(tiny, **STOCK_EQUIVALENT)
    out = ours.impl.update(batch, 1)
    out_plain = twin.impl.update(batch, 1)
    assert out["conservative_loss"] == pytest.approx(float(expected), rel=1e-5)
    assert "conservative_loss" not in out_plain
    # same initial weights: the critic losses differ by exactly weight * penalty
    assert out["critic_loss"] - out_plain["critic_loss"] == pytest.approx(
        0.5 * float(expected), rel=1e-4
    )


@pytest.mark.parametrize("ratio, direction", [(0.0, -1), (1.0, 1)])
def test_target_entropy_ratio_steers_the_temperature(mdp, tiny, ratio, direction):
    # the actor starts near uniform (entropy ~ log 4): a target of 0 lowers the temperature,
    # a target of log 4 (above what the actor has) raises it
    ours, _ = _ours_and_stock(tiny, conservative_weight=0.0, target_entropy_ratio=ratio)
    tensors = _tensors(mdp)
    gen = make_generator(0, "cpu:0")
    temps = [ours.impl.update(tensors.sample(64, gen), k)["temp"] for k in range(1, 21)]
    assert (np.sign(np.diff(temps)) == direction).all(), temps
    assert ours.impl.target_entropy == pytest.approx(ratio * math.log(4))


def test_sac_trained_models_have_an_actor_critics_and_metrics(trained, tiny):
    _, models = trained
    model = models["sac"]
    assert model.kind == "sac" and model.has_q
    assert model.n_updates == 600 == model.algo.grad_step
    final = model.final_metrics
    for key in ("loss_critic_loss", "loss_actor_loss", "loss_conservative_loss", "loss_temp"):
        assert math.isfinite(final[key]), key
    # reports plot a model's first loss: the critics'
    assert next(k for k in final if k.startswith("loss_")) == "loss_critic_loss"
    assert final["td_error"] >= 0.0 and math.isfinite(final["initial_value"])
    fresh = create_learner("sac", tiny.small_config(), 2, tiny.n_actions, "cpu:0")
    for part in ("policy", "q_funcs"):
        before = getattr(fresh.impl.modules, part).state_dict()
        after = getattr(model.algo.impl.modules, part).state_dict()
        moved = [k for k in before if not torch.equal(before[k], after[k])]
        assert len(moved) == len(before), f"{part}: parameters that never moved"
    q = model.q_values(tiny.probe_states)
    assert q.shape == (3, 4) and np.isfinite(q).all()
    # the critics agree with the actor on the best action
    np.testing.assert_array_equal(q.argmax(axis=1), tiny.optimal)


def test_actor_heads(trained, tiny):
    _, models = trained
    model = models["sac"]
    states = tiny.probe_states
    actor = model.actor.probs(states)
    np.testing.assert_allclose(actor.sum(axis=1), 1.0)
    default = model.policy()
    assert default.name == "sac"
    np.testing.assert_array_equal(default.action_probs(states), actor)
    np.testing.assert_array_equal(model.policy("softmax").action_probs(states), actor)
    greedy = model.policy("greedy").action_probs(states)
    np.testing.assert_array_equal(greedy, np.eye(4)[actor.argmax(axis=1)])
    eps = model.policy("epsilon_greedy", epsilon=0.2).action_probs(states)
    np.testing.assert_allclose(eps, 0.8 * greedy + 0.05)
    sharp = model.policy("softmax", temperature=0.5)
    assert sharp.name == "sac:actor0.5"
    expected = actor**2 / (actor**2).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(sharp.action_probs(states), expected, rtol=1e-6)


def test_actor_bad_inputs(trained, tiny):
    _, models = trained
    actor = models["sac"].actor
    cases = [
        (lambda: models["sac"].policy("boltzmann"), "head = 'boltzmann': choose one of softmax"),
        (lambda: ActorPolicy(actor, epsilon=1.5), r"epsilon = 1.5, must be between 0 and 1"),
        (lambda: ActorPolicy(actor, temperature=0), r"temperature = 0, must be a finite number"),
        (lambda: ActorPolicy(models["bc"].imitator), "expected an Actor, got Imitator"),
        (lambda: models["cql"].actor, r"model 'cql' \(cql\) has no actor network; only sac"),
        (lambda: ActorPolicy(actor).action_probs(np.zeros((2, 3))), r"shape \(n, 2\)"),
    ]
    for make, message in cases:
        with pytest.raises(TrainError, match=message):
            make()


BAD_OVERRIDES = [
    ({"conservative_weight": -1}, r"\[train.sac\] conservative_weight = -1.0: must be >= 0.0"),
    ({"target_entropy_ratio": 1.5}, r"\[train.sac\] target_entropy_ratio = 1.5: must be <= 1.0"),
    ({"initial_temperature": -0.1}, r"initial_temperature = -0.1: must be >= 0.0"),
    ({"actor_learning_rate": 0}, r"actor_learning_rate = 0.0: must be > 0.0"),
    ({"alpha": 0.1}, r"\[train.sac\] alpha: unknown field of d3rlpy .*conservative_weight"),
    ({"learning_rate": 0.1}, r"\[train.sac\] learning_rate: unknown field"),
]


@pytest.mark.parametrize("overrides, message", BAD_OVERRIDES)
def test_bad_sac_overrides(overrides, message):
    with pytest.raises(TrainError, match=message):
        TrainConfig(sac=overrides)


def test_only_mean_q_functions():
    cfg = TrainConfig(sac={"q_func_factory": "qr"})
    with pytest.raises(TrainError, match=r'q_func_factory = "qr": .* only "mean" Q-functions'):
        build_d3rlpy_config("sac", cfg)
    # and when the config class is used directly
    d3 = d3rlpy_module()
    direct = build_d3rlpy_config("sac", TrainConfig())
    direct = dataclasses.replace(direct, q_func_factory=d3.models.QRQFunctionFactory())
    with quiet(), pytest.raises(TrainError, match=r'sac: q_func_factory = "qr"; the'):
        direct.create(device="cpu:0").create_impl((2,), 4)


def test_shared_values_fill_the_actor_critic_fields():
    cfg = TrainConfig(learning_rate=0.002, hidden_units=(16, 8), batch_size=32, gamma=0.8)
    sac = build_d3rlpy_config("sac", cfg, reward_scale=0.5)
    assert (sac.actor_learning_rate, sac.critic_learning_rate, sac.temp_learning_rate) == (
        0.002,
        0.002,
        0.002,
    )
    assert sac.actor_encoder_factory.hidden_units == [16, 8]
    assert sac.critic_encoder_factory.hidden_units == [16, 8]
    assert (sac.batch_size, sac.gamma, sac.target_update_interval) == (32, 0.8, 1000)
    assert sac.reward_scaler.multiplier == 0.5
    for key, value in ALGORITHM_DEFAULTS["sac"].items():
        assert getattr(sac, key) == value
    again = build_d3rlpy_config("sac", TrainConfig(sac={"conservative_weight": 0.0}))
    assert again.conservative_weight == 0.0


def test_fixed_temperature_saves_and_loads(mdp, tiny, tmp_path):
    # temp_learning_rate = 0: d3rlpy builds no temperature optimiser (nothing to save for it)
    train, validation, spec, actions = mdp
    cfg = tiny.small_config(
        algorithms=("sac",),
        n_steps=30,
        n_steps_per_epoch=30,
        sac={"temp_learning_rate": 0.0, "initial_temperature": 0.05},
    )
    model = train_algorithms(train, validation, spec, actions, cfg, tmp_path / "run")["sac"]
    assert model.algo.impl.modules.temp_optim is None
    assert "temp_loss" not in {k[5:] for k in model.final_metrics if k.startswith("loss_")}
    assert model.final_metrics["loss_temp"] == pytest.approx(0.05)
    loaded = load_model(tmp_path / "run", "sac", expected_spec=spec, expected_actions=actions)
    states = train.states[:40]
    np.testing.assert_array_equal(
        loaded.policy().action_probs(states), model.policy().action_probs(states)
    )
    np.testing.assert_array_equal(loaded.q_values(states), model.q_values(states))
    weight = ALGORITHM_DEFAULTS["sac"]["conservative_weight"]
    assert loaded.algo.config.conservative_weight == weight > 0


@pytest.mark.parametrize("head", ["epsilon_greedy", "greedy", "softmax"])
def test_the_evaluation_stage_picks_sac_up_under_every_head(trained, mdp, head):
    # offrec.evaluation.build_policies has no sac special case: policy_head means the same
    from offrec.config import OffrecConfig
    from offrec.evaluation import build_policies
    from ope.config import EvaluateConfig

    run_dir, models = trained
    train, _, spec, actions = mdp
    cfg = OffrecConfig(evaluate=EvaluateConfig(policy_head=head, epsilon=0.2, baselines=()))
    found = {p.name: p for p in build_policies(cfg, run_dir, train, spec, actions)}
    assert set(found) == set(models)
    policy = found["sac"].policy
    assert isinstance(policy, ActorPolicy) and policy.head == head
    states = train.states[:20]
    expected = models["sac"].policy(head, epsilon=0.2).action_probs(states)
    np.testing.assert_array_equal(policy.action_probs(states), expected)
