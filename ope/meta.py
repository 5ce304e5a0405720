"""Run several estimators on one dataset and get one tidy table.

:class:`OffPolicyEvaluation` (per-decision data) and :class:`SequentialOffPolicyEvaluation`
(per-session data) validate the inputs once, build every estimator's kernel, compute all
intervals on the same session resamples (one bootstrap pass), optionally compare each
estimate with the logged behaviour's own value (paired difference and relative lift), and add
the weight diagnostics. Columns follow the ``ope_results`` contract of ``docs/design.md``:

``estimator, value, low, high, alpha, interval_method, n_bootstrap`` and, with a baseline,
``baseline_value, lift, lift_low, lift_high, rel_lift, rel_lift_low, rel_lift_high``; then
``ess, max_weight, p99_weight, zero_support_share, unsupported_mass, n_decisions,
n_episodes, disagreement`` (the last is the same on every row: see
:func:`ope.diagnostics.estimator_disagreement`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from ope.bandit import BanditEstimator, LoggedPolicyValue, validate_bandit_inputs
from ope.bootstrap import DEFAULT_MAX_BYTES, session_clusters
from ope.compare import compare_many
from ope.diagnostics import (
    WeightDiagnostics,
    estimator_disagreement,
    unsupported_mass,
    weight_diagnostics,
)
from ope.errors import OPEError
from ope.intervals import Interval, estimate_intervals
from ope.kernel import Kernel
from ope.sequential import OnPolicyReturn, SequentialEstimator, validate_episode_inputs
from ope.types import RandomState

__all__ = [
    "RESULT_COLUMNS",
    "LIFT_COLUMNS",
    "DIAGNOSTIC_COLUMNS",
    "summarize_kernels",
    "OffPolicyEvaluation",
    "SequentialOffPolicyEvaluation",
]

RESULT_COLUMNS = ("estimator", "value", "low", "high", "alpha", "interval_method", "n_bootstrap")
LIFT_COLUMNS = (
    "baseline_value",
    "lift",
    "lift_low",
    "lift_high",
    "rel_lift",
    "rel_lift_low",
    "rel_lift_high",
)
DIAGNOSTIC_COLUMNS = (
    "ess",
    "max_weight",
    "p99_weight",
    "zero_support_share",
    "unsupported_mass",
    "n_decisions",
    "n_episodes",
    "disagreement",
)


def _interval_row(name: str, iv: Interval) -> dict[str, object]:
    return {
        "estimator": name,
        "value": iv.point,
        "low": iv.low,
        "high": iv.high,
        "alpha": iv.alpha,
        "interval_method": iv.method,
        "n_bootstrap": iv.n_bootstrap,
    }


def summarize_kernels(
    kernels: Mapping[str, Kernel],
    episode_ids: object = None,
    *,
    baseline: Kernel | None = None,
    alpha: float = 0.05,
    n_bootstrap: int = 1000,
    method: str = "percentile",
    random_state: RandomState = None,
    scheme: str = "auto",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> pd.DataFrame:
    """One row per kernel: value and interval (plus lift columns when ``baseline`` is given).

    All intervals come from the same resamples. See :func:`ope.intervals.estimate_intervals`
    and :func:`ope.compare.compare_many` for the arguments.
    """
    rows: list[dict[str, object]] = []
    if baseline is None:
        intervals = estimate_intervals(
            kernels,
            episode_ids,
            alpha=alpha,
            n_bootstrap=n_bootstrap,
            method=method,
            random_state=random_state,
            scheme=scheme,
            max_bytes=max_bytes,
        )
        rows = [_interval_row(name, iv) for name, iv in intervals.items()]
        return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    comparisons = compare_many(
        kernels,
        baseline,
        episode_ids,
        alpha=alpha,
        n_bootstrap=n_bootstrap,
        method=method,
        random_state=random_state,
        scheme=scheme,
        max_bytes=max_bytes,
    )
    for name, c in comparisons.items():
        row = _interval_row(name, c.target)
        row.update(
            baseline_value=c.baseline.point,
            lift=c.difference.point,
            lift_low=c.difference.low,
            lift_high=c.difference.high,
            rel_lift=c.relative_lift.point,
            rel_lift_low=c.relative_lift.low,
            rel_lift_high=c.relative_lift.high,
        )
        rows.append(row)
    return pd.DataFrame(rows, columns=[*RESULT_COLUMNS, *LIFT_COLUMNS])


def _with_diagnostics(
    table: pd.DataFrame, diag: WeightDiagnostics, n_decisions: int, n_episodes: int
) -> pd.DataFrame:
    intervals = [
        Interval(v, lo, hi, a, m, b)
        for v, lo, hi, a, m, b in table[list(RESULT_COLUMNS[1:])].itertuples(index=False)
    ]
    table = table.copy()
    table["ess"] = diag.ess
    table["max_weight"] = diag.max_weight
    table["p99_weight"] = diag.p99_weight
    table["zero_support_share"] = diag.zero_support_share
    table["unsupported_mass"] = math.nan if diag.unsupported_mass is None else diag.unsupported_mass
    table["n_decisions"] = n_decisions
    table["n_episodes"] = n_episodes
    table["disagreement"] = estimator_disagreement(intervals)
    return table


def _unique_names(estimators: Sequence[object], owner: str) -> None:
    names = [getattr(e, "estimator_name", None) for e in estimators]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise OPEError(
            f"{owner}: estimator_name {', '.join(map(repr, dupes))} is used twice; give each "
            "estimator a distinct estimator_name (e.g. 'ipw_lambda10')"
        )


@dataclass(frozen=True)
class OffPolicyEvaluation:
    """Several bandit estimators on one logged dataset (obp's ``OffPolicyEvaluation``).

    Attributes:
        estimators: the estimators; their ``estimator_name`` keys the rows.
    """

    estimators: tuple[BanditEstimator, ...]

    def __post_init__(self) -> None:
        ests = tuple(self.estimators)
        if not ests:
            raise OPEError("OffPolicyEvaluation: give at least one estimator")
        for e in ests:
            if not isinstance(e, BanditEstimator):
                raise OPEError(
                    f"OffPolicyEvaluation: {e!r} is not a bandit estimator (e.g. "
                    "InverseProbabilityWeighting())"
                )
        _unique_names(ests, "OffPolicyEvaluation")
        object.__setattr__(self, "estimators", ests)

    def kernels(
        self,
        *,
        reward: object,
        action: object,
        pscore: object,
        action_dist: object,
        estimated_rewards_by_reg_model: object = None,
        position: object = None,
    ) -> dict[str, Kernel]:
        """Every estimator's kernel, inputs validated once."""
        inputs = validate_bandit_inputs(
            reward=reward,
            action=action,
            pscore=pscore,
            action_dist=action_dist,
            estimated_rewards_by_reg_model=estimated_rewards_by_reg_model,
            position=position,
        )
        return {e.estimator_name: e.kernel_from_inputs(inputs) for e in self.estimators}

    def estimate_policy_values(
        self,
        *,
        reward: object,
        action: object,
        pscore: object,
        action_dist: object,
        estimated_rewards_by_reg_model: object = None,
        position: object = None,
    ) -> dict[str, float]:
        """estimator_name -> point estimate."""
        kernels = self.kernels(
            reward=reward,
            action=action,
            pscore=pscore,
            action_dist=action_dist,
            estimated_rewards_by_reg_model=estimated_rewards_by_reg_model,
            position=position,
        )
        return {name: k.value() for name, k in kernels.items()}

    def summarize(
        self,
        *,
        reward: object,
        action: object,
        pscore: object,
        action_dist: object,
        estimated_rewards_by_reg_model: object = None,
        position: object = None,
        episode_ids: object = None,
        alpha: float = 0.05,
        n_bootstrap: int = 1000,
        method: str = "percentile",
        random_state: RandomState = None,
        scheme: str = "auto",
        compare_to_logged: bool = True,
        behaviour_action_dist: object = None,
        support_mask: object = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> pd.DataFrame:
        """Tidy table: one row per estimator (columns in the module docstring).

        Args:
            reward, action, pscore: logged decisions (n,).
            action_dist: target probabilities (n, A) or (n, A, L).
            estimated_rewards_by_reg_model: reward model, same shape (for DM/DR-type).
            position: (n,) slot of each decision (when L > 1).
            episode_ids: (n,) session of each decision: the bootstrap unit (``None``: each
                decision is independent).
            compare_to_logged: add the paired lift over the logged policy's mean reward.
            behaviour_action_dist, support_mask: behaviour support, for ``unsupported_mass``.
            alpha, n_bootstrap, method, random_state, scheme, max_bytes: see
                :func:`ope.intervals.estimate_intervals`.
        """
        inputs = validate_bandit_inputs(
            reward=reward,
            action=action,
            pscore=pscore,
            action_dist=action_dist,
            estimated_rewards_by_reg_model=estimated_rewards_by_reg_model,
            position=position,
        )
        for e in self.estimators:
            for name in e.uses:
                inputs.need(name, type(e).__name__)
        kernels = {e.estimator_name: e.kernel_from_inputs(inputs) for e in self.estimators}
        baseline = LoggedPolicyValue().kernel_from_inputs(inputs) if compare_to_logged else None
        table = summarize_kernels(
            kernels,
            episode_ids,
            baseline=baseline,
            alpha=alpha,
            n_bootstrap=n_bootstrap,
            method=method,
            random_state=random_state,
            scheme=scheme,
            max_bytes=max_bytes,
        )
        mass = None
        if behaviour_action_dist is not None or support_mask is not None:
            mass = unsupported_mass(
                inputs.action_dist,
                behaviour_action_dist=behaviour_action_dist,
                support_mask=support_mask,
                position=inputs.position,
            )
        diag = weight_diagnostics(inputs.weights(), unsupported_mass=mass)
        n_episodes = session_clusters(episode_ids, inputs.n).n_clusters
        return _with_diagnostics(table, diag, inputs.n, n_episodes)


@dataclass(frozen=True)
class SequentialOffPolicyEvaluation:
    """Several sequential estimators on one set of logged sessions.

    Attributes:
        estimators: the estimators (all with the same ``gamma``).
    """

    estimators: tuple[SequentialEstimator, ...]

    def __post_init__(self) -> None:
        ests = tuple(self.estimators)
        if not ests:
            raise OPEError("SequentialOffPolicyEvaluation: give at least one estimator")
        for e in ests:
            if not isinstance(e, SequentialEstimator):
                raise OPEError(
                    f"SequentialOffPolicyEvaluation: {e!r} is not a sequential estimator (e.g. "
                    "PerDecisionImportanceSampling())"
                )
        gammas = sorted({float(e.gamma) for e in ests})
        if len(gammas) > 1:
            raise OPEError(
                f"SequentialOffPolicyEvaluation: estimators use different gamma {gammas}; "
                "values with different discounts are not comparable"
            )
        _unique_names(ests, "SequentialOffPolicyEvaluation")
        object.__setattr__(self, "estimators", ests)

    @property
    def gamma(self) -> float:
        return float(self.estimators[0].gamma)

    def summarize(
        self,
        *,
        reward: object,
        episode_ids: object,
        steps: object,
        pscore: object,
        target_prob: object,
        q_hat: object = None,
        v_hat: object = None,
        alpha: float = 0.05,
        n_bootstrap: int = 1000,
        method: str = "percentile",
        random_state: RandomState = None,
        scheme: str = "auto",
        compare_to_logged: bool = True,
        target_action_dist: object = None,
        behaviour_action_dist: object = None,
        support_mask: object = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> pd.DataFrame:
        """Tidy table, one row per estimator; sessions are the resampling unit.

        Arrays are (n,) per logged decision as in :mod:`ope.sequential`;
        ``target_action_dist`` (n, A) with ``behaviour_action_dist``/``support_mask`` enables
        ``unsupported_mass``. The baseline is the logged sessions' mean discounted return.
        """
        data = validate_episode_inputs(
            reward=reward,
            episode_ids=episode_ids,
            steps=steps,
            pscore=pscore,
            target_prob=target_prob,
            q_hat=q_hat,
            v_hat=v_hat,
        )
        kernels = {e.estimator_name: e.kernel_from_data(data) for e in self.estimators}
        baseline = (
            OnPolicyReturn(gamma=self.gamma).kernel_from_data(data) if compare_to_logged else None
        )
        table = summarize_kernels(
            kernels,
            data.episode_ids,
            baseline=baseline,
            alpha=alpha,
            n_bootstrap=n_bootstrap,
            method=method,
            random_state=random_state,
            scheme=scheme,
            max_bytes=max_bytes,
        )
        mass = None
        if target_action_dist is not None:
            mass = unsupported_mass(
                target_action_dist,
                behaviour_action_dist=behaviour_action_dist,
                support_mask=support_mask,
            )
        elif behaviour_action_dist is not None or support_mask is not None:
            raise OPEError("unsupported_mass needs target_action_dist (n, n_actions) as well")
        share = float((data.need("target_prob", "summarize") == 0.0).mean())
        diag = weight_diagnostics(
            data.final_weight(), zero_support_share=share, unsupported_mass=mass
        )
        return _with_diagnostics(table, diag, data.n, data.n_episodes)
