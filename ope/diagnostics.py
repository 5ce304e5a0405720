"""Diagnostics that say how far to trust an off-policy estimate.

* Kish effective sample size ``ESS = (sum_i w_i)**2 / sum_i w_i**2`` of the importance weights:
  how many on-policy samples the weighted data is worth (``n`` when all weights are equal).
  An ESS below ~1% of ``n`` means IPW-type estimates rest on a handful of decisions.
* ``max_weight`` and ``p99_weight``: the largest and the 99th-percentile weight.
* ``zero_support_share``: share of logged decisions where the target puts zero probability on
  the logged action (those decisions tell IPW nothing about the target).
* ``unsupported_mass``: average probability the target puts on actions the behaviour never
  takes (given the behaviour's distribution or a support mask). Any mass there is invisible to
  every importance-weighted estimator: they are biased unless it is 0, and only model-based
  estimators (DM, the model part of DR) say anything about it.
* ``estimator_disagreement``: spread of the estimators' point estimates divided by the median
  interval width. Above 1, estimators disagree by more than their own uncertainty — a sign of
  model misspecification or of weights too extreme for the sample.

For sequential data the weights are the trajectory weights ``rho_{e,T_e-1}`` (one per
session), the ESS counts sessions, and ``zero_support_share`` counts decisions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ope.bandit import validate_bandit_inputs
from ope.errors import OPEError
from ope.intervals import Interval
from ope.sequential import validate_episode_inputs
from ope.types import BoolArray
from ope.validation import as_action_dist, as_float_vector, as_int_vector, as_position, show

__all__ = [
    "WeightDiagnostics",
    "kish_ess",
    "weight_diagnostics",
    "support_from_actions",
    "unsupported_mass",
    "bandit_diagnostics",
    "sequential_diagnostics",
    "estimator_disagreement",
]


@dataclass(frozen=True)
class WeightDiagnostics:
    """Summary of one policy's importance weights (see the module docstring).

    Attributes:
        n: number of weights (decisions, or sessions for sequential data).
        ess: Kish effective sample size.
        ess_ratio: ``ess / n``.
        max_weight, p99_weight: largest and 99th-percentile weight.
        zero_support_share: share of logged decisions with target probability 0.
        unsupported_mass: mean target probability on unsupported actions (``None`` when no
            behaviour distribution or support mask was given).
    """

    n: int
    ess: float
    ess_ratio: float
    max_weight: float
    p99_weight: float
    zero_support_share: float
    unsupported_mass: float | None


def kish_ess(weights: object) -> float:
    """``(sum w)**2 / sum w**2`` for non-negative weights (n,); 0 when all weights are 0."""
    w = as_float_vector("weights", weights)
    if (w < 0).any():
        i = int(np.flatnonzero(w < 0)[0])
        raise OPEError(f"weights[{i}] = {show(w[i])}; importance weights must be >= 0")
    sq = float(np.dot(w, w))
    return 0.0 if sq == 0.0 else float(w.sum()) ** 2 / sq


def weight_diagnostics(
    weights: object,
    *,
    zero_support_share: float | None = None,
    unsupported_mass: float | None = None,
) -> WeightDiagnostics:
    """Diagnostics of a weight vector (n,).

    ``zero_support_share`` defaults to the share of zero weights.
    """
    w = as_float_vector("weights", weights)
    ess = kish_ess(w)
    share = float(np.mean(w == 0.0)) if zero_support_share is None else float(zero_support_share)
    return WeightDiagnostics(
        n=int(w.size),
        ess=ess,
        ess_ratio=ess / w.size,
        max_weight=float(w.max()),
        p99_weight=float(np.quantile(w, 0.99)),
        zero_support_share=share,
        unsupported_mass=unsupported_mass,
    )


def support_from_actions(action: object, n_actions: int) -> BoolArray:
    """Actions the behaviour was seen taking: a global support mask (n_actions,)."""
    a = as_int_vector("action", action)
    if isinstance(n_actions, bool) or not isinstance(n_actions, int | np.integer) or n_actions < 1:
        raise OPEError(f"n_actions must be a positive whole number, got {show(n_actions)}")
    if a.max() >= n_actions:
        i = int(np.flatnonzero(a >= n_actions)[0])
        raise OPEError(f"action[{i}] = {a[i]} is out of range for n_actions = {n_actions}")
    return np.bincount(a, minlength=n_actions) > 0


def unsupported_mass(
    action_dist: object,
    *,
    behaviour_action_dist: object = None,
    support_mask: object = None,
    position: object = None,
) -> float:
    """Mean over decisions of ``sum_a pi_e(a | x_i, k_i) 1{a unsupported at x_i}``.

    Args:
        action_dist: target probabilities (n, A) or (n, A, L).
        behaviour_action_dist: behaviour probabilities, same shape; ``a`` is unsupported where
            its behaviour probability is 0.
        support_mask: alternatively a boolean mask of supported actions: (A,) for all
            decisions, (n, A) per decision or (n, A, L) per decision and slot.
        position: (n,) slot of each decision (required when L > 1).
    """
    dist = as_action_dist("action_dist", action_dist)
    n, n_actions, len_list = dist.shape
    pos = as_position(position, n, len_list)
    rows = np.arange(n)
    target = dist[rows, :, pos]
    if (behaviour_action_dist is None) == (support_mask is None):
        raise OPEError("give exactly one of behaviour_action_dist and support_mask")
    if behaviour_action_dist is not None:
        behaviour = as_action_dist("behaviour_action_dist", behaviour_action_dist)
        if behaviour.shape != dist.shape:
            raise OPEError(
                "expected behaviour_action_dist.shape == action_dist.shape, got "
                f"{np.shape(behaviour_action_dist)} and {np.shape(action_dist)}"
            )
        supported = behaviour[rows, :, pos] > 0.0
    else:
        mask = np.asarray(support_mask)
        if mask.dtype != np.bool_:
            raise OPEError(f"support_mask must be boolean, got dtype {mask.dtype}")
        if mask.shape == (n_actions,):
            supported = np.broadcast_to(mask, target.shape)
        elif mask.shape == (n, n_actions):
            supported = mask
        elif mask.shape == (n, n_actions, len_list):
            supported = mask[rows, :, pos]
        else:
            raise OPEError(
                f"support_mask has shape {mask.shape}; expected ({n_actions},), "
                f"({n}, {n_actions}) or ({n}, {n_actions}, {len_list})"
            )
    return float(np.mean(np.where(supported, 0.0, target).sum(axis=1)))


def bandit_diagnostics(
    *,
    action: object,
    pscore: object,
    action_dist: object,
    position: object = None,
    behaviour_action_dist: object = None,
    support_mask: object = None,
) -> WeightDiagnostics:
    """Diagnostics of the bandit weights ``w_i = pi_e(a_i|x_i,k_i) / p_i``.

    ``unsupported_mass`` is computed when ``behaviour_action_dist`` or ``support_mask`` is given.
    """
    inputs = validate_bandit_inputs(
        action=action, pscore=pscore, action_dist=action_dist, position=position
    )
    mass = None
    if behaviour_action_dist is not None or support_mask is not None:
        mass = unsupported_mass(
            inputs.action_dist,
            behaviour_action_dist=behaviour_action_dist,
            support_mask=support_mask,
            position=inputs.position,
        )
    return weight_diagnostics(inputs.weights(), unsupported_mass=mass)


def sequential_diagnostics(
    *,
    episode_ids: object,
    steps: object,
    pscore: object,
    target_prob: object,
    target_action_dist: object = None,
    behaviour_action_dist: object = None,
    support_mask: object = None,
) -> WeightDiagnostics:
    """Diagnostics of the trajectory weights ``rho_{e,T_e-1}`` (one per session).

    ``zero_support_share`` is the share of decisions with ``target_prob == 0``;
    ``unsupported_mass`` needs the target's full distribution ``target_action_dist`` (n, A)
    and ``behaviour_action_dist`` or ``support_mask``.
    """
    p = as_float_vector("pscore", pscore)
    data = validate_episode_inputs(
        reward=np.zeros(p.shape[0]),
        episode_ids=episode_ids,
        steps=steps,
        pscore=p,
        target_prob=target_prob,
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
    share = float(np.mean(data.need("target_prob", "sequential_diagnostics") == 0.0))
    return weight_diagnostics(data.final_weight(), zero_support_share=share, unsupported_mass=mass)


def estimator_disagreement(intervals: Mapping[str, Interval] | Sequence[Interval]) -> float:
    """``(max point - min point) / median(high - low)`` over the estimators' intervals.

    NaN with fewer than two intervals; ``inf`` when estimates differ but every width is 0.
    """
    items = list(intervals.values()) if isinstance(intervals, Mapping) else list(intervals)
    points = np.array([i.point for i in items], dtype=np.float64)
    widths = np.array([i.width for i in items], dtype=np.float64)
    keep = np.isfinite(points) & np.isfinite(widths)
    if keep.sum() < 2:
        return math.nan
    spread = float(points[keep].max() - points[keep].min())
    width = float(np.median(widths[keep]))
    if width == 0.0:
        return 0.0 if spread == 0.0 else math.inf
    return spread / width
