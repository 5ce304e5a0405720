"""The per-sample kernel: one object serves point estimates, bootstrap and normal intervals.

Every estimator in this package is a *sum of ratios of sample totals*. Each logged row ``i``
contributes a vector of components ``x_i`` (C columns); with totals ``T = sum_i x_i`` the
estimate is

    V(T) = sum_j coef_j * (N_j . T) / (D_j . T)

where ``N`` and ``D`` are (J, C) matrices selecting numerator and denominator columns. A term
whose denominator total is 0 contributes 0 (its numerator is then 0 too for every estimator
here: both are sums over the same zero weights).

Optionally a contiguous range of columns is replaced by its running sum (``cumulative``)
before ``N`` and ``D`` apply: the weighted sequential estimators need, at every step, the
weights of all sessions that already ended, and a running sum keeps that linear in the number
of steps.

Examples (columns in brackets):

* a plain mean (IPW, DM, DR …): ``[v_i, 1]``, ``V = sum v_i / n``;
* self-normalised IPW: ``[w_i r_i, w_i]``, ``V = sum w_i r_i / sum w_i``;
* weighted per-decision IS: one numerator and one denominator column per step.

Why this form: a bootstrap resample is a vector of per-session multiplicities ``m_s``, and the
resampled totals are ``T* = sum_s m_s X_s`` (``X_s`` the per-session sums), so all resamples are
one matrix product ``M @ X`` and self-normalised estimators are resampled *as ratios*
(numerator and denominator together). ``V`` is homogeneous of degree 0 in ``T``, which also
gives the cluster-robust delta-method standard error in closed form (see
:func:`ope.intervals.standard_error`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ope.errors import OPEError
from ope.types import FloatArray

__all__ = ["Kernel", "Components", "hstack_components"]

#: Row components: a dense ``(n, C)`` float array or a scipy sparse ``(n, C)`` array.
Components = FloatArray | sp.csr_array


def _as_sparse(matrix: object, name: str) -> sp.csr_array:
    if sp.issparse(matrix):
        out = sp.csr_array(matrix, dtype=np.float64)
    else:
        arr = np.asarray(matrix, dtype=np.float64)
        if arr.ndim != 2:
            raise OPEError(f"Kernel.{name} must be a 2-d (J, C) matrix, got shape {arr.shape}")
        out = sp.csr_array(arr)
    return out


@dataclass(frozen=True, eq=False)
class Kernel:
    """Row components and the ratio structure that turns their totals into an estimate.

    Attributes:
        components: ``(n, C)`` per-row contributions (dense float64 or scipy sparse).
        numerators: ``(J, C)`` numerator selector ``N``.
        denominators: ``(J, C)`` denominator selector ``D``.
        coef: ``(J,)`` term coefficients.
        name: the estimator that built it (keys results).
        cumulative: ``(start, stop)``: totals of these columns are replaced by their running
            sums (left to right) before ``N`` and ``D`` apply; ``None``: no such columns.
    """

    components: Components
    numerators: sp.csr_array
    denominators: sp.csr_array
    coef: FloatArray
    name: str = field(default="")
    cumulative: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        comp = self.components
        if sp.issparse(comp):
            comp = sp.csr_array(comp, dtype=np.float64)
        else:
            comp = np.asarray(comp, dtype=np.float64)
            if comp.ndim != 2:
                raise OPEError(
                    f"Kernel.components must be a 2-d (n, C) array, got shape {comp.shape}"
                )
        num = _as_sparse(self.numerators, "numerators")
        den = _as_sparse(self.denominators, "denominators")
        coef = np.asarray(self.coef, dtype=np.float64).ravel()
        n_cols = comp.shape[1]
        if num.shape != den.shape or num.shape[1] != n_cols or coef.shape[0] != num.shape[0]:
            raise OPEError(
                f"Kernel shapes disagree: components (n, {n_cols}), numerators {num.shape}, "
                f"denominators {den.shape}, coef {coef.shape}; expected (n, C), (J, C), (J, C), "
                "(J,)"
            )
        if comp.shape[0] == 0:
            raise OPEError("Kernel.components has no rows")
        if self.cumulative is not None:
            start, stop = self.cumulative
            if not 0 <= start <= stop <= n_cols:
                raise OPEError(
                    f"Kernel.cumulative = {self.cumulative} is not a column range of 0..{n_cols}"
                )
        object.__setattr__(self, "components", comp)
        object.__setattr__(self, "numerators", num)
        object.__setattr__(self, "denominators", den)
        object.__setattr__(self, "coef", coef)

    # ---------------------------------------------------------------------------- builders

    @classmethod
    def mean(cls, values: FloatArray, name: str = "") -> Kernel:
        """``V = sum_i v_i / n`` for a per-row vector ``v`` of shape (n,)."""
        v = np.asarray(values, dtype=np.float64).ravel()
        comp = np.column_stack([v, np.ones_like(v)])
        return cls(comp, np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), np.ones(1), name)

    @classmethod
    def ratio(cls, numerator: FloatArray, denominator: FloatArray, name: str = "") -> Kernel:
        """``V = sum_i a_i / sum_i b_i`` for per-row vectors ``a, b`` of shape (n,)."""
        a = np.asarray(numerator, dtype=np.float64).ravel()
        b = np.asarray(denominator, dtype=np.float64).ravel()
        comp = np.column_stack([a, b])
        return cls(comp, np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), np.ones(1), name)

    # ---------------------------------------------------------------------------- evaluation

    @property
    def n_rows(self) -> int:
        return int(self.components.shape[0])

    @property
    def n_columns(self) -> int:
        return int(self.components.shape[1])

    def totals(self) -> FloatArray:
        """Column totals ``T`` over all rows, shape (C,)."""
        if sp.issparse(self.components):
            return np.asarray(self.components.sum(axis=0), dtype=np.float64).ravel()
        return self.components.sum(axis=0)

    def _parts(self, totals: FloatArray) -> tuple[FloatArray, FloatArray]:
        t = np.atleast_2d(np.asarray(totals, dtype=np.float64))
        if t.shape[1] != self.n_columns:
            raise OPEError(
                f"totals must have {self.n_columns} columns for kernel {self.name!r}, "
                f"got shape {np.shape(totals)}"
            )
        if self.cumulative is not None:
            start, stop = self.cumulative
            t = t.copy()
            t[:, start:stop] = np.cumsum(t[:, start:stop], axis=1)
        num = np.asarray(self.numerators @ t.T).T
        den = np.asarray(self.denominators @ t.T).T
        return num, den

    def evaluate(self, totals: FloatArray) -> FloatArray:
        """``V(T)`` for totals of shape (C,) or a batch (B, C); returns shape (B,)."""
        num, den = self._parts(totals)
        ratio = np.divide(num, den, out=np.zeros_like(num), where=den != 0.0)
        return ratio @ self.coef

    def value(self) -> float:
        """The point estimate ``V(T)`` on all rows."""
        return float(self.evaluate(self.totals())[0])

    def gradient(self, totals: FloatArray | None = None) -> FloatArray:
        """``dV/dT`` at ``totals`` (default: all rows), shape (C,).

        ``dV/dT = sum_j coef_j (N_j / d_j - n_j D_j / d_j^2)`` with ``n_j = N_j.T``,
        ``d_j = D_j.T``; terms with ``d_j = 0`` contribute 0. Through the ``cumulative``
        columns the gradient is summed right to left (the adjoint of a running sum).
        """
        t = self.totals() if totals is None else np.asarray(totals, dtype=np.float64).ravel()
        num, den = self._parts(t)
        num, den = num[0], den[0]
        safe = den != 0.0
        a = np.divide(self.coef, den, out=np.zeros_like(den), where=safe)
        b = np.divide(self.coef * num, den * den, out=np.zeros_like(den), where=safe)
        grad = np.asarray(self.numerators.T @ a - self.denominators.T @ b, dtype=np.float64)
        if self.cumulative is not None:
            start, stop = self.cumulative
            grad[start:stop] = np.cumsum(grad[start:stop][::-1])[::-1]
        return grad


def hstack_components(kernels: Sequence[Kernel]) -> tuple[Components, list[slice]]:
    """Side-by-side components of several kernels over the same rows, and each one's columns."""
    if not kernels:
        raise OPEError("no kernels given")
    n = kernels[0].n_rows
    for k in kernels[1:]:
        if k.n_rows != n:
            raise OPEError(
                f"kernels {kernels[0].name!r} and {k.name!r} cover different rows "
                f"({n} and {k.n_rows}); compare estimators on the same logged data"
            )
    slices, start = [], 0
    for k in kernels:
        slices.append(slice(start, start + k.n_columns))
        start += k.n_columns
    if any(sp.issparse(k.components) for k in kernels):
        stacked: Components = sp.csr_array(sp.hstack([sp.csr_array(k.components) for k in kernels]))
    else:
        stacked = np.hstack([k.components for k in kernels])
    return stacked, slices
