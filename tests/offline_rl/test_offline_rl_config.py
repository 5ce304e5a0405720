"""[train] config: parsing, per-algorithm d3rlpy overrides, and the messages for bad values."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from offline_rl._d3 import d3rlpy_module
from offline_rl.algorithms import (
    ALGORITHMS,
    auto_reward_scale,
    build_d3rlpy_config,
    check_overrides,
    resolve_device,
)
from offline_rl.config import (
    ALGORITHM_DEFAULTS,
    ALGORITHM_NAMES,
    TrainConfig,
    resolve_threads,
)
from offline_rl.errors import TrainError
from offrec.config import OffrecConfig, config_to_toml, parse_config
from offrec.errors import ConfigError


def _parse(train: dict):
    return parse_config({"train": train}, base_dir=Path("."), source=Path("offrec.toml")).train


def test_registries_agree():
    assert tuple(ALGORITHMS) == ALGORITHM_NAMES == tuple(ALGORITHM_DEFAULTS)


BAD = [
    (
        {"cql": {"alpah": 2.0}},
        r"offrec.toml: \[train\]: \[train.cql\] alpah: unknown field of d3rlpy DiscreteCQLConfig; "
        r"valid fields: action_scaler, alpha, batch_size",
    ),
    (
        {"bc": {"target_update_interval": 5}},
        r"\[train.bc\] target_update_interval: unknown field of d3rlpy DiscreteBCConfig",
    ),
    ({"cql": {"alpha": "x"}}, r"\[train.cql\] alpha = 'x': must be a number"),
    ({"cql": {"alpha": -1}}, r"\[train.cql\] alpha = -1.0: must be >= 0.0"),
    ({"dqn": {"n_critics": 0}}, r"\[train.dqn\] n_critics = 0: must be >= 1"),
    ({"dqn": {"n_critics": 1.5}}, r"\[train.dqn\] n_critics = 1.5: must be a whole number"),
    ({"bcq": {"action_flexibility": 1.5}}, r"action_flexibility = 1.5: must be <= 1.0"),
    ({"bcq": {"share_encoder": 1}}, r"share_encoder = 1: must be true or false"),
    (
        {"sac": {"target_entropy_ratio": 2}},
        r"offrec.toml: \[train\]: \[train.sac\] target_entropy_ratio = 2.0: must be <= 1.0",
    ),
    (
        {"dqn": {"encoder_factory": "vectr"}},
        r"\[train.dqn\] encoder_factory: unknown type 'vectr'; choose one of default, pixel",
    ),
    ({"dqn": {"encoder_factory": {"hidden_units": [8]}}}, r"a table needs type = one of"),
    ({"dqn": {"encoder_factory": 3}}, r"encoder_factory = 3: give a type name"),
    (
        {"dqn": {"optim_factory": {"type": "adam", "lr": 3}}},
        r"\[train.dqn\] optim_factory.lr: unknown parameter of 'adam'; valid: amsgrad, betas",
    ),
    (
        {"dqn": {"optim_factory": {"type": "adam", "betas": [0.9]}}},
        r"optim_factory.betas = \[0.9\]: must be a list of 2 values",
    ),
    (
        {"dqn": {"encoder_factory": {"type": "vector", "hidden_units": ["a"]}}},
        r"encoder_factory.hidden_units\[0\] = 'a': must be a whole number",
    ),
    (
        {"dqn": {"action_scaler": "min_max"}},
        r"\[train.dqn\] action_scaler: discrete-action algorithms cannot scale actions",
    ),
    ({"dqn": {"learning_rate": 0}}, r"learning_rate = 0.0: must be > 0.0"),
    ({"algorithms": ["dqn", "foo"]}, r"algorithms\[1\] = \"foo\": must be one of \"dqn\""),
    ({"algorithms": []}, r"\[train\] algorithms is empty"),
    ({"algorithms": ["cql", "cql"]}, r"algorithms lists 'cql' twice"),
    ({"device": "gpu"}, r"device = 'gpu': must be \"auto\", \"cpu\", \"cuda\" or \"cuda:N\""),
    ({"hidden_units": []}, r"hidden_units is empty"),
    ({"hidden_units": [64, 0]}, r"hidden_units\[1\] = 0: must be >= 1"),
    ({"n_steps": 0}, r"\[train\] n_steps = 0: must be >= 1"),
    ({"threads": -1}, r"\[train\] threads = -1: must be >= 0"),
    ({"gamma": 1.5}, r"\[train\] gamma = 1.5: must be >= 0.0 and <= 1.0"),
    ({"learning_rate": 0.0}, r"\[train\] learning_rate = 0.0: must be > 0.0"),
    ({"ips_epsilon": 0}, r"\[train\] ips_epsilon = 0: must be > 0.0"),
    ({"reward_scale": -1}, r"\[train\] reward_scale = -1: must be >= 0.0"),
    ({"cql": 3}, r"\[train\] cql = 3: must be a table"),
    ({"nsteps": 5}, r"unknown key \[train\] nsteps; accepted keys in \[train\]: algorithms"),
]


@pytest.mark.parametrize("train, message", BAD)
def test_bad_values_name_the_key_and_the_fix(train, message):
    with pytest.raises(ConfigError, match=message):
        _parse(train)


def test_overrides_reach_the_d3rlpy_config():
    d3 = d3rlpy_module()
    cfg = _parse(
        {
            "batch_size": 32,
            "learning_rate": 0.01,
            "gamma": 0.8,
            "target_update_interval": 7,
            "hidden_units": [16, 8],
            "cql": {
                "alpha": 2.0,
                "n_critics": 2,
                "optim_factory": {"type": "adam", "clip_grad_norm": 1.0, "betas": [0.8, 0.9]},
            },
            "bcq": {
                "encoder_factory": {"type": "vector", "params": {"hidden_units": [4]}},
                "reward_scaler": "none",
            },
            "dqn": {"q_func_factory": {"type": "qr", "n_quantiles": 8}, "batch_size": 16},
        }
    )
    cql = build_d3rlpy_config("cql", cfg, reward_scale=0.5)
    assert isinstance(cql, d3.algos.DiscreteCQLConfig)
    assert (cql.batch_size, cql.learning_rate, cql.gamma, cql.target_update_interval) == (
        32,
        0.01,
        0.8,
        7,
    )
    assert cql.encoder_factory.hidden_units == [16, 8]
    assert (cql.alpha, cql.n_critics) == (2.0, 2)
    assert cql.optim_factory.clip_grad_norm == 1.0 and cql.optim_factory.betas == (0.8, 0.9)
    assert cql.reward_scaler.multiplier == 0.5
    bcq = build_d3rlpy_config("bcq", cfg, reward_scale=0.5)
    assert bcq.encoder_factory.hidden_units == [4] and bcq.reward_scaler is None
    assert bcq.beta == ALGORITHM_DEFAULTS["bcq"]["beta"]
    dqn = build_d3rlpy_config("dqn", cfg)
    assert dqn.batch_size == 16 and dqn.q_func_factory.n_quantiles == 8
    assert dqn.reward_scaler is None  # reward_scale 1 adds no scaler
    bc = build_d3rlpy_config("bc", cfg, reward_scale=0.5)
    assert bc.reward_scaler is None and bc.beta == 0.01 and bc.learning_rate == 0.01
    assert build_d3rlpy_config("cql", TrainConfig()).alpha == 0.1


def test_overrides_round_trip_through_toml():
    cfg = OffrecConfig(
        train=TrainConfig(
            cql={"alpha": 0.5, "encoder_factory": {"type": "vector", "hidden_units": [8, 8]}}
        )
    )
    text = config_to_toml(cfg, with_help=True)
    assert "[train.cql]\nalpha = 0.5" in text and "our defaults: alpha = 0.1" in text
    again = parse_config(tomllib.loads(text), base_dir=Path(".")).train
    assert again == cfg.train


def test_check_overrides_direct_call():
    assert check_overrides("cql", {"alpha": 3}) == {"alpha": 3.0}
    with pytest.raises(TrainError, match="unknown algorithm 'ppo'; choose from dqn"):
        check_overrides("ppo", {})


def test_auto_reward_scale():
    assert auto_reward_scale(np.array([0.0, 2.0, -8.0]), 0.0) == 1 / 8
    assert auto_reward_scale(np.zeros(3), 0.0) == 1.0
    assert auto_reward_scale(np.array([5.0]), 0.25) == 0.25


def test_threads_and_device(monkeypatch):
    assert resolve_threads(3) == 3
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert resolve_threads(0) == 1
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert resolve_threads(0) == 4
    assert resolve_device("cpu") == "cpu:0"
    assert resolve_device("auto") in ("cpu:0", "cuda:0")


def test_default_config_is_the_documented_domain_default():
    cfg = TrainConfig()
    assert cfg.algorithms == ("dqn", "double_dqn", "cql", "bcq", "bc")
    assert (cfg.n_steps, cfg.n_steps_per_epoch, cfg.batch_size) == (5000, 500, 256)
    assert cfg.hidden_units == (256, 256) and cfg.target_update_interval == 1000
    with pytest.raises(TrainError, match="unknown algorithm 'x'"):
        cfg.overrides("x")
