"""The pass-sharing updates compute exactly d3rlpy's losses, gradients and parameter steps."""

from __future__ import annotations

import copy

import pytest
import torch

from offline_rl._d3 import d3rlpy_module, quiet
from offline_rl.algorithms import build_d3rlpy_config
from offline_rl.data import TransitionTensors, make_generator
from offline_rl.fused import accelerate


def _pair(name: str, tiny, **overrides):
    cfg = tiny.small_config(**{name: overrides})
    config = build_d3rlpy_config(name, cfg, reward_scale=0.1)
    with quiet():
        torch.manual_seed(0)
        stock = config.create(device="cpu:0")
        stock.create_impl((2,), 4)
    fused = copy.deepcopy(stock)
    return stock, fused


def _batch(mdp, seed=0, size=64):
    train, _, spec, _ = mdp
    t = TransitionTensors.build(train, spec, 4, "cpu:0")
    t.apply_scalers(reward_scaler=d3rlpy_module().preprocessing.MultiplyRewardScaler(0.1))
    return t.sample(size, make_generator(seed, "cpu:0"))


def _grads(impl):
    return [p.grad.clone() for p in impl.q_function.parameters()]


@pytest.mark.parametrize("name", ["dqn", "double_dqn", "cql"])
@pytest.mark.parametrize("n_critics", [1, 2])
def test_fused_loss_and_gradients_equal_d3rlpy(mdp, tiny, name, n_critics):
    stock, fused = _pair(name, tiny, n_critics=n_critics)
    assert accelerate(fused) and type(fused.impl) is not type(stock.impl)
    batch = _batch(mdp)
    for algo in (stock, fused):
        algo.impl.modules.set_train()
    t_stock = stock.impl.compute_target(batch)
    t_fused = fused.impl.compute_target(batch)
    torch.testing.assert_close(t_fused, t_stock)
    stock.impl.modules.optim.zero_grad()
    fused.impl.modules.optim.zero_grad()
    l_stock = stock.impl.compute_loss(batch, t_stock)
    l_fused = fused.impl.compute_loss(batch, t_fused)
    for field in vars(l_stock):
        torch.testing.assert_close(getattr(l_fused, field), getattr(l_stock, field))
    l_stock.loss.backward()
    l_fused.loss.backward()
    for g_fused, g_stock in zip(_grads(fused.impl), _grads(stock.impl), strict=True):
        torch.testing.assert_close(g_fused, g_stock, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["dqn", "cql"])
def test_fused_updates_track_d3rlpy_over_several_steps(mdp, tiny, name):
    stock, fused = _pair(name, tiny)
    accelerate(fused)
    for step in range(5):
        batch = _batch(mdp, seed=step)
        out_stock = stock.impl.update(batch, step)
        out_fused = fused.impl.update(batch, step)
        assert out_fused.keys() == out_stock.keys()
        for key in out_stock:
            assert out_fused[key] == pytest.approx(out_stock[key], rel=1e-5, abs=1e-6)
    for p_fused, p_stock in zip(
        fused.impl.q_function.parameters(), stock.impl.q_function.parameters(), strict=True
    ):
        torch.testing.assert_close(p_fused, p_stock, rtol=1e-5, atol=1e-6)


def test_accelerate_leaves_other_algorithms_and_q_functions_alone(tiny):
    for name, overrides in [("bcq", {}), ("bc", {}), ("dqn", {"q_func_factory": "qr"})]:
        _, algo = _pair(name, tiny, **overrides)
        before = type(algo.impl)
        assert not accelerate(algo)
        assert type(algo.impl) is before
