"""``[train]`` section of offrec.toml.

Shared hyper-parameters (``gamma``, ``batch_size`` …) apply to every algorithm; the tables
``[train.dqn]``, ``[train.double_dqn]``, ``[train.cql]``, ``[train.bcq]``, ``[train.bc]`` and
``[train.sac]`` override them and may set any field of the matching d3rlpy 2.8.1 config class
(``DQNConfig``, ``DoubleDQNConfig``, ``DiscreteCQLConfig``, ``DiscreteBCQConfig``,
``DiscreteBCConfig``, ``DiscreteSACConfig`` plus ``conservative_weight`` and
``target_entropy_ratio``, see :mod:`offline_rl.sac`). Override names and types are checked against those dataclasses when the
config is built (see :mod:`offline_rl.algorithms`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from offline_rl.errors import TrainError

__all__ = [
    "TrainConfig",
    "ALGORITHM_NAMES",
    "ALGORITHM_DEFAULTS",
    "DEFAULT_ALGORITHMS",
    "resolve_threads",
]

ALGORITHM_NAMES: tuple[str, ...] = ("dqn", "double_dqn", "cql", "bcq", "bc", "sac")
# sac costs ~2.7x a Q-learner's time per update (an actor and two critics): opt-in
DEFAULT_ALGORITHMS: tuple[str, ...] = ("dqn", "double_dqn", "cql", "bcq", "bc")

_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")


# Per-algorithm values we use instead of d3rlpy's defaults (before [train.<name>] overrides).
# CQL: with rewards scaled into [-1, 1] (reward_scale), alpha = 1 pins the policy to the logged
# actions and inflates Q at logged actions; 0.1 keeps it conservative without that. BC / BCQ:
# d3rlpy's beta = 0.5 penalises squared log-probabilities, which with ~50 actions drags the
# classifier to uniform; 0.01 lets it match the behaviour policy. SAC (offline_rl.sac): the CQL
# penalty on its critics at 0.1 for the same reason as cql.alpha; target entropy 0.3 * log A
# instead of d3rlpy's 0.98 * log A (which keeps the actor within 2% of uniform); initial
# temperature 0.01 instead of 1.0, which is ~100x the scaled reward per decision: the soft values
# are then mostly entropy bonus and the temperature (Adam, 3e-4) is still ~0.6 after 5000 updates.
ALGORITHM_DEFAULTS: dict[str, dict[str, Any]] = {
    "dqn": {},
    "double_dqn": {},
    "cql": {"alpha": 0.1},
    "bcq": {"beta": 0.01},
    "bc": {"beta": 0.01},
    "sac": {"conservative_weight": 0.1, "target_entropy_ratio": 0.3, "initial_temperature": 0.01},
}


def _overrides(algo: str, cls_name: str) -> Any:
    ours = ", ".join(f"{k} = {v}" for k, v in ALGORITHM_DEFAULTS[algo].items())
    return field(
        default_factory=dict,
        metadata={
            "help": f"overrides for {algo}: any field of d3rlpy's {cls_name} "
            f'(factories as "name" or {{ type = "name", <param> = value }})'
            + (f"; our defaults: {ours}" if ours else "")
        },
    )


@dataclass(frozen=True)
class TrainConfig:
    """Offline RL training (d3rlpy)."""

    algorithms: tuple[str, ...] = field(
        default=DEFAULT_ALGORITHMS,
        metadata={"help": "algorithms to train", "choices": ALGORITHM_NAMES},
    )
    n_steps: int = field(
        default=5000, metadata={"help": "gradient updates per algorithm", "min": 1}
    )
    n_steps_per_epoch: int = field(
        default=500,
        metadata={
            "help": "updates between validation passes (the last epoch may be shorter)",
            "min": 1,
        },
    )
    batch_size: int = field(default=256, metadata={"help": "mini-batch size", "min": 1})
    learning_rate: float = field(
        default=3e-4, metadata={"help": "Adam learning rate", "gt": 0.0, "lt": 1.0}
    )
    gamma: float = field(
        default=0.95, metadata={"help": "discount factor per decision", "min": 0.0, "max": 1.0}
    )
    target_update_interval: int = field(
        default=1000,
        metadata={
            "help": "updates between target-network syncs (Q-learning algorithms, sac's critics)",
            "min": 1,
        },
    )
    reward_scale: float = field(
        default=0.0,
        metadata={
            "help": "Q-learning trains on reward * reward_scale (d3rlpy MultiplyRewardScaler); "
            "0 = auto: 1 / max |reward| of the train split. Q-values are reported in "
            "reward units either way",
            "min": 0.0,
        },
    )
    scale_index_features: bool = field(
        default=True,
        metadata={
            "help": "divide index features (action ids, A = none) by A in the network input; "
            "false feeds the raw ids (unstable with ~50 actions)"
        },
    )
    hidden_units: tuple[int, ...] = field(
        default=(256, 256),
        metadata={"help": "hidden layer sizes of every network (d3rlpy VectorEncoder)", "min": 1},
    )
    seed: int = field(default=0, metadata={"help": "random seed", "min": 0})
    device: str = field(
        default="auto",
        metadata={"help": "torch device: auto (CUDA when present), cpu, cuda or cuda:N"},
    )
    threads: int = field(
        default=0,
        metadata={"help": "torch CPU threads; 0 = auto (1 on machines with <= 2 cores)", "min": 0},
    )
    max_validation_rows: int = field(
        default=50000,
        metadata={"help": "validation rows used for per-epoch metrics (a fixed sample)", "min": 1},
    )
    ips_epsilon: float = field(
        default=0.1,
        metadata={
            "help": "epsilon of the epsilon-greedy head scored by the per-epoch IPS",
            "gt": 0.0,
            "max": 1.0,
        },
    )
    dqn: dict[str, Any] = _overrides("dqn", "DQNConfig")
    double_dqn: dict[str, Any] = _overrides("double_dqn", "DoubleDQNConfig")
    cql: dict[str, Any] = _overrides("cql", "DiscreteCQLConfig")
    bcq: dict[str, Any] = _overrides("bcq", "DiscreteBCQConfig")
    bc: dict[str, Any] = _overrides("bc", "DiscreteBCConfig")
    sac: dict[str, Any] = _overrides(
        "sac", "DiscreteSACConfig plus conservative_weight and target_entropy_ratio"
    )

    def __post_init__(self) -> None:
        if not self.algorithms:
            raise TrainError(
                f"[train] algorithms is empty; list one or more of {', '.join(ALGORITHM_NAMES)}"
            )
        for name in self.algorithms:
            if name not in ALGORITHM_NAMES:
                raise TrainError(
                    f"[train] algorithms: unknown algorithm {name!r}; "
                    f"choose from {', '.join(ALGORITHM_NAMES)}"
                )
        dupes = sorted({n for n in self.algorithms if self.algorithms.count(n) > 1})
        if dupes:
            raise TrainError(f"[train] algorithms lists {dupes[0]!r} twice; list it once")
        if not self.hidden_units:
            raise TrainError("[train] hidden_units is empty; give at least one layer size")
        for size in self.hidden_units:
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise TrainError(
                    f"[train] hidden_units = {list(self.hidden_units)}: "
                    f"every size must be a whole number >= 1"
                )
        if not isinstance(self.device, str) or not _DEVICE.match(self.device):
            raise TrainError(
                f'[train] device = {self.device!r}: must be "auto", "cpu", "cuda" or "cuda:N"'
            )
        for name in ALGORITHM_NAMES:
            overrides = self.overrides(name)
            if not isinstance(overrides, dict):
                raise TrainError(f"[train.{name}] must be a table of d3rlpy config fields")
            if overrides:
                # imported lazily: validating overrides needs d3rlpy (and torch)
                from offline_rl.algorithms import check_overrides

                check_overrides(name, overrides)

    def overrides(self, algorithm: str) -> dict[str, Any]:
        """The ``[train.<algorithm>]`` table."""
        if algorithm not in ALGORITHM_NAMES:
            raise TrainError(
                f"unknown algorithm {algorithm!r}; choose from {', '.join(ALGORITHM_NAMES)}"
            )
        return getattr(self, algorithm)


def resolve_threads(threads: int) -> int:
    """``threads`` or, for 0, the automatic choice: 1 on <= 2 cores, else half the cores (max 4).

    Torch with 2 threads on a 2-core machine slows down by 10x and more as soon as another
    process is busy, so small machines get one thread.
    """
    if threads > 0:
        return threads
    cores = os.cpu_count() or 1
    return 1 if cores <= 2 else min(4, cores // 2)
