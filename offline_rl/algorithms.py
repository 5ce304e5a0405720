"""The algorithms we train and how a :class:`TrainConfig` becomes a d3rlpy config.

=============  ======================  ===========================================
name           d3rlpy 2.8.1 class      what it learns
=============  ======================  ===========================================
``dqn``        ``DQNConfig``           Q(s, a) by max-target TD (Mnih et al. 2015)
``double_dqn`` ``DoubleDQNConfig``     Q(s, a) with the Double-DQN target
``cql``        ``DiscreteCQLConfig``   conservative Q: Double-DQN TD + alpha * CQL penalty
``bcq``        ``DiscreteBCQConfig``   Q(s, a) restricted to actions the imitator deems likely
``bc``         ``DiscreteBCConfig``    pi(a | s) by behaviour cloning (the baseline)
``sac``        ``DiscreteSACConfig``   an actor pi(a | s) and twin soft critics, with a
               + two fields (offrec)   CQL penalty on the critics (:mod:`offline_rl.sac`)
=============  ======================  ===========================================

Shared ``[train]`` values fill the d3rlpy fields of the same name (``hidden_units`` becomes a
``VectorEncoderFactory``; for ``sac``, ``learning_rate`` fills the actor, critic and temperature
learning rates and ``hidden_units`` both encoders); a ``[train.<name>]`` table overrides any
field. Factory fields
(``encoder_factory``, ``optim_factory``, ``q_func_factory``, ``observation_scaler``,
``reward_scaler``) take a registered d3rlpy type name (``"vector"``) or a table
``{ type = "vector", hidden_units = [64, 64] }``; d3rlpy's own serialised form
``{ type = ..., params = {...} }`` is accepted as well.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, get_args, get_origin, get_type_hints

from offline_rl._d3 import d3rlpy_module
from offline_rl.config import ALGORITHM_DEFAULTS, TrainConfig
from offline_rl.errors import TrainError

__all__ = [
    "AlgorithmSpec",
    "ALGORITHMS",
    "algorithm_spec",
    "check_overrides",
    "build_d3rlpy_config",
    "resolve_device",
    "auto_reward_scale",
]


@dataclass(frozen=True)
class AlgorithmSpec:
    """One trainable algorithm: its d3rlpy config class and what it produces."""

    name: str
    config_class: str  # attribute of d3rlpy.algos (sac: offline_rl.sac's subclass of it)
    kind: str  # "q" (a Q-function), "bcq" (Q + imitator mask), "bc" (a policy only),
    # "sac" (an actor and its critics)
    label: str


ALGORITHMS: dict[str, AlgorithmSpec] = {
    "dqn": AlgorithmSpec("dqn", "DQNConfig", "q", "DQN"),
    "double_dqn": AlgorithmSpec("double_dqn", "DoubleDQNConfig", "q", "Double DQN"),
    "cql": AlgorithmSpec("cql", "DiscreteCQLConfig", "q", "discrete CQL"),
    "bcq": AlgorithmSpec("bcq", "DiscreteBCQConfig", "bcq", "discrete BCQ"),
    "bc": AlgorithmSpec("bc", "DiscreteBCConfig", "bc", "behaviour cloning"),
    "sac": AlgorithmSpec("sac", "DiscreteSACConfig", "sac", "conservative discrete SAC"),
}

# Fields that are set from the shared [train] section when the d3rlpy class has them.
_SHARED = ("batch_size", "learning_rate", "gamma", "target_update_interval")

# Bounds we enforce on scalar d3rlpy fields (d3rlpy itself accepts anything).
_BOUNDS: dict[str, tuple[float | None, float | None, bool]] = {
    # name: (low, high, low_exclusive)
    "batch_size": (1, None, False),
    "learning_rate": (0.0, None, True),
    "gamma": (0.0, 1.0, False),
    "target_update_interval": (1, None, False),
    "n_critics": (1, None, False),
    "alpha": (0.0, None, False),
    "beta": (0.0, None, False),
    "action_flexibility": (0.0, 1.0, True),
    "actor_learning_rate": (0.0, None, True),
    "critic_learning_rate": (0.0, None, True),
    "temp_learning_rate": (0.0, None, False),
    "initial_temperature": (0.0, None, False),
    "conservative_weight": (0.0, None, False),
    "target_entropy_ratio": (0.0, 1.0, False),
}

# d3rlpy fields of the actor-critic that the shared [train] values fill instead of the
# Q-learners' learning_rate / encoder_factory
_SAC_LEARNING_RATES = ("actor_learning_rate", "critic_learning_rate", "temp_learning_rate")
_SAC_ENCODERS = ("actor_encoder_factory", "critic_encoder_factory")

_REJECTED = {
    "action_scaler": "discrete-action algorithms cannot scale actions; remove it",
}


def algorithm_spec(name: str) -> AlgorithmSpec:
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise TrainError(
            f"unknown algorithm {name!r}; choose from {', '.join(ALGORITHMS)}"
        ) from None


def _config_class(name: str) -> type:
    d3 = d3rlpy_module()
    spec = algorithm_spec(name)
    if spec.kind == "sac":
        from offline_rl.sac import sac_classes

        return sac_classes()["config"]
    return getattr(d3.algos, spec.config_class)


def check_overrides(name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Validate a ``[train.<name>]`` table; return it converted to d3rlpy values.

    Raises :class:`TrainError` naming ``[train.<name>] key`` for unknown fields (listing the
    valid ones), wrong types, out-of-range values and unknown factory types.
    """
    cls = _config_class(name)
    hints = get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        where = f"[train.{name}] {key}"
        if key not in fields:
            raise TrainError(
                f"{where}: unknown field of d3rlpy {cls.__name__}; valid fields: "
                f"{', '.join(sorted(fields))}"
            )
        if key in _REJECTED:
            raise TrainError(f"{where}: {_REJECTED[key]}")
        converted = _convert(hints[key], value, where)
        _check_bounds(key, converted, where)
        out[key] = converted
    return out


def build_d3rlpy_config(name: str, cfg: TrainConfig, reward_scale: float = 1.0) -> Any:
    """The exact d3rlpy config object for ``name``: our defaults, then ``[train.<name>]``.

    Order: d3rlpy's defaults < shared ``[train]`` values (``batch_size``, ``learning_rate``,
    ``gamma``, ``target_update_interval``, ``hidden_units``) < ``ALGORITHM_DEFAULTS[name]`` <
    the ``[train.<name>]`` table.

    Q-learning algorithms and ``sac`` get ``reward_scaler = MultiplyRewardScaler(reward_scale)``
    unless their table sets ``reward_scaler`` itself (behaviour cloning ignores rewards).
    ``sac`` accepts only mean Q-functions (its update is written for them).
    """
    d3 = d3rlpy_module()
    cls = _config_class(name)
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {k: getattr(cfg, k) for k in _SHARED if k in fields}
    for key in ("encoder_factory", *_SAC_ENCODERS):
        if key in fields:
            kwargs[key] = d3.models.VectorEncoderFactory(hidden_units=list(cfg.hidden_units))
    for key in _SAC_LEARNING_RATES:
        if key in fields:
            kwargs[key] = cfg.learning_rate
    if algorithm_spec(name).kind != "bc" and reward_scale != 1.0:
        kwargs["reward_scaler"] = d3.preprocessing.MultiplyRewardScaler(float(reward_scale))
    kwargs.update(ALGORITHM_DEFAULTS[name])
    kwargs.update(check_overrides(name, cfg.overrides(name)))
    try:
        built = cls(**kwargs)
    except (TypeError, ValueError, AssertionError) as exc:
        raise TrainError(f"[train.{name}]: d3rlpy rejected the config: {exc}") from None
    if algorithm_spec(name).kind == "sac" and not isinstance(
        built.q_func_factory, d3.models.MeanQFunctionFactory
    ):
        raise TrainError(
            f'[train.{name}] q_func_factory = "{built.q_func_factory.get_type()}": the '
            f'conservative actor-critic supports only "mean" Q-functions; remove the key'
        )
    return built


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda:0`` when CUDA is available else ``cpu:0``; checks CUDA requests."""
    import torch

    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu:0"
    if device == "cpu":
        return "cpu:0"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise TrainError(
                f'[train] device = {device!r} but torch sees no CUDA device; use "auto" or "cpu"'
            )
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise TrainError(
                f"[train] device = {device!r}: only {torch.cuda.device_count()} CUDA device(s)"
            )
        return f"cuda:{index}"
    raise TrainError(f"[train] device = {device!r}: must be auto, cpu, cuda or cuda:N")


# --------------------------------------------------------------------------------------------
# value conversion


def _fmt(value: Any) -> str:
    return repr(value)


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            inner = args[0]
            if _dynamic_base(inner) is not None and value in ("none", {"type": "none"}):
                return None
            return _convert(inner, value, where)
        raise TrainError(f"{where}: this field cannot be set from the config file")
    base = _dynamic_base(tp)
    if base is not None:
        return _build_factory(base, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise TrainError(f"{where} = {_fmt(value)}: must be true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TrainError(f"{where} = {_fmt(value)}: must be a whole number")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TrainError(f"{where} = {_fmt(value)}: must be a number")
        if not math.isfinite(value):
            raise TrainError(f"{where} = {_fmt(value)}: must be a finite number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise TrainError(f"{where} = {_fmt(value)}: must be a string")
        return value
    if origin in (list, tuple, Sequence) or tp in (list, tuple):
        if not isinstance(value, list | tuple):
            raise TrainError(f"{where} = {_fmt(value)}: must be a list")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise TrainError(f"{where} = {_fmt(value)}: must be a list of {len(args)} values")
            return tuple(
                _convert(a, v, f"{where}[{i}]")
                for i, (a, v) in enumerate(zip(args, value, strict=True))
            )
        item = args[0] if args else Any
        items = [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is Any:
        return value
    raise TrainError(f"{where}: this field ({tp!r}) cannot be set from the config file")


def _dynamic_base(tp: Any) -> type | None:
    """The registered d3rlpy factory base class ``tp`` is (or None)."""
    d3rlpy_module()
    from d3rlpy.serializable_config import CONFIG_STORAGE

    if isinstance(tp, type) and tp in CONFIG_STORAGE:
        return tp
    return None


def _build_factory(base: type, value: Any, where: str) -> Any:
    from d3rlpy.serializable_config import CONFIG_STORAGE

    registry = CONFIG_STORAGE[base].config_list
    if isinstance(value, str):
        type_name, params = value, {}
    elif isinstance(value, dict):
        if "type" not in value:
            raise TrainError(f"{where}: a table needs type = one of {', '.join(sorted(registry))}")
        type_name = value["type"]
        if set(value) == {"type", "params"} and isinstance(value["params"], dict):
            params = dict(value["params"])
        else:
            params = {k: v for k, v in value.items() if k != "type"}
    else:
        raise TrainError(
            f"{where} = {_fmt(value)}: give a type name (one of {', '.join(sorted(registry))}) "
            f'or a table {{ type = "...", <param> = value }}'
        )
    if type_name not in registry:
        raise TrainError(
            f"{where}: unknown type {type_name!r}; choose one of {', '.join(sorted(registry))}"
        )
    cls = registry[type_name]
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, v in params.items():
        if key not in names:
            raise TrainError(
                f"{where}.{key}: unknown parameter of {type_name!r}; valid: "
                f"{', '.join(sorted(names)) or '(none)'}"
            )
        kwargs[key] = _convert(hints[key], v, f"{where}.{key}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, AssertionError) as exc:
        raise TrainError(f"{where}: d3rlpy rejected {type_name!r}: {exc}") from None


def _check_bounds(key: str, value: Any, where: str) -> None:
    if key not in _BOUNDS or isinstance(value, bool) or not isinstance(value, int | float):
        return
    low, high, low_exclusive = _BOUNDS[key]
    if low is not None and (value <= low if low_exclusive else value < low):
        raise TrainError(f"{where} = {value!r}: must be {'>' if low_exclusive else '>='} {low}")
    if high is not None and value > high:
        raise TrainError(f"{where} = {value!r}: must be <= {high}")


def auto_reward_scale(rewards: Any, configured: float) -> float:
    """``configured`` when > 0, else ``1 / max |reward|`` (1 when every reward is 0).

    Scaling rewards into [-1, 1] keeps TD errors in the quadratic part of d3rlpy's Huber loss;
    with large raw rewards the clipped TD gradient is too weak against CQL's penalty and the
    conservative Q-values collapse towards the behaviour policy.
    """
    if configured > 0:
        return float(configured)
    import numpy as np

    top = float(np.max(np.abs(np.asarray(rewards, dtype=np.float64)))) if len(rewards) else 0.0
    return 1.0 / top if top > 0 else 1.0
