"""``[simulate]`` section of offrec.toml."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SimulatorConfig"]


@dataclass(frozen=True)
class SimulatorConfig:
    """The built-in e-commerce session simulator."""

    seed: int = field(default=0, metadata={"help": "random seed", "min": 0})
    n_sessions: int = field(default=20000, metadata={"help": "sessions to simulate", "min": 1})
