"""``[evaluate]`` section of offrec.toml."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ope.behaviour_model import BehaviourModelConfig
from ope.errors import OPEError
from ope.fqe import FQEConfig
from ope.reward_model import RewardModelConfig

__all__ = ["EvaluateConfig", "BANDIT_ESTIMATOR_NAMES", "SEQUENTIAL_ESTIMATOR_NAMES"]

#: Names accepted in ``estimators`` (see ``ope.registry``).
BANDIT_ESTIMATOR_NAMES: tuple[str, ...] = (
    "ipw",
    "snipw",
    "dm",
    "dr",
    "sndr",
    "switch-dr",
    "dr-os",
)
#: Names accepted in ``sequential_estimators``.
SEQUENTIAL_ESTIMATOR_NAMES: tuple[str, ...] = (
    "trajectory_is",
    "pdis",
    "wpdis",
    "sequential_dr",
    "wdr",
)


@dataclass(frozen=True)
class EvaluateConfig:
    """Off-policy evaluation of trained policies against the logged behaviour."""

    alpha: float = field(
        default=0.05, metadata={"help": "1 - interval confidence", "gt": 0, "lt": 1}
    )
    n_bootstrap: int = field(
        default=1000, metadata={"help": "session bootstrap resamples", "min": 10}
    )
    interval_method: str = field(
        default="percentile",
        metadata={
            "help": "session-bootstrap percentile interval, or normal with a cluster-robust "
            "(by session) standard error",
            "choices": ("percentile", "normal"),
        },
    )
    bootstrap_scheme: str = field(
        default="auto",
        metadata={
            "help": "resampling weights: multinomial (classic), poisson (fast, >= 100 "
            "sessions) or auto (multinomial up to 5000 sessions)",
            "choices": ("auto", "multinomial", "poisson"),
        },
    )
    seed: int = field(default=0, metadata={"help": "seed of the bootstrap resamples", "min": 0})
    gamma: float = field(
        default=0.95,
        metadata={
            "help": "discount of the sequential (per-session) estimators",
            "min": 0,
            "max": 1,
        },
    )
    estimators: tuple[str, ...] = field(
        default=("ipw", "snipw", "dm", "dr", "sndr"),
        metadata={"help": "per-decision estimators to run", "choices": BANDIT_ESTIMATOR_NAMES},
    )
    sequential_estimators: tuple[str, ...] = field(
        default=("pdis", "wpdis", "sequential_dr", "wdr"),
        metadata={
            "help": "per-session estimators to run",
            "choices": SEQUENTIAL_ESTIMATOR_NAMES,
        },
    )
    clip_lambda: float = field(
        default=math.inf,
        metadata={
            "help": "cap on importance weights in ipw and dr (inf: none)",
            "min": 0,
            "allow_inf": True,
        },
    )
    switch_lambda: float = field(
        default=100.0,
        metadata={
            "help": "switch-dr: weights above this use the reward model alone",
            "min": 0,
            "allow_inf": True,
        },
    )
    shrinkage_lambda: float = field(
        default=100.0,
        metadata={"help": "dr-os shrinkage strength (0: DM, inf: DR)", "min": 0, "allow_inf": True},
    )

    policy_head: str = field(
        default="epsilon_greedy",
        metadata={
            "help": "how a learned Q-function becomes the evaluated policy (greedy policies "
            "put zero mass on most logged actions, which starves importance weighting)",
            "choices": ("epsilon_greedy", "softmax", "greedy"),
        },
    )
    epsilon: float = field(
        default=0.1,
        metadata={
            "help": "epsilon of the epsilon-greedy head and of most_popular",
            "min": 0,
            "max": 1,
        },
    )
    temperature: float = field(
        default=1.0,
        metadata={"help": "temperature of the softmax head (Q in reward units)", "gt": 0},
    )
    baselines: tuple[str, ...] = field(
        default=("uniform", "most_popular"),
        metadata={
            "help": "baseline policies evaluated beside the trained ones",
            "choices": ("uniform", "most_popular"),
        },
    )
    fqe_enabled: bool = field(
        default=True, metadata={"help": "fit FQE per policy (also the model of sequential DR/WDR)"}
    )
    fqe: FQEConfig = field(default_factory=FQEConfig)
    reward_model: RewardModelConfig = field(default_factory=RewardModelConfig)
    behaviour_model: BehaviourModelConfig = field(default_factory=BehaviourModelConfig)
    estimate_propensities: bool = field(
        default=False,
        metadata={
            "help": "use the behaviour model's propensities even when the logs have "
            "them (they are always estimated when any is missing)"
        },
    )
    ground_truth_sessions: int = field(
        default=4000,
        metadata={
            "help": "sessions simulated per policy for ground truth (simulated data only)",
            "min": 100,
        },
    )

    def __post_init__(self) -> None:
        if self.fqe_enabled and self.gamma >= 1.0:
            raise OPEError(
                f"gamma = {self.gamma}: FQE needs a discount below 1; set [evaluate] gamma "
                "(e.g. 0.95) or fqe_enabled = false"
            )
        for key, names, allowed in (
            ("estimators", self.estimators, BANDIT_ESTIMATOR_NAMES),
            ("sequential_estimators", self.sequential_estimators, SEQUENTIAL_ESTIMATOR_NAMES),
        ):
            unknown = [n for n in names if n not in allowed]
            if unknown:
                raise OPEError(
                    f"{key} = {list(names)}: unknown {', '.join(map(repr, unknown))}; "
                    f"choose from {', '.join(allowed)}"
                )
            if len(set(names)) != len(names):
                raise OPEError(f"{key} = {list(names)} lists an estimator twice")
        if not self.estimators and not self.sequential_estimators:
            raise OPEError("estimators and sequential_estimators are both empty; name at least one")
