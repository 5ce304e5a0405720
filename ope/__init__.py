"""Off-policy evaluation on numpy arrays.

Bandit estimators (call-compatible with Open Bandit Pipeline 0.5), sequential per-session
estimators, session-bootstrap and normal intervals, paired comparisons, weight diagnostics and
a runner that returns one tidy table. See ``docs/ope.md``.
"""

from ope.bandit import (
    BanditEstimator,
    DirectMethod,
    DoublyRobust,
    DoublyRobustWithShrinkage,
    InverseProbabilityWeighting,
    LoggedPolicyValue,
    SelfNormalizedDoublyRobust,
    SelfNormalizedInverseProbabilityWeighting,
    SwitchDoublyRobust,
    importance_weights,
)
from ope.behaviour_model import (
    BehaviourModelConfig,
    BehaviourModelResult,
    CalibrationTable,
    FittedBehaviourModel,
    PropensityChoice,
    PropensityComparison,
    calibration_table,
    choose_propensities,
    compare_propensities,
    fit_behaviour_model,
    floor_probabilities,
)
from ope.bootstrap import resample_weights
from ope.compare import Comparison, compare, compare_many
from ope.config import EvaluateConfig
from ope.diagnostics import (
    WeightDiagnostics,
    bandit_diagnostics,
    estimator_disagreement,
    kish_ess,
    sequential_diagnostics,
    support_from_actions,
    unsupported_mass,
    weight_diagnostics,
)
from ope.errors import OPEError
from ope.fqe import FittedQ, FQEConfig, FQEResult, fit_fqe, initial_state_rows
from ope.intervals import (
    Interval,
    bootstrap_values,
    estimate_interval,
    estimate_intervals,
    standard_error,
)
from ope.kernel import Kernel
from ope.meta import OffPolicyEvaluation, SequentialOffPolicyEvaluation, summarize_kernels
from ope.registry import estimators_from_config, make_bandit_estimator, make_sequential_estimator
from ope.reward_model import (
    FittedRewardModel,
    RewardModelConfig,
    RewardModelResult,
    episode_folds,
    fit_reward_model,
)
from ope.sequential import (
    OnPolicyReturn,
    PerDecisionImportanceSampling,
    SequentialDoublyRobust,
    SequentialEstimator,
    TrajectoryWiseImportanceSampling,
    WeightedDoublyRobust,
    WeightedPerDecisionImportanceSampling,
)

__all__ = [
    "FQEConfig",
    "FQEResult",
    "FittedQ",
    "fit_fqe",
    "initial_state_rows",
    "RewardModelConfig",
    "RewardModelResult",
    "FittedRewardModel",
    "fit_reward_model",
    "episode_folds",
    "BehaviourModelConfig",
    "BehaviourModelResult",
    "FittedBehaviourModel",
    "CalibrationTable",
    "PropensityComparison",
    "PropensityChoice",
    "fit_behaviour_model",
    "floor_probabilities",
    "calibration_table",
    "compare_propensities",
    "choose_propensities",
    "BanditEstimator",
    "LoggedPolicyValue",
    "InverseProbabilityWeighting",
    "SelfNormalizedInverseProbabilityWeighting",
    "DirectMethod",
    "DoublyRobust",
    "SelfNormalizedDoublyRobust",
    "SwitchDoublyRobust",
    "DoublyRobustWithShrinkage",
    "importance_weights",
    "SequentialEstimator",
    "OnPolicyReturn",
    "TrajectoryWiseImportanceSampling",
    "PerDecisionImportanceSampling",
    "WeightedPerDecisionImportanceSampling",
    "SequentialDoublyRobust",
    "WeightedDoublyRobust",
    "Kernel",
    "Interval",
    "estimate_interval",
    "estimate_intervals",
    "bootstrap_values",
    "standard_error",
    "resample_weights",
    "Comparison",
    "compare",
    "compare_many",
    "WeightDiagnostics",
    "kish_ess",
    "weight_diagnostics",
    "bandit_diagnostics",
    "sequential_diagnostics",
    "support_from_actions",
    "unsupported_mass",
    "estimator_disagreement",
    "OffPolicyEvaluation",
    "SequentialOffPolicyEvaluation",
    "summarize_kernels",
    "make_bandit_estimator",
    "make_sequential_estimator",
    "estimators_from_config",
    "EvaluateConfig",
    "OPEError",
]
