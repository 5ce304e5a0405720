"""Sequential (session-level) off-policy estimators over variable-length episodes.

Data: ``n`` logged decisions, row ``i`` in episode ``e`` (``episode_ids``) at step ``t``
(``steps``, 0-based and consecutive within an episode), with reward ``r``, the behaviour
probability of the logged action ``p = pi_b(a_t | s_t)`` (``pscore``), the target's
``pi_e(a_t | s_t)`` (``target_prob``) and, for the doubly robust estimators,
``q_hat(s_t, a_t)`` and ``v_hat(s_t) = sum_a pi_e(a | s_t) q_hat(s_t, a)`` (all shape (n,)).

Cumulative weights ``rho_{e,t} = prod_{k <= t} pi_e(a_k|s_k) / pi_b(a_k|s_k)``
(``rho_{e,-1} = 1``). Episode ``e`` has ``T_e`` steps; ``N`` episodes. The estimand is the
expected discounted return per session ``V = E_pi[sum_t gamma^t r_t]``.

* trajectory-wise IS: ``(1/N) sum_e rho_{e,T_e-1} sum_t gamma^t r_{e,t}``
* per-decision IS (Precup, Sutton & Singh 2000): ``(1/N) sum_e sum_t gamma^t rho_{e,t} r_{e,t}``
* weighted per-decision IS: ``sum_t gamma^t (sum_e rho_{e,t} r_{e,t}) / D_t``
* sequential DR (Jiang & Li 2016):
  ``(1/N) sum_e sum_t gamma^t [rho_{e,t} (r_{e,t} - q_hat_{e,t}) + rho_{e,t-1} v_hat_{e,t}]``
  — the unrolled recursion ``V_DR(t) = v_hat + rho_t (r_t + gamma V_DR(t+1) - q_hat)``.
* weighted DR (Thomas & Brunskill 2016):
  ``sum_t gamma^t [(sum_e rho_{e,t} (r_{e,t} - q_hat_{e,t})) / D_t
  + (sum_e rho_{e,t-1} v_hat_{e,t}) / D_{t-1}]`` with ``D_{-1} = N``.

Variable lengths (the weighted estimators). A session that ended before step ``t`` is treated
as sitting in an absorbing state with reward 0 and ``q_hat = v_hat = 0`` that keeps its final
weight, so the per-step normaliser is

    D_t = sum_{e: T_e > t} rho_{e,t} + sum_{e: T_e <= t} rho_{e,T_e-1}.

Every session counts at every step; those that reach step ``t`` contribute their reward. Since
``E_b[rho_{e,min(t,T_e-1)}] = 1`` (a stopped martingale: whether a session continues is
decided by what happened up to its last action), ``D_t / N -> 1`` and the estimators are
consistent even when the target policy changes how long sessions last. Normalising only over
the sessions that reach ``t`` would instead estimate ``E_pi[r_t | session reaches t]`` and drop
the probability of reaching ``t`` — biased whenever lengths differ, so we do not do that.

Every estimator yields a :class:`ope.kernel.Kernel` over the rows, so the session bootstrap,
normal intervals and paired comparisons of :mod:`ope.intervals` / :mod:`ope.compare` apply
unchanged (sessions are the resampling unit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ope.bootstrap import DEFAULT_MAX_BYTES
from ope.errors import OPEError
from ope.intervals import Interval, estimate_interval
from ope.kernel import Kernel
from ope.types import AnyArray, BoolArray, FloatArray, IntArray, RandomState
from ope.validation import (
    as_float_vector,
    as_id_vector,
    as_int_vector,
    check_hyperparameter,
    check_probability,
    check_pscore,
    check_same_length,
    show,
)

__all__ = [
    "EpisodeData",
    "validate_episode_inputs",
    "SequentialEstimator",
    "OnPolicyReturn",
    "TrajectoryWiseImportanceSampling",
    "PerDecisionImportanceSampling",
    "WeightedPerDecisionImportanceSampling",
    "SequentialDoublyRobust",
    "WeightedDoublyRobust",
]


@dataclass(frozen=True, eq=False)
class EpisodeData:
    """Validated episode arrays (rows in the caller's order) and derived weights.

    Attributes:
        reward, pscore, target_prob, steps: (n,) as given (``pscore``/``target_prob`` may be
            ``None`` for the on-policy return).
        episode_ids: (n,) as given.
        q_hat, v_hat: (n,) or ``None``.
        codes: (n,) episode index, episodes ordered by id.
        n_episodes: N.
        lengths: (N,) steps per episode.
        rho: (n,) cumulative weight up to and including the row's step.
        rho_prev: (n,) cumulative weight before the row's step (1 at step 0).
        is_first, is_last: (n,) step 0 / last step of its episode.
    """

    reward: FloatArray
    pscore: FloatArray | None
    target_prob: FloatArray | None
    episode_ids: AnyArray
    steps: IntArray
    q_hat: FloatArray | None
    v_hat: FloatArray | None
    codes: IntArray
    n_episodes: int
    lengths: IntArray
    rho: FloatArray
    rho_prev: FloatArray
    is_first: BoolArray
    is_last: BoolArray

    @property
    def n(self) -> int:
        return int(self.reward.shape[0])

    @property
    def max_length(self) -> int:
        return int(self.lengths.max())

    def final_weight(self) -> FloatArray:
        """``rho_{e, T_e - 1}`` per episode (N,)."""
        out = np.empty(self.n_episodes, dtype=np.float64)
        out[self.codes[self.is_last]] = self.rho[self.is_last]
        return out

    def need(self, name: str, estimator: str) -> FloatArray:
        value = getattr(self, name)
        if value is None:
            raise OPEError(f"{estimator} needs {name} of shape (n,); it was not given")
        return value


def _episode_codes(ids: AnyArray) -> tuple[IntArray, int, AnyArray]:
    codes, uniques = pd.factorize(ids, sort=True)
    return np.asarray(codes, dtype=np.int64), len(uniques), np.asarray(uniques)


def validate_episode_inputs(
    *,
    reward: object,
    episode_ids: object,
    steps: object,
    pscore: object = None,
    target_prob: object = None,
    q_hat: object = None,
    v_hat: object = None,
) -> EpisodeData:
    """Check the arrays and derive cumulative weights (see :class:`EpisodeData`).

    ``steps`` must run ``0, 1, ..., T_e - 1`` within every episode (in any row order).
    """
    r = as_float_vector("reward", reward)
    ids = as_id_vector("episode_ids", episode_ids)
    st = as_int_vector("steps", steps)
    p = as_float_vector("pscore", pscore) if pscore is not None else None
    pi = as_float_vector("target_prob", target_prob) if target_prob is not None else None
    q = as_float_vector("q_hat", q_hat) if q_hat is not None else None
    v = as_float_vector("v_hat", v_hat) if v_hat is not None else None
    check_same_length(
        ("reward", r),
        ("episode_ids", ids),
        ("steps", st),
        ("pscore", p),
        ("target_prob", pi),
        ("q_hat", q),
        ("v_hat", v),
    )
    if p is not None:
        check_pscore("pscore", p)
    if pi is not None:
        check_probability("target_prob", pi)
    if (p is None) != (pi is None):
        raise OPEError("pscore and target_prob must be given together (one is missing)")

    n = r.shape[0]
    codes, n_episodes, uniques = _episode_codes(ids)
    order = np.lexsort((st, codes))
    lengths = np.bincount(codes, minlength=n_episodes).astype(np.int64)
    starts = np.cumsum(lengths) - lengths
    sorted_codes = codes[order]
    position = np.arange(n, dtype=np.int64) - starts[sorted_codes]
    bad = st[order] != position
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        e = int(sorted_codes[k])
        got = np.sort(st[codes == e])
        shown = ", ".join(map(str, got[:10])) + (", ..." if got.size > 10 else "")
        raise OPEError(
            f"episode {show(uniques[e])} (row {int(order[k])}) has steps [{shown}]; steps must run "
            "0, 1, ..., T-1 within each episode (each step once)"
        )

    ratio_sorted = np.ones(n) if p is None else (pi / p)[order]
    cum = ratio_sorted.copy()
    # Segmented running product, one vectorised step per time index: the rows at step t of
    # the episodes longer than t (a prefix of the episodes sorted by decreasing length).
    desc = np.sort(lengths)[::-1]
    by_length = np.argsort(-lengths, kind="stable")
    longer = np.searchsorted(-desc, -np.arange(1, int(desc[0])), side="left")
    for t, count in enumerate(longer, start=1):
        idx = starts[by_length[: int(count)]] + t
        cum[idx] = cum[idx - 1] * ratio_sorted[idx]
    prev_sorted = np.ones(n)
    not_first = position > 0
    prev_sorted[not_first] = cum[np.flatnonzero(not_first) - 1]

    rho = np.empty(n)
    rho[order] = cum
    rho_prev = np.empty(n)
    rho_prev[order] = prev_sorted
    is_first = st == 0
    is_last = st == lengths[codes] - 1
    return EpisodeData(
        reward=r,
        pscore=p,
        target_prob=pi,
        episode_ids=ids,
        steps=st,
        q_hat=q,
        v_hat=v,
        codes=codes,
        n_episodes=n_episodes,
        lengths=lengths,
        rho=rho,
        rho_prev=rho_prev,
        is_first=is_first,
        is_last=is_last,
    )


class SequentialEstimator:
    """Base of the sequential estimators: validation, point estimate, kernel, interval.

    Subclasses are frozen dataclasses with ``gamma`` and ``estimator_name`` fields and
    implement :meth:`_kernel`.
    """

    gamma: float
    estimator_name: str
    uses: ClassVar[tuple[str, ...]] = ("pscore", "target_prob")

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_hyperparameter(owner, "gamma", self.gamma, minimum=0.0)
        if float(self.gamma) > 1.0:
            raise OPEError(f"{owner}: gamma == {show(self.gamma)}, must be in [0, 1]")
        if not isinstance(self.estimator_name, str) or not self.estimator_name:
            raise OPEError(
                f"{owner}: estimator_name must be a non-empty string, got {self.estimator_name!r}"
            )

    def _kernel(self, data: EpisodeData) -> Kernel:
        raise NotImplementedError(f"{type(self).__name__} does not define a kernel")

    def _discount(self, data: EpisodeData) -> FloatArray:
        return np.power(float(self.gamma), data.steps.astype(np.float64))

    def kernel_from_data(self, data: EpisodeData) -> Kernel:
        """The estimator's :class:`Kernel` from already validated :class:`EpisodeData`."""
        for name in self.uses:
            data.need(name, type(self).__name__)
        return self._kernel(data)

    def kernel(
        self,
        *,
        reward: object,
        episode_ids: object,
        steps: object,
        pscore: object = None,
        target_prob: object = None,
        q_hat: object = None,
        v_hat: object = None,
    ) -> Kernel:
        """The per-row kernel behind the point estimate and the intervals."""
        data = validate_episode_inputs(
            reward=reward,
            episode_ids=episode_ids,
            steps=steps,
            pscore=pscore,
            target_prob=target_prob,
            q_hat=q_hat,
            v_hat=v_hat,
        )
        return self.kernel_from_data(data)

    def estimate_policy_value(
        self,
        *,
        reward: object,
        episode_ids: object,
        steps: object,
        pscore: object = None,
        target_prob: object = None,
        q_hat: object = None,
        v_hat: object = None,
    ) -> float:
        """Estimated expected discounted return per session of the target policy."""
        return self.kernel(
            reward=reward,
            episode_ids=episode_ids,
            steps=steps,
            pscore=pscore,
            target_prob=target_prob,
            q_hat=q_hat,
            v_hat=v_hat,
        ).value()

    def estimate_interval(
        self,
        *,
        reward: object,
        episode_ids: object,
        steps: object,
        pscore: object = None,
        target_prob: object = None,
        q_hat: object = None,
        v_hat: object = None,
        alpha: float = 0.05,
        n_bootstrap_samples: int = 1000,
        random_state: RandomState = None,
        method: str = "percentile",
        scheme: str = "auto",
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> Interval:
        """Point estimate and ``1 - alpha`` interval; episodes are the resampling unit."""
        kernel = self.kernel(
            reward=reward,
            episode_ids=episode_ids,
            steps=steps,
            pscore=pscore,
            target_prob=target_prob,
            q_hat=q_hat,
            v_hat=v_hat,
        )
        return estimate_interval(
            kernel,
            episode_ids,
            alpha=alpha,
            n_bootstrap=n_bootstrap_samples,
            method=method,
            random_state=random_state,
            scheme=scheme,
            max_bytes=max_bytes,
        )


def _per_episode_mean(values: FloatArray, data: EpisodeData, name: str) -> Kernel:
    """``(1/N) sum_rows values``: columns [values, 1 on each episode's first row]."""
    comp = np.column_stack([values, data.is_first.astype(np.float64)])
    return Kernel(comp, np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), np.ones(1), name)


def _step_columns(data: EpisodeData, per_step: list[FloatArray]) -> tuple[sp.csr_array, int, int]:
    """Sparse (n, C) components: one block of T step columns per array in ``per_step``, then
    an ``act`` block (rho at the row's step), then the ``fin`` block (T - 1 columns: the final
    weight of an episode of length k in column k - 1, for k < T) and a count column (1 on first
    rows). Returns the components, T and the index of the first ``fin`` column."""
    n, t_max = data.n, data.max_length
    rows, cols, vals = [], [], []
    arange = np.arange(n)
    blocks = [*per_step, data.rho]
    for b, values in enumerate(blocks):
        rows.append(arange)
        cols.append(b * t_max + data.steps)
        vals.append(values)
    fin_start = len(blocks) * t_max
    ended_early = data.is_last & (data.steps < t_max - 1)
    rows.append(np.flatnonzero(ended_early))
    cols.append(fin_start + data.steps[ended_early])  # length k = step + 1 -> column k - 1
    vals.append(data.rho[ended_early])
    count_col = fin_start + t_max - 1
    rows.append(np.flatnonzero(data.is_first))
    cols.append(np.full(int(data.is_first.sum()), count_col))
    vals.append(np.ones(int(data.is_first.sum())))
    comp = sp.csr_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n, count_col + 1),
    )
    return comp, t_max, fin_start


def _normaliser_rows(t_max: int, act_start: int, fin_start: int) -> tuple[IntArray, IntArray]:
    """(step, column) entries of ``D_t = act_t + cumfin_t`` for t = 0..T-1 (cumfin_0 = 0)."""
    steps = np.arange(t_max)
    later = steps[1:]
    rows = np.concatenate([steps, later])
    cols = np.concatenate([act_start + steps, fin_start + later - 1])
    return rows, cols


@dataclass(frozen=True)
class OnPolicyReturn(SequentialEstimator):
    """Average discounted return of the logged sessions: ``(1/N) sum_e sum_t gamma^t r_{e,t}``.

    The behaviour policy's own value; the baseline for :func:`ope.compare.compare`.
    """

    gamma: float = 1.0
    estimator_name: str = "logged"
    uses: ClassVar[tuple[str, ...]] = ()

    def _kernel(self, data: EpisodeData) -> Kernel:
        return _per_episode_mean(self._discount(data) * data.reward, data, self.estimator_name)


@dataclass(frozen=True)
class TrajectoryWiseImportanceSampling(SequentialEstimator):
    """Trajectory-wise IS: ``(1/N) sum_e rho_{e,T_e-1} sum_t gamma^t r_{e,t}``.

    Unbiased; variance grows exponentially with session length.
    Reference: Precup, Sutton & Singh (2000), "Eligibility traces for off-policy policy
    evaluation".
    """

    gamma: float = 1.0
    estimator_name: str = "trajectory_is"

    def _kernel(self, data: EpisodeData) -> Kernel:
        final = data.final_weight()[data.codes]
        return _per_episode_mean(
            self._discount(data) * data.reward * final, data, self.estimator_name
        )


@dataclass(frozen=True)
class PerDecisionImportanceSampling(SequentialEstimator):
    """Per-decision IS: ``(1/N) sum_e sum_t gamma^t rho_{e,t} r_{e,t}``.

    A reward is weighted only by the decisions before it. Unbiased.
    Reference: Precup, Sutton & Singh (2000).
    """

    gamma: float = 1.0
    estimator_name: str = "pdis"

    def _kernel(self, data: EpisodeData) -> Kernel:
        return _per_episode_mean(
            self._discount(data) * data.rho * data.reward, data, self.estimator_name
        )


@dataclass(frozen=True)
class WeightedPerDecisionImportanceSampling(SequentialEstimator):
    """Weighted (self-normalised) per-decision IS: ``sum_t gamma^t sum_e rho_{e,t} r_{e,t} / D_t``.

    ``D_t`` sums every session's weight at step ``t``, ended sessions keeping their final
    weight (see the module docstring). Biased, consistent, bounded by the reward range at
    each step. Reference: Precup, Sutton & Singh (2000); Mahmood, van Hasselt & Sutton (2014).
    """

    gamma: float = 1.0
    estimator_name: str = "wpdis"

    def _kernel(self, data: EpisodeData) -> Kernel:
        comp, t_max, fin_start = _step_columns(data, [data.rho * data.reward])
        n_cols = comp.shape[1]
        steps = np.arange(t_max)
        numerators = sp.csr_array((np.ones(t_max), (steps, steps)), shape=(t_max, n_cols))
        d_rows, d_cols = _normaliser_rows(t_max, t_max, fin_start)
        denominators = sp.csr_array((np.ones(d_rows.size), (d_rows, d_cols)), shape=(t_max, n_cols))
        coef = np.power(float(self.gamma), steps.astype(np.float64))
        return Kernel(
            comp,
            numerators,
            denominators,
            coef,
            self.estimator_name,
            cumulative=(fin_start, fin_start + t_max - 1),
        )


@dataclass(frozen=True)
class SequentialDoublyRobust(SequentialEstimator):
    """Sequential doubly robust (Jiang & Li 2016).

    ``(1/N) sum_e sum_t gamma^t [rho_{e,t} (r_{e,t} - q_hat_{e,t}) + rho_{e,t-1} v_hat_{e,t}]``.
    Unbiased given true propensities; the model terms cut variance when ``q_hat`` is good.
    Reference: Jiang & Li (2016), "Doubly robust off-policy value evaluation for RL".
    """

    gamma: float = 1.0
    estimator_name: str = "sequential_dr"
    uses: ClassVar[tuple[str, ...]] = ("pscore", "target_prob", "q_hat", "v_hat")

    def _kernel(self, data: EpisodeData) -> Kernel:
        q = data.need("q_hat", type(self).__name__)
        v = data.need("v_hat", type(self).__name__)
        per_row = data.rho * (data.reward - q) + data.rho_prev * v
        return _per_episode_mean(self._discount(data) * per_row, data, self.estimator_name)


@dataclass(frozen=True)
class WeightedDoublyRobust(SequentialEstimator):
    """Weighted doubly robust (Thomas & Brunskill 2016).

    ``sum_t gamma^t [sum_e rho_{e,t} (r_{e,t} - q_hat_{e,t}) / D_t
    + sum_e rho_{e,t-1} v_hat_{e,t} / D_{t-1}]``, ``D_{-1} = N``; ``D_t`` as in
    :class:`WeightedPerDecisionImportanceSampling`. With ``q_hat = v_hat = 0`` it is WPDIS.
    Reference: Thomas & Brunskill (2016), "Data-efficient off-policy policy evaluation for
    reinforcement learning".
    """

    gamma: float = 1.0
    estimator_name: str = "wdr"
    uses: ClassVar[tuple[str, ...]] = ("pscore", "target_prob", "q_hat", "v_hat")

    def _kernel(self, data: EpisodeData) -> Kernel:
        q = data.need("q_hat", type(self).__name__)
        v = data.need("v_hat", type(self).__name__)
        comp, t_max, fin_start = _step_columns(
            data, [data.rho * (data.reward - q), data.rho_prev * v]
        )
        n_cols = comp.shape[1]
        count_col = n_cols - 1
        steps = np.arange(t_max)
        # terms 0..T-1: residual part at step t over D_t; T..2T-1: model part over D_{t-1}
        num_rows = np.concatenate([steps, t_max + steps])
        num_cols = np.concatenate([steps, t_max + steps])
        numerators = sp.csr_array(
            (np.ones(2 * t_max), (num_rows, num_cols)), shape=(2 * t_max, n_cols)
        )
        act_start = 2 * t_max
        d_rows, d_cols = _normaliser_rows(t_max, act_start, fin_start)
        # model part at step t >= 1 uses D_{t-1}: shift the D rows by T + 1; at t = 0 it uses N
        prev_keep = d_rows < t_max - 1
        rows = np.concatenate([d_rows, t_max + 1 + d_rows[prev_keep], [t_max]])
        cols = np.concatenate([d_cols, d_cols[prev_keep], [count_col]])
        denominators = sp.csr_array((np.ones(rows.size), (rows, cols)), shape=(2 * t_max, n_cols))
        disc = np.power(float(self.gamma), steps.astype(np.float64))
        return Kernel(
            comp,
            numerators,
            denominators,
            np.concatenate([disc, disc]),
            self.estimator_name,
            cumulative=(fin_start, fin_start + t_max - 1),
        )
