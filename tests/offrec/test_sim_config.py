"""[simulate] config: defaults, a table of bad values -> ConfigError naming the key, helpers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from offrec.config import config_to_toml, load_config, parse_config
from offrec.errors import ConfigError
from offrec.simulator.config import RewardWeights, SimulatorConfig, StateOptions
from offrec.simulator.errors import SimulatorError
from offrec.simulator.schedule import allocate_sessions
from offrec.simulator.world import World


def test_defaults_parse_and_round_trip(tmp_path: Path) -> None:
    cfg = parse_config({}, base_dir=tmp_path).simulate
    assert cfg == SimulatorConfig()
    text = "[simulate]\n" + config_to_toml(cfg)
    path = tmp_path / "sim.toml"
    path.write_text(text)
    assert load_config(path).simulate == cfg


@pytest.mark.parametrize(
    ("section", "match"),
    [
        ({"n_items": 1}, r"\[simulate\] n_items = 1: must be >= 2"),
        ({"n_sessions": 0}, r"\[simulate\] n_sessions = 0: must be >= 1"),
        ({"seed": -1}, r"\[simulate\] seed = -1: must be >= 0"),
        ({"format": "xml"}, r'\[simulate\] format = "xml": must be one of "parquet", "csv"'),
        ({"compress": "bz2"}, r'\[simulate\] compress = "bz2": must be one of "none", "gzip"'),
        ({"behaviour_epsilon": 0}, r"\[simulate\] behaviour_epsilon = 0: must be > 0.0 and <= 1"),
        ({"behaviour_epsilon": 1.5}, r"behaviour_epsilon = 1.5: must be > 0.0 and <= 1.0"),
        ({"position_decay": 0.0}, r"position_decay = 0.0: must be > 0"),
        ({"max_steps": 1000}, r"max_steps = 1000: must be >= 1 and <= 999"),
        ({"n_positions": "3"}, r'n_positions = "3": must be a whole number'),
        ({"partition_by_date": 1}, r"partition_by_date = 1: must be true or false"),
        ({"sessions": 10}, r"unknown key \[simulate\] sessions"),
        ({"start_date": "2024-02-30"}, r"start_date = '2024-02-30': not a date; write it as"),
        ({"n_categories": 50, "n_items": 10}, r"n_categories = 50 is more than n_items = 10"),
        (
            {"sessions_per_user": 400.0, "n_days": 1},
            r"sessions_per_user = 400.0 sessions .* do not fit in n_days = 1",
        ),
    ],
)
def test_bad_config_values_name_the_key(section: dict, match: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_config({"simulate": section}, base_dir=tmp_path, source=tmp_path / "offrec.toml")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_items": 0}, r"n_items = 0: must be >= 2"),
        ({"n_sessions": 2.5}, r"n_sessions = 2.5: must be a whole number"),
        ({"click_bias": float("nan")}, r"click_bias = nan: must be finite"),
        ({"format": "csv.gz"}, r"format = 'csv.gz': must be one of parquet, csv, jsonl"),
    ],
)
def test_configs_built_in_python_are_checked_too(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SimulatorConfig(**kwargs)


def test_a_user_with_too_many_sessions_for_the_period_is_a_config_error() -> None:
    # 2 days hold at most ~26 sessions of one user (one per ~1.8 h); with 20 sessions per
    # user on average, the most active users draw more than that.
    cfg = SimulatorConfig(n_days=2, sessions_per_user=20.0)
    with pytest.raises(ConfigError, match=r"\[simulate\] n_days = 2: a user drew \d+ sessions"):
        allocate_sessions(World(cfg), 2000, seed=0)


def test_reward_weights_coerce_from_dicts_and_build_config() -> None:
    assert RewardWeights.coerce(None) == RewardWeights()
    assert RewardWeights.coerce({"w_click": 2, "cart": 3}) == RewardWeights(2.0, 3.0, 5.0, 0.0)
    sql_config = pytest.importorskip("sql.config")
    reward = sql_config.RewardConfig(click=0.5, add_to_cart=1.0, purchase=2.0, revenue=0.1)
    assert RewardWeights.coerce(reward) == RewardWeights(0.5, 1.0, 2.0, 0.1)
    with pytest.raises(ValueError, match="unknown reward weight 'clicks'"):
        RewardWeights.coerce({"clicks": 1.0})
    with pytest.raises(ValueError, match="purchase = inf: must be finite"):
        RewardWeights(purchase=float("inf"))


def test_state_options_follow_the_build_config() -> None:
    sql_config = pytest.importorskip("sql.config")
    build = dataclasses.replace(
        sql_config.BuildConfig(), last_k=2, item_encoding="index", lookback_days=7.0
    )
    opts = StateOptions.from_build(build)
    assert (opts.last_k, opts.item_encoding, opts.lookback_days) == (2, "index", 7.0)
    assert opts.lookback_ms == 7 * 86_400_000
    defaults = sql_config.BuildConfig()
    assert StateOptions.from_build(defaults) == StateOptions()
    with pytest.raises(ValueError, match="item_encoding = 'bag': must be one of onehot, index"):
        StateOptions(item_encoding="bag")
    with pytest.raises(ValueError, match="last_k = 0: must be >= 1"):
        StateOptions(last_k=0)


def test_simulator_error_is_a_user_error() -> None:
    from offrec.errors import OffrecError, user_error_types

    assert issubclass(SimulatorError, OffrecError)
    assert OffrecError in user_error_types()
