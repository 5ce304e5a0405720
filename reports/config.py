"""``[report]`` section of offrec.toml."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ReportConfig"]


@dataclass(frozen=True)
class ReportConfig:
    """HTML report and the ship/keep verdict rules."""

    primary_estimator: str = field(default="DR", metadata={"help": "estimator the verdict uses"})
    min_ess_share: float = field(
        default=0.01, metadata={"help": "weights are healthy when ESS/n >= this", "min": 0, "max": 1}
    )
