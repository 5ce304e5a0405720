"""Confidence intervals for kernel statistics: session-bootstrap percentile and normal.

* ``percentile``: the ``alpha/2`` and ``1 - alpha/2`` quantiles (linear interpolation) of the
  estimate over ``n_bootstrap`` session resamples (:mod:`ope.bootstrap`). Self-normalised
  estimators are recomputed as ratios in every resample.
* ``normal``: ``V +- z_{1-alpha/2} * se`` with the two-sided quantile ``z_{1-alpha/2}`` (1.95996…
  for alpha = 0.05) and the cluster-robust delta-method standard error
  ``se = sqrt(S / (S - 1) * sum_s u_s**2)``, ``u_s = dV/dT . X_s`` over sessions ``s``
  (:func:`ope.bootstrap.influence`). No resampling: ``n_bootstrap`` is 0.

The point estimate is always the estimate on all the data (not the bootstrap mean).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from ope.bootstrap import (
    DEFAULT_MAX_BYTES,
    Clusters,
    bootstrap_kernel_values,
    influence,
    session_clusters,
)
from ope.errors import OPEError
from ope.kernel import Kernel
from ope.types import FloatArray, RandomState
from ope.validation import check_alpha, check_method, check_n_bootstrap

__all__ = [
    "Interval",
    "normal_quantile",
    "percentile_interval",
    "normal_interval",
    "standard_error",
    "se_from_influence",
    "bootstrap_values",
    "estimate_interval",
    "estimate_intervals",
]


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided ``1 - alpha`` confidence interval.

    Attributes:
        point: estimate on all the data.
        low, high: interval bounds.
        alpha: 1 - confidence level.
        method: ``"percentile"`` (session bootstrap) or ``"normal"`` (delta method).
        n_bootstrap: resamples used (0 for ``normal``).
    """

    point: float
    low: float
    high: float
    alpha: float
    method: str
    n_bootstrap: int

    @property
    def width(self) -> float:
        return self.high - self.low

    def contains(self, value: float) -> bool:
        """Whether ``low <= value <= high``."""
        return bool(self.low <= value <= self.high)


def normal_quantile(alpha: float) -> float:
    """Two-sided standard-normal quantile ``z_{1 - alpha/2}`` (1.959964 for alpha = 0.05)."""
    return NormalDist().inv_cdf(1.0 - check_alpha(alpha) / 2.0)


def percentile_interval(point: float, values: FloatArray, alpha: float) -> Interval:
    """Percentile interval from bootstrap ``values`` (B,); NaN resamples are ignored."""
    alpha = check_alpha(alpha)
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return Interval(float(point), math.nan, math.nan, alpha, "percentile", int(v.size))
    low, high = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    return Interval(float(point), float(low), float(high), alpha, "percentile", int(v.size))


def normal_interval(point: float, se: float, alpha: float) -> Interval:
    """``point +- z_{1-alpha/2} * se``."""
    z = normal_quantile(alpha)
    return Interval(float(point), point - z * se, point + z * se, float(alpha), "normal", 0)


def _clusters(kernel: Kernel, episode_ids: object) -> Clusters:
    return session_clusters(episode_ids, kernel.n_rows)


def se_from_influence(u: FloatArray) -> float:
    """``sqrt(S / (S - 1) * sum_s u_s**2)`` for per-session influence values ``u`` (S,)."""
    s = u.shape[0]
    if s < 2:
        raise OPEError(f"an interval needs at least 2 sessions (independent units), got {s}")
    return math.sqrt(s / (s - 1) * float(np.dot(u, u)))


def standard_error(
    kernel: Kernel, episode_ids: object = None, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> float:
    """Cluster-robust (by session) delta-method standard error of ``kernel.value()``.

    Args:
        kernel: the statistic.
        episode_ids: (n,) session of each row; ``None`` treats rows as independent.
    """
    clusters = _clusters(kernel, episode_ids)
    return se_from_influence(influence(kernel, clusters, max_bytes))


def bootstrap_values(
    kernel: Kernel,
    episode_ids: object = None,
    *,
    n_bootstrap: int = 1000,
    random_state: RandomState = None,
    scheme: str = "auto",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> FloatArray:
    """The estimate on each of ``n_bootstrap`` session resamples, shape (n_bootstrap,)."""
    clusters = _clusters(kernel, episode_ids)
    return bootstrap_kernel_values(
        [kernel], clusters, n_bootstrap, random_state, scheme=scheme, max_bytes=max_bytes
    )[:, 0]


def estimate_intervals(
    kernels: Mapping[str, Kernel],
    episode_ids: object = None,
    *,
    alpha: float = 0.05,
    n_bootstrap: int = 1000,
    method: str = "percentile",
    random_state: RandomState = None,
    scheme: str = "auto",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> dict[str, Interval]:
    """Intervals for several statistics over the same rows, computed on the SAME resamples.

    Args:
        kernels: name -> kernel; all over the same n rows.
        episode_ids: (n,) session ids (``None``: rows are independent).
        alpha: 1 - confidence level.
        n_bootstrap: resamples (``percentile`` only).
        method: ``"percentile"`` or ``"normal"``.
        random_state: seed or Generator.
        scheme: ``"auto"``, ``"multinomial"`` or ``"poisson"`` (see :mod:`ope.bootstrap`).
        max_bytes: memory budget of one chunk of resample weights (results do not depend on it).
    """
    alpha = check_alpha(alpha)
    method = check_method(method)
    if not kernels:
        raise OPEError("no estimators given")
    items = list(kernels.items())
    clusters = _clusters(items[0][1], episode_ids)
    points = {name: k.value() for name, k in items}
    if method == "normal":
        return {
            name: normal_interval(
                points[name], se_from_influence(influence(k, clusters, max_bytes)), alpha
            )
            for name, k in items
        }
    values = bootstrap_kernel_values(
        [k for _, k in items],
        clusters,
        check_n_bootstrap(n_bootstrap),
        random_state,
        scheme=scheme,
        max_bytes=max_bytes,
    )
    return {
        name: percentile_interval(points[name], values[:, j], alpha)
        for j, (name, _) in enumerate(items)
    }


def estimate_interval(
    kernel: Kernel,
    episode_ids: object = None,
    *,
    alpha: float = 0.05,
    n_bootstrap: int = 1000,
    method: str = "percentile",
    random_state: RandomState = None,
    scheme: str = "auto",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Interval:
    """Interval of one statistic; see :func:`estimate_intervals` for the arguments."""
    return estimate_intervals(
        {kernel.name or "value": kernel},
        episode_ids,
        alpha=alpha,
        n_bootstrap=n_bootstrap,
        method=method,
        random_state=random_state,
        scheme=scheme,
        max_bytes=max_bytes,
    )[kernel.name or "value"]
