"""``[evaluate]`` section of offrec.toml."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["EvaluateConfig"]


@dataclass(frozen=True)
class EvaluateConfig:
    """Off-policy evaluation of trained policies against the logged behaviour."""

    alpha: float = field(default=0.05, metadata={"help": "1 - interval confidence", "gt": 0,
                                                 "lt": 1})
    n_bootstrap: int = field(default=1000, metadata={"help": "session bootstrap resamples",
                                                     "min": 10})
