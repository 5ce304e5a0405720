"""``[train]`` section of offrec.toml."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TrainConfig"]


@dataclass(frozen=True)
class TrainConfig:
    """Offline RL training."""

    seed: int = field(default=0, metadata={"help": "random seed", "min": 0})
    threads: int = field(default=1, metadata={"help": "torch threads", "min": 1})
