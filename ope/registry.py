"""Estimators by name, as listed in the ``[evaluate]`` config section."""

from __future__ import annotations

import math

from ope.bandit import (
    BanditEstimator,
    DirectMethod,
    DoublyRobust,
    DoublyRobustWithShrinkage,
    InverseProbabilityWeighting,
    SelfNormalizedDoublyRobust,
    SelfNormalizedInverseProbabilityWeighting,
    SwitchDoublyRobust,
)
from ope.config import BANDIT_ESTIMATOR_NAMES, SEQUENTIAL_ESTIMATOR_NAMES, EvaluateConfig
from ope.errors import OPEError
from ope.sequential import (
    PerDecisionImportanceSampling,
    SequentialDoublyRobust,
    SequentialEstimator,
    TrajectoryWiseImportanceSampling,
    WeightedDoublyRobust,
    WeightedPerDecisionImportanceSampling,
)

__all__ = [
    "BANDIT_ESTIMATOR_NAMES",
    "SEQUENTIAL_ESTIMATOR_NAMES",
    "make_bandit_estimator",
    "make_sequential_estimator",
    "estimators_from_config",
]


def make_bandit_estimator(
    name: str,
    *,
    clip_lambda: float = math.inf,
    switch_lambda: float = 100.0,
    shrinkage_lambda: float = 100.0,
) -> BanditEstimator:
    """The bandit estimator called ``name`` (one of :data:`BANDIT_ESTIMATOR_NAMES`)."""
    if name == "ipw":
        return InverseProbabilityWeighting(lambda_=clip_lambda)
    if name == "snipw":
        return SelfNormalizedInverseProbabilityWeighting()
    if name == "dm":
        return DirectMethod()
    if name == "dr":
        return DoublyRobust(lambda_=clip_lambda)
    if name == "sndr":
        return SelfNormalizedDoublyRobust()
    if name == "switch-dr":
        return SwitchDoublyRobust(lambda_=switch_lambda)
    if name == "dr-os":
        return DoublyRobustWithShrinkage(lambda_=shrinkage_lambda)
    raise OPEError(
        f"unknown bandit estimator {name!r}; choose from {', '.join(BANDIT_ESTIMATOR_NAMES)}"
    )


def make_sequential_estimator(name: str, *, gamma: float = 1.0) -> SequentialEstimator:
    """The sequential estimator called ``name`` (one of :data:`SEQUENTIAL_ESTIMATOR_NAMES`)."""
    classes: dict[str, type[SequentialEstimator]] = {
        "trajectory_is": TrajectoryWiseImportanceSampling,
        "pdis": PerDecisionImportanceSampling,
        "wpdis": WeightedPerDecisionImportanceSampling,
        "sequential_dr": SequentialDoublyRobust,
        "wdr": WeightedDoublyRobust,
    }
    if name not in classes:
        raise OPEError(
            f"unknown sequential estimator {name!r}; "
            f"choose from {', '.join(SEQUENTIAL_ESTIMATOR_NAMES)}"
        )
    return classes[name](gamma=gamma)  # type: ignore[call-arg]


def estimators_from_config(
    cfg: EvaluateConfig,
) -> tuple[tuple[BanditEstimator, ...], tuple[SequentialEstimator, ...]]:
    """The bandit and sequential estimators the config asks for."""
    bandit = tuple(
        make_bandit_estimator(
            n,
            clip_lambda=cfg.clip_lambda,
            switch_lambda=cfg.switch_lambda,
            shrinkage_lambda=cfg.shrinkage_lambda,
        )
        for n in cfg.estimators
    )
    sequential = tuple(
        make_sequential_estimator(n, gamma=cfg.gamma) for n in cfg.sequential_estimators
    )
    return bandit, sequential
