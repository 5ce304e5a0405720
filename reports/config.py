"""``[report]`` section of offrec.toml: the ship/keep verdict rules and report options.

The verdict rules are applied by ``ope.verdict.decide`` when ``offrec evaluate`` runs (the
verdict is stored with the results); the report only shows the stored verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ReportConfig"]


@dataclass(frozen=True)
class ReportConfig:
    """HTML report and the ship/keep verdict rules."""

    primary_estimator: str = field(
        default="dr",
        metadata={
            "help": "estimator whose lift interval decides the verdict (a name from [evaluate] "
            "estimators, or fqe)"
        },
    )
    primary_objective: str = field(
        default="reward",
        metadata={
            "help": "objective the verdict is about: reward (the weighted sum), click, cart, "
            "purchase or revenue"
        },
    )
    min_ess_share: float = field(
        default=0.01,
        metadata={"help": "weights are healthy when ESS / decisions >= this", "min": 0, "max": 1},
    )
    max_weight: float = field(
        default=100.0,
        metadata={
            "help": "weights are healthy when the largest importance weight <= this",
            "min": 1,
        },
    )
    max_unsupported_mass: float = field(
        default=0.05,
        metadata={
            "help": "weights are healthy when the policy puts at most this share of probability "
            "on actions the logging policy never takes",
            "min": 0,
            "max": 1,
        },
    )
    require_sign_agreement: bool = field(
        default=True,
        metadata={"help": "ship only when the agreement_estimators' lifts share one sign"},
    )
    agreement_estimators: tuple[str, ...] = field(
        default=("dr", "fqe"),
        metadata={"help": "estimators that must agree on the direction of the lift"},
    )
    history_runs: int = field(
        default=30,
        metadata={
            "help": "earlier runs shown in the report's trend section",
            "min": 1,
            "max": 1000,
        },
    )

    def __post_init__(self) -> None:
        for name in ("primary_estimator", "primary_objective"):
            if not getattr(self, name).strip():
                raise ValueError(f"{name} = {getattr(self, name)!r}: must not be empty")
        if self.require_sign_agreement and len(set(self.agreement_estimators)) < 2:
            raise ValueError(
                f"agreement_estimators = {list(self.agreement_estimators)!r}: name at least two "
                'estimators (e.g. ["dr", "fqe"]) or set require_sign_agreement = false'
            )
