"""Paired comparison of two policies' estimates on the same logged data.

For a target statistic ``V_t`` and a baseline ``V_b`` (e.g. the logged behaviour's own value)
computed on the same rows, returns intervals for

* the difference ``V_t - V_b`` and
* the relative lift ``V_t / V_b - 1``

computed on the SAME session resamples (percentile) or with the joint delta method (normal):
``u_diff = u_t - u_b`` and ``u_rel = u_t / V_b - V_t u_b / V_b**2`` per session. Because both
estimates move together across resamples, the paired interval of the difference is much
narrower than what two separate intervals suggest.

The relative lift is undefined when ``V_b`` is 0: its interval is then NaN; resamples in which
the baseline is 0 are left out of the percentile interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ope.bootstrap import (
    DEFAULT_MAX_BYTES,
    bootstrap_kernel_values,
    influence,
    session_clusters,
)
from ope.errors import OPEError
from ope.intervals import (
    Interval,
    normal_interval,
    percentile_interval,
    se_from_influence,
)
from ope.kernel import Kernel
from ope.types import RandomState
from ope.validation import check_alpha, check_method, check_n_bootstrap

__all__ = ["Comparison", "compare", "compare_many"]


@dataclass(frozen=True)
class Comparison:
    """Target vs baseline on the same data, all intervals from the same resamples."""

    target: Interval
    baseline: Interval
    difference: Interval
    relative_lift: Interval


def compare_many(
    targets: Mapping[str, Kernel],
    baseline: Kernel,
    episode_ids: object = None,
    *,
    alpha: float = 0.05,
    n_bootstrap: int = 1000,
    method: str = "percentile",
    random_state: RandomState = None,
    scheme: str = "auto",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> dict[str, Comparison]:
    """Compare each target kernel with ``baseline``; one bootstrap pass for all of them.

    Args:
        targets: name -> kernel of the evaluated policy (n rows each).
        baseline: kernel of the reference policy on the same n rows.
        episode_ids: (n,) session ids; ``None`` treats rows as independent.
        alpha, n_bootstrap, method, random_state, scheme, max_bytes: as
            :func:`ope.intervals.estimate_intervals`.
    """
    alpha = check_alpha(alpha)
    method = check_method(method)
    if not targets:
        raise OPEError("no target estimators given to compare")
    names = list(targets)
    kernels = [baseline, *targets.values()]
    clusters = session_clusters(episode_ids, baseline.n_rows)
    points = [k.value() for k in kernels]
    vb = points[0]
    out: dict[str, Comparison] = {}
    if method == "normal":
        us = [influence(k, clusters, max_bytes) for k in kernels]
        base = normal_interval(vb, se_from_influence(us[0]), alpha)
        for j, name in enumerate(names, start=1):
            vt, ut = points[j], us[j]
            target = normal_interval(vt, se_from_influence(ut), alpha)
            diff = normal_interval(vt - vb, se_from_influence(ut - us[0]), alpha)
            if vb == 0.0:
                rel = Interval(math.nan, math.nan, math.nan, alpha, "normal", 0)
            else:
                u_rel = ut / vb - vt * us[0] / (vb * vb)
                rel = normal_interval(vt / vb - 1.0, se_from_influence(u_rel), alpha)
            out[name] = Comparison(target, base, diff, rel)
        return out
    values = bootstrap_kernel_values(
        kernels,
        clusters,
        check_n_bootstrap(n_bootstrap),
        random_state,
        scheme=scheme,
        max_bytes=max_bytes,
    )
    base_values = values[:, 0]
    base = percentile_interval(vb, base_values, alpha)
    for j, name in enumerate(names, start=1):
        vt, tv = points[j], values[:, j]
        target = percentile_interval(vt, tv, alpha)
        diff = percentile_interval(vt - vb, tv - base_values, alpha)
        rel_values = (
            np.divide(tv, base_values, out=np.full_like(tv, np.nan), where=base_values != 0.0) - 1.0
        )
        rel_point = vt / vb - 1.0 if vb != 0.0 else math.nan
        if math.isnan(rel_point):
            rel = Interval(math.nan, math.nan, math.nan, alpha, "percentile", tv.size)
        else:
            rel = percentile_interval(rel_point, rel_values, alpha)
        out[name] = Comparison(target, base, diff, rel)
    return out


def compare(
    target: Kernel,
    baseline: Kernel,
    episode_ids: object = None,
    *,
    alpha: float = 0.05,
    n_bootstrap: int = 1000,
    method: str = "percentile",
    random_state: RandomState = None,
    scheme: str = "auto",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Comparison:
    """Difference and relative lift of ``target`` over ``baseline`` (see :func:`compare_many`)."""
    name = target.name or "target"
    return compare_many(
        {name: target},
        baseline,
        episode_ids,
        alpha=alpha,
        n_bootstrap=n_bootstrap,
        method=method,
        random_state=random_state,
        scheme=scheme,
        max_bytes=max_bytes,
    )[name]
