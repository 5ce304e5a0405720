"""Vectorised session (cluster) bootstrap of :class:`ope.kernel.Kernel` statistics.

Sessions are the independent unit: decisions of one session share a user and a history, so
resampling rows would understate the variance. A resample is a vector of per-session
multiplicities ``m`` (shape (S,)); for per-session component sums ``X`` (shape (S, C)) the
resampled totals of all ``B`` resamples are one matrix product ``M @ X`` (M of shape (B, S)).
``M`` is generated and consumed in chunks of rows so memory stays below ``max_bytes`` whatever
``B`` and ``S`` are; there is no Python loop over resamples, only over chunks.

Schemes:

* ``multinomial`` — the classic (Efron) bootstrap: each resample draws S sessions with
  replacement, ``m ~ Multinomial(S, 1/S)``. Cost ~ 25 ns per session per resample.
* ``poisson`` — ``m_s ~ Poisson(1)`` independently (Hanley & MacGibbon 2006; Chamandy et al.
  2012), the standard approximation for large S. Each weight comes from 16 random bits through
  a lookup table whose probabilities are Poisson(1)'s rounded to multiples of 2**-16 (weight
  mean and variance within 1e-4 of 1; see :func:`poisson_table`). About 10x cheaper.
  Needs at least 100 sessions (so that an empty resample has probability < e**-100).
* ``auto`` — multinomial up to :data:`AUTO_MULTINOMIAL_MAX_SESSIONS` sessions, else Poisson.

All draws are made in a fixed order (resample by resample), so results do not depend on
``max_bytes`` (the chunking), only on the seed, the scheme and the number of sessions.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ope.errors import OPEError
from ope.kernel import Components, Kernel, hstack_components
from ope.types import AnyArray, FloatArray, IntArray, RandomState
from ope.validation import as_id_vector, check_n_bootstrap, check_scheme, make_rng

__all__ = [
    "DEFAULT_MAX_BYTES",
    "AUTO_MULTINOMIAL_MAX_SESSIONS",
    "POISSON_MIN_SESSIONS",
    "Clusters",
    "session_clusters",
    "resolve_scheme",
    "poisson_table",
    "resample_weights",
    "bootstrap_kernel_values",
    "influence",
]

#: Memory budget for one chunk of resample weights and their intermediates.
DEFAULT_MAX_BYTES = 64 * 2**20
#: ``scheme="auto"`` uses the exact multinomial bootstrap up to this many sessions.
AUTO_MULTINOMIAL_MAX_SESSIONS = 5000
#: The Poisson bootstrap refuses fewer sessions than this.
POISSON_MIN_SESSIONS = 100

_BYTES_PER_DRAW = {"multinomial": 8 + 8 + 8, "poisson": 2 + 1 + 8}


@dataclass(frozen=True, eq=False)
class Clusters:
    """Which session (cluster) each row belongs to.

    Attributes:
        codes: ``(n,)`` cluster index of each row, ``0..n_clusters-1``, clusters ordered by id
            (so results do not depend on the order of the rows).
        n_clusters: number of sessions S.
        ids: ``(S,)`` the session ids, or ``None`` when every row is its own cluster.
    """

    codes: IntArray
    n_clusters: int
    ids: AnyArray | None

    @property
    def n_rows(self) -> int:
        return int(self.codes.shape[0])

    def totals(self, components: Components, max_bytes: int = DEFAULT_MAX_BYTES) -> Components:
        """Per-cluster component sums ``X`` (S, C): dense when it fits ``max_bytes``."""
        if components.shape[0] != self.n_rows:
            raise OPEError(
                f"expected components.shape[0] == episode_ids.shape[0], got "
                f"{components.shape[0]} and {self.n_rows}"
            )
        if self.ids is None:
            out = components
        else:
            indicator = sp.csr_array(
                (np.ones(self.n_rows), (self.codes, np.arange(self.n_rows))),
                shape=(self.n_clusters, self.n_rows),
            )
            out = indicator @ components
        if sp.issparse(out) and self.n_clusters * out.shape[1] * 8 <= max_bytes:
            return np.asarray(out.toarray(), dtype=np.float64)
        if sp.issparse(out):
            return sp.csr_array(out)
        return np.asarray(out, dtype=np.float64)


def session_clusters(episode_ids: object, n_rows: int) -> Clusters:
    """Clusters from per-row session ids (shape (n,)); ``None``: each row is its own session."""
    if episode_ids is None:
        return Clusters(np.arange(n_rows, dtype=np.int64), n_rows, None)
    ids = as_id_vector("episode_ids", episode_ids)
    if ids.shape[0] != n_rows:
        raise OPEError(
            f"expected episode_ids.shape[0] == reward.shape[0], got {ids.shape[0]} and {n_rows}"
        )
    codes, uniques = pd.factorize(ids, sort=True)
    return Clusters(np.asarray(codes, dtype=np.int64), len(uniques), np.asarray(uniques))


def resolve_scheme(scheme: str, n_clusters: int) -> str:
    """``auto`` -> ``multinomial`` or ``poisson``; checks the Poisson minimum."""
    check_scheme(scheme)
    if scheme == "auto":
        return "multinomial" if n_clusters <= AUTO_MULTINOMIAL_MAX_SESSIONS else "poisson"
    if scheme == "poisson" and n_clusters < POISSON_MIN_SESSIONS:
        raise OPEError(
            f"scheme='poisson' needs at least {POISSON_MIN_SESSIONS} sessions, got {n_clusters}; "
            "use scheme='multinomial' (or 'auto')"
        )
    return scheme


@functools.cache
def poisson_table() -> np.ndarray:
    """Lookup table (65536,) uint8: 16 random bits -> a Poisson(1) count.

    Value ``k`` fills ``round(65536 * P(K <= k)) - round(65536 * P(K <= k - 1))`` entries.
    """
    cdf = np.cumsum([math.exp(-1.0) / math.factorial(k) for k in range(20)])
    thresholds = np.round(cdf * 65536.0)
    table = np.searchsorted(thresholds, np.arange(65536), side="right").astype(np.uint8)
    table.setflags(write=False)
    return table


def _chunk_rows(n_clusters: int, n_bootstrap: int, scheme: str, max_bytes: int) -> int:
    return int(max(1, min(n_bootstrap, max_bytes // (n_clusters * _BYTES_PER_DRAW[scheme]))))


def resample_weights(
    n_clusters: int,
    n_bootstrap: int,
    random_state: RandomState = None,
    *,
    scheme: str = "auto",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Iterator[FloatArray]:
    """Yield the (B, S) resample multiplicity matrix in chunks of rows, each (b, S) float64.

    Multinomial: draw ``S`` session indices per resample and count them (one ``bincount`` over
    the chunk). Poisson: one 16-bit lookup per (resample, session).
    """
    n_bootstrap = check_n_bootstrap(n_bootstrap)
    scheme = resolve_scheme(scheme, n_clusters)
    rng = make_rng(random_state)
    rows = _chunk_rows(n_clusters, n_bootstrap, scheme, max_bytes)
    words = -(-n_clusters // 4)  # 64-bit words per Poisson resample: 4 draws of 16 bits each
    table = poisson_table()
    done = 0
    while done < n_bootstrap:
        b = min(rows, n_bootstrap - done)
        if scheme == "multinomial":
            idx = rng.integers(0, n_clusters, size=(b, n_clusters), dtype=np.int64)
            idx += (np.arange(b, dtype=np.int64) * n_clusters)[:, None]
            counts = np.bincount(idx.ravel(), minlength=b * n_clusters)
            del idx
            weights = counts.reshape(b, n_clusters).astype(np.float64)
        else:
            raw = rng.bit_generator.random_raw(b * words).reshape(b, words)
            bits = raw.view(np.uint16)[:, :n_clusters]
            weights = table[bits].astype(np.float64)
        done += b
        yield weights


def bootstrap_kernel_values(
    kernels: Sequence[Kernel],
    clusters: Clusters,
    n_bootstrap: int,
    random_state: RandomState = None,
    *,
    scheme: str = "auto",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> FloatArray:
    """Values of every kernel on the same B resamples, shape (B, K).

    ``kernels`` must cover the same rows as ``clusters``. The per-session sums of all kernels
    are stacked so each chunk of resample weights is used once for all of them.
    """
    if clusters.n_clusters < 2:
        raise OPEError(
            f"an interval needs at least 2 sessions (independent units), got {clusters.n_clusters}"
        )
    stacked, slices = hstack_components(list(kernels))
    per_cluster = clusters.totals(stacked, max_bytes)
    transposed = sp.csr_array(per_cluster.T) if sp.issparse(per_cluster) else None
    out = np.empty((check_n_bootstrap(n_bootstrap), len(kernels)), dtype=np.float64)
    start = 0
    for weights in resample_weights(
        clusters.n_clusters, n_bootstrap, random_state, scheme=scheme, max_bytes=max_bytes
    ):
        if transposed is not None:
            totals = np.asarray(transposed @ weights.T).T
        else:
            totals = weights @ per_cluster
        stop = start + weights.shape[0]
        for j, (kernel, cols) in enumerate(zip(kernels, slices, strict=True)):
            out[start:stop, j] = kernel.evaluate(totals[:, cols])
        start = stop
    return out


def influence(kernel: Kernel, clusters: Clusters, max_bytes: int = DEFAULT_MAX_BYTES) -> FloatArray:
    """Per-session linearisation ``u_s = dV/dT . X_s`` (S,), at the full-data totals.

    ``V`` is homogeneous of degree 0 in ``T``, so ``sum_s u_s = 0`` and
    ``Var(V) ~= S / (S - 1) * sum_s u_s**2`` (cluster-robust delta method).
    """
    per_cluster = clusters.totals(kernel.components, max_bytes)
    grad = kernel.gradient()
    return np.asarray(per_cluster @ grad, dtype=np.float64).ravel()
