"""Fitted Q Evaluation (FQE) of a possibly stochastic target policy, on torch.

FQE estimates :math:`Q^\\pi` of a target policy :math:`\\pi` from logged transitions
:math:`(s_i, a_i, r_i, s'_i, d_i)` by iterated regression onto the policy-evaluation Bellman
target (Le, Voloshin & Yue, *Batch Policy Learning under Constraints*, ICML 2019):

.. math::

    y_i = c\\,r_i + \\gamma\\,(1 - d_i) \\sum_{a'} \\pi(a' \\mid s'_i)\\,
          \\bar Q(s'_i, a'), \\qquad
    \\min_\\theta \\frac{1}{B}\\sum_{i \\in \\text{batch}}
          \\operatorname{huber}_\\delta\\big(Q_\\theta(s_i, a_i) - y_i\\big)

where :math:`\\bar Q` is a target network (a periodically refreshed copy of :math:`Q_\\theta`,
hard copy or Polyak average), :math:`d_i` the terminal flag and :math:`c` a reward scale so that
Q values are O(1) while training (outputs are converted back to reward units). The bootstrap
term is the *expectation* of :math:`\\bar Q(s', \\cdot)` under :math:`\\pi(\\cdot \\mid s')`, not
its maximum: FQE evaluates the given policy, it does not improve it.

Timeouts are not terminal: the target bootstraps through them. For a non-terminal row whose
next state is not in the data (``next_valid=False``; offrec stores zeros for the next state of
timeout rows) the network learns a second head, the continuation value
:math:`W(s, a) \\approx E[\\sum_{a'} \\pi(a' \\mid s')\\bar Q(s', a') \\mid s, a,
\\text{not terminal}]`, on the rows whose next state is known, and bootstraps from
:math:`\\bar W(s, a)`. (Dropping such rows instead is biased: at a length cap the rows that
happened to terminate stay and those that went on are dropped.)

The policy value is the mean over the episodes' initial states (rows with ``step == 0``)

.. math::  \\hat V(\\pi) = \\frac{1}{N}\\sum_{e=1}^{N} \\sum_a \\pi(a \\mid s_{e,0})\\,
           \\hat Q(s_{e,0}, a).

Stabilisers against the usual FQE divergence: a Polyak-averaged target network (also the
network evaluated), the Huber loss with a threshold wide enough to stay quadratic for sensible
residuals (a narrow one makes the fixed point median-like, not the expected return), gradient-
norm clipping, reward scaling, and a held-out split of whole *episodes* (never rows) whose
Bellman residual is recorded every epoch. Training stops once the value has settled; the held-out
episodes are then folded back in and training continues until it settles again. The held-out
residual is not minimised at the answer (it contains the variance of :math:`r + \\gamma V(s')`,
which grows as values are learnt), so it serves as the stability signal: the result flags
divergence (that loss rising well above its recent minimum, non-finite values, or a value outside
the attainable range ``[min(r_min, 0), max(r_max, 0)] / (1 - gamma)``) so a report can warn
instead of printing a nonsensical number.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch
from scipy.stats import t as student_t
from torch import nn

from ope.errors import OPEError
from ope.types import FloatArray, IntArray

__all__ = [
    "FQEConfig",
    "FQEResult",
    "FQEInterval",
    "FittedQ",
    "fit_fqe",
    "fqe_interval",
    "initial_state_rows",
    "support_clip_probs",
    "widen_rows",
]


@dataclass(frozen=True)
class FQEConfig:
    """Hyper-parameters of :func:`fit_fqe` (the discount ``gamma`` is an argument of the fit).

    Training runs in epochs of ``steps_per_epoch`` gradient steps. After each epoch the value
    :math:`\\hat V(\\pi)` and the validation loss are recorded; training stops early (converged)
    once the value has moved less than ``tolerance`` (in units of the RMS logged discounted
    return, i.e. ``1 / reward_scale``) over the last ``patience`` epochs.
    """

    hidden_units: tuple[int, ...] = field(
        default=(64, 64), metadata={"help": "widths of the Q network's hidden layers", "min": 1}
    )
    learning_rate: float = field(
        default=1e-3, metadata={"help": "Adam learning rate", "gt": 0, "lt": 1}
    )
    batch_size: int = field(
        default=512, metadata={"help": "transitions per gradient step", "min": 1}
    )
    steps_per_epoch: int = field(
        default=500,
        metadata={"help": "gradient steps between two convergence checks", "min": 1},
    )
    max_epochs: int = field(
        default=40,
        metadata={"help": "upper bound on epochs (convergence may end sooner)", "min": 1},
    )
    target_update_interval: int = field(
        default=1, metadata={"help": "gradient steps between target-network updates", "min": 1}
    )
    tau: float = field(
        default=0.005,
        metadata={
            "help": "target update weight: 1 = hard copy, < 1 = Polyak average",
            "gt": 0,
            "max": 1,
        },
    )
    huber_delta: float | None = field(
        default=None,
        metadata={
            "help": "Huber loss threshold in scaled reward units; unset = twice the "
            "range of the episodes' scaled discounted returns",
            "gt": 0,
        },
    )
    weight_decay: float = field(
        default=0.0,
        metadata={
            "help": "decoupled weight decay of the Q network (AdamW); regularises fits on "
            "small data",
            "min": 0,
        },
    )
    grad_clip: float = field(
        default=10.0, metadata={"help": "maximum gradient L2 norm per step", "gt": 0}
    )
    reward_scale: float | None = field(
        default=None,
        metadata={
            "help": "multiply rewards by this while training; unset = 1 / RMS of the "
            "episodes' discounted returns",
            "gt": 0,
        },
    )
    validation_fraction: float = field(
        default=0.2,
        metadata={
            "help": "share of episodes held out for the validation loss; 0 = none",
            "min": 0,
            "lt": 1,
        },
    )
    refit_on_all: bool = field(
        default=True,
        metadata={
            "help": "once the held-out run has settled, keep training on all episodes "
            "(validation ones too) until the value settles again"
        },
    )
    patience: int = field(
        default=5,
        metadata={"help": "epochs the value must stay within tolerance to stop", "min": 1},
    )
    tolerance: float = field(
        default=0.01,
        metadata={
            "help": "convergence: value range over the last patience epochs, in units of "
            "the RMS logged return",
            "gt": 0,
        },
    )
    divergence_ratio: float = field(
        default=1.5,
        metadata={
            "help": "flag divergence when the loss rose at each of the last max(patience, 3) "
            "+ 1 epochs to this multiple of the window's start (or the cube of it times its "
            "minimum) while the value moved by more than 10 tolerances",
            "gt": 1,
        },
    )
    importance_weighting: str = field(
        default="per_decision",
        metadata={
            "help": "when behaviour propensities are given, weight the regression rows by "
            "pi(a|s) / mu(a|s) (per_decision), by the product of those ratios up to the row "
            "(cumulative), or not at all (none); see docs/ope_models.md",
            "choices": ("none", "per_decision", "cumulative"),
        },
    )
    max_weight: float = field(
        default=100.0,
        metadata={"help": "importance weights of the regression are capped at this", "gt": 0},
    )
    support_clip: float = field(
        default=0.0,
        metadata={
            "help": "bootstrap only from the part of pi(a'|s') within this multiple of an "
            "estimated behaviour mu(a'|s'); the excess mass follows mu (0 = off); see "
            "docs/ope_models.md",
            "min": 0,
        },
    )
    interval_refits: int = field(
        default=0,
        metadata={
            "help": "offrec evaluate: widen FQE's interval by the spread of this many refits on "
            "resampled sessions (ope.fqe.fqe_interval; 0 = fixed-Q session bootstrap only, else "
            ">= 2; each refit costs one more fit)",
            "min": 0,
        },
    )
    seed: int = field(
        default=0, metadata={"help": "seed of initialisation, split, sampling", "min": 0}
    )
    threads: int = field(default=1, metadata={"help": "torch CPU threads while fitting", "min": 1})

    def __post_init__(self) -> None:
        if (
            not isinstance(self.hidden_units, tuple)
            or not self.hidden_units
            or any(
                not isinstance(h, int) or isinstance(h, bool) or h < 1 for h in self.hidden_units
            )
        ):
            raise OPEError(
                f"FQEConfig.hidden_units == {self.hidden_units!r}: give a tuple of one or more "
                "positive layer widths, e.g. (64, 64)"
            )
        for name in (
            "batch_size",
            "steps_per_epoch",
            "max_epochs",
            "target_update_interval",
            "patience",
            "threads",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise OPEError(f"FQEConfig.{name} == {value!r}, must be an integer >= 1")
        r = self.interval_refits
        if isinstance(r, bool) or not isinstance(r, int) or r < 0 or r == 1:
            raise OPEError(
                f"FQEConfig.interval_refits == {r!r}: give 0 (no refits) or an integer >= 2"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise OPEError(f"FQEConfig.seed == {self.seed!r}, must be an integer >= 0")
        _check_open(self.learning_rate, "FQEConfig.learning_rate", 0.0, 1.0)
        if self.huber_delta is not None:
            _check_open(self.huber_delta, "FQEConfig.huber_delta", 0.0, math.inf)
        _check_open(self.grad_clip, "FQEConfig.grad_clip", 0.0, math.inf)
        _check_open(self.tolerance, "FQEConfig.tolerance", 0.0, math.inf)
        _check_open(self.divergence_ratio, "FQEConfig.divergence_ratio", 1.0, math.inf)
        _check_open(self.max_weight, "FQEConfig.max_weight", 0.0, math.inf)
        if not (
            isinstance(self.support_clip, int | float)
            and not isinstance(self.support_clip, bool)
            and 0.0 <= self.support_clip < math.inf
        ):
            raise OPEError(
                f"FQEConfig.support_clip == {self.support_clip!r}: give 0 (off) or a finite "
                "multiple > 0 of the behaviour probability, e.g. 10"
            )
        if not (
            isinstance(self.weight_decay, int | float)
            and not isinstance(self.weight_decay, bool)
            and 0.0 <= self.weight_decay < math.inf
        ):
            raise OPEError(f"FQEConfig.weight_decay == {self.weight_decay!r}, must be >= 0")
        if self.importance_weighting not in _WEIGHTINGS:
            raise OPEError(
                f"FQEConfig.importance_weighting == {self.importance_weighting!r}: choose one "
                f"of {', '.join(_WEIGHTINGS)}"
            )
        if not (isinstance(self.tau, int | float) and 0.0 < self.tau <= 1.0):
            raise OPEError(f"FQEConfig.tau == {self.tau!r}, must be in (0, 1]")
        if self.reward_scale is not None:
            _check_open(self.reward_scale, "FQEConfig.reward_scale", 0.0, math.inf)
        if not (
            isinstance(self.validation_fraction, int | float)
            and 0.0 <= self.validation_fraction < 1.0
        ):
            raise OPEError(
                f"FQEConfig.validation_fraction == {self.validation_fraction!r}, must be in [0, 1)"
            )


_WEIGHTINGS = ("none", "per_decision", "cumulative")


def _check_open(value: float, name: str, lo: float, hi: float) -> None:
    if not (isinstance(value, int | float) and lo < value < hi):
        bound = f"> {lo}" if hi == math.inf else f"in ({lo}, {hi})"
        raise OPEError(f"{name} == {value!r}, must be {bound}")


class _QNet(nn.Module):
    """MLP ``(m, d) -> (m, A)`` Q values, or ``(m, 2A)``: Q then the continuation value W.

    :math:`W(s, a) \\approx E[\\sum_{a'} \\pi(a' \\mid s') Q(s', a') \\mid s, a,
    \\text{not terminal}]` is learnt only when some non-terminal rows have no next state: their
    bootstrap term uses :math:`W(s, a)` instead of the unknown :math:`V(s')`.
    """

    def __init__(self, d: int, n_actions: int, hidden: tuple[int, ...], continuation: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = d
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, 2 * n_actions if continuation else n_actions))
        self.body = nn.Sequential(*layers)
        self.n_actions = n_actions

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class FittedQ:
    """The fitted :math:`\\hat Q^\\pi`, callable on states: ``(m, d) -> (m, A)`` in reward units.

    States must be normalised exactly like the ``states`` given to :func:`fit_fqe`. Used by the
    direct and doubly-robust estimators as :math:`\\hat q(s, a)` for every action.
    """

    def __init__(
        self,
        net: _QNet,
        *,
        n_features: int,
        n_actions: int,
        reward_scale: float,
        threads: int,
        chunk_rows: int = 65536,
    ) -> None:
        self._net = net.eval()
        self.n_features = n_features
        self.n_actions = n_actions
        self.reward_scale = reward_scale
        self._threads = threads
        self._chunk = chunk_rows

    def __call__(self, states: npt.ArrayLike) -> FloatArray:
        x = np.asarray(states)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise OPEError(
                f"states: expected shape (m, {self.n_features}) like the states FQE was fitted "
                f"on, got {x.shape}"
            )
        x = np.ascontiguousarray(x, dtype=np.float32)
        out = np.empty((x.shape[0], self.n_actions), dtype=np.float64)
        with _torch_threads(self._threads), torch.no_grad():
            for lo in range(0, x.shape[0], self._chunk):
                q = self._net(torch.from_numpy(x[lo : lo + self._chunk]))[:, : self.n_actions]
                out[lo : lo + self._chunk] = q.numpy()
        out /= self.reward_scale
        return out

    def values(self, states: npt.ArrayLike, action_probs: npt.ArrayLike) -> FloatArray:
        """State values :math:`\\sum_a \\pi(a \\mid s)\\hat Q(s, a)`, shape ``(m,)``."""
        q = self(states)
        p = np.asarray(action_probs, dtype=np.float64)
        if p.shape != q.shape:
            raise OPEError(f"action_probs: expected shape {q.shape}, got {p.shape}")
        return np.einsum("ij,ij->i", q, p)


@dataclass(frozen=True)
class FQEResult:
    """What :func:`fit_fqe` returns.

    ``value`` is :math:`\\hat V(\\pi)`, the mean of ``initial_values``, one per episode
    (``(n_episodes,)``, aligned with ``episode_ids``) so a session bootstrap can resample them.
    ``q_values`` is the fitted Q function (the target network: a Polyak average of the trained
    weights). Curves have one entry per epoch (``epochs_run``; the last ``refit_epochs`` of them
    trained on all episodes, without validation): ``train_loss`` is the mean Huber TD loss against
    the target network, ``validation_loss`` the mean Huber Bellman residual of the target network
    on the held-out episodes (both in scaled reward units; empty when ``validation_fraction``
    is 0), ``value_curve`` the value after each epoch (reward units). ``converged`` is True when
    training stopped because the value settled; ``diverged`` is True when the fit should not be
    trusted; ``warnings`` says why (and notes non-convergence).

    Note that FQE's validation loss is not minimised at the right answer: it contains the
    variance of :math:`r + \\gamma V(s')`, which grows as values are learnt, so it typically
    *rises* to a plateau. It is a stability signal (a sustained rise means divergence), while
    convergence is judged on the value.
    """

    value: float
    initial_values: FloatArray
    episode_ids: npt.NDArray[Any]
    q_values: FittedQ
    train_loss: FloatArray
    validation_loss: FloatArray
    value_curve: FloatArray
    epochs_run: int
    refit_epochs: int
    converged: bool
    diverged: bool
    warnings: tuple[str, ...]
    value_bounds: tuple[float, float]
    reward_scale: float
    huber_delta: float
    gamma: float
    n_train_episodes: int
    n_validation_episodes: int
    config: FQEConfig

    @property
    def n_episodes(self) -> int:
        return int(self.initial_values.shape[0])


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _plain(x: Any) -> Any:
    """A numpy scalar as the Python value (for readable error messages)."""
    return x.item() if isinstance(x, np.generic) else x


def initial_state_rows(episode_ids: npt.ArrayLike, steps: npt.ArrayLike) -> IntArray:
    """Row index of each episode's ``step == 0`` row, episodes in order of first appearance.

    Raises :class:`OPEError` naming the episode when one has no step-0 row or several.
    """
    ep = np.asarray(episode_ids)
    st = np.asarray(steps)
    if ep.ndim != 1 or st.shape != ep.shape:
        raise OPEError(
            f"expected episode_ids and steps of the same shape (n,), got {ep.shape} and {st.shape}"
        )
    _, first, inverse = np.unique(ep, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # episode codes in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    codes = rank[inverse]
    zero = np.flatnonzero(st == 0)
    counts = np.bincount(codes[zero], minlength=order.size)
    if np.any(counts == 0):
        bad = _plain(ep[first[order[np.flatnonzero(counts == 0)[0]]]])
        raise OPEError(
            f"steps: episode {bad!r} has no row with step == 0, so it has no initial state; "
            "steps must count decisions from 0 within each episode"
        )
    if np.any(counts > 1):
        bad = _plain(ep[first[order[np.flatnonzero(counts > 1)[0]]]])
        raise OPEError(
            f"steps: episode {bad!r} has several rows with step == 0; each episode needs exactly "
            "one initial row (are episode_ids unique per session?)"
        )
    rows = np.empty(order.size, dtype=np.int64)
    rows[codes[zero]] = zero
    return rows


def _as_probs(
    p: npt.ArrayLike, name: str, n: int, n_actions: int, check_rows: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float32]:
    """Validate ``p`` (n, A) on ``check_rows``; float32 copy-free when possible, other rows 0."""
    arr = np.asarray(p)
    if arr.ndim != 2 or arr.shape[0] != n:
        raise OPEError(f"{name}: expected shape (n, A) with n == {n}, got {arr.shape}")
    if arr.shape[1] != n_actions:
        raise OPEError(
            f"{name}: expected {n_actions} action columns like target_probs, got {arr.shape[1]}"
        )
    if not np.issubdtype(arr.dtype, np.number):
        raise OPEError(f"{name}: expected numbers, got dtype {arr.dtype}")
    out = np.ascontiguousarray(arr, dtype=np.float32)  # no copy when already float32
    unused_nonfinite: list[npt.NDArray[np.int64]] = []
    for lo in range(0, n, _CHECK_ROWS):  # blockwise: no (n, A) temporaries
        blk = arr[lo : lo + _CHECK_ROWS]
        finite = np.isfinite(blk).all(axis=1)
        ok = finite & (blk >= 0).all(axis=1) & (np.abs(blk.sum(axis=1) - 1.0) <= 1e-3)
        used = check_rows[lo : lo + _CHECK_ROWS]
        if not ok[used].all():
            row = lo + int(np.flatnonzero(used & ~ok)[0])
            raise OPEError(
                f"{name}: row {row} is not a probability distribution (finite, >= 0, summing to "
                f"1; sums to {float(np.asarray(arr[row], dtype=np.float64).sum())!r})"
            )
        if not finite.all():
            unused_nonfinite.append(lo + np.flatnonzero(~finite))
    if unused_nonfinite:  # rows that are never used may hold NaN: make them harmless zeros
        if np.shares_memory(out, arr):
            out = out.copy()
        out[np.concatenate(unused_nonfinite)] = 0.0
    return out


_CHECK_ROWS = 65536


def _validate(
    states: npt.ArrayLike,
    actions: npt.ArrayLike,
    rewards: npt.ArrayLike,
    next_states: npt.ArrayLike,
    terminals: npt.ArrayLike,
    episode_ids: npt.ArrayLike,
    steps: npt.ArrayLike,
    target_probs: npt.ArrayLike,
    next_target_probs: npt.ArrayLike,
    gamma: float,
    next_valid: npt.ArrayLike | None,
) -> dict[str, Any]:
    if isinstance(gamma, bool) or not isinstance(gamma, int | float) or not (0.0 <= gamma < 1.0):
        raise OPEError(
            f"gamma == {gamma!r}, must be in [0, 1): FQE bootstraps through timeouts, which "
            "needs discounting"
        )
    s = np.asarray(states)
    if s.ndim != 2 or s.shape[0] == 0 or s.shape[1] == 0:
        raise OPEError(f"states: expected a non-empty 2-d array (n, d), got shape {s.shape}")
    n, d = s.shape
    if not np.issubdtype(s.dtype, np.number):
        raise OPEError(f"states: expected numbers, got dtype {s.dtype}")
    if not np.isfinite(s).all():
        row = int(np.flatnonzero(~np.isfinite(s).all(axis=1))[0])
        raise OPEError(f"states: row {row} has NaN/inf; states must be finite normalised features")
    ns = np.asarray(next_states)
    if ns.shape != s.shape or not np.issubdtype(ns.dtype, np.number):
        raise OPEError(
            f"next_states: expected a numeric array of shape {s.shape} like states, "
            f"got {ns.dtype} {ns.shape}"
        )
    tp = np.asarray(target_probs)
    if tp.ndim != 2 or tp.shape[0] != n or tp.shape[1] == 0:
        raise OPEError(f"target_probs: expected shape (n, A) with n == {n}, got {tp.shape}")
    n_actions = int(tp.shape[1])
    a = np.asarray(actions)
    if a.shape != (n,):
        raise OPEError(f"actions: expected shape ({n},), got {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise OPEError(f"actions: expected integer action ids, got dtype {a.dtype}")
    if a.min() < 0 or a.max() >= n_actions:
        row = int(np.flatnonzero((a < 0) | (a >= n_actions))[0])
        raise OPEError(
            f"actions: row {row} has action {int(a[row])}, outside [0, {n_actions}) given by "
            "target_probs' columns"
        )
    r = np.asarray(rewards)
    if r.shape != (n,) or not np.issubdtype(r.dtype, np.number):
        raise OPEError(
            f"rewards: expected a numeric array of shape ({n},), got {r.dtype} {r.shape}"
        )
    if not np.isfinite(r).all():
        row = int(np.flatnonzero(~np.isfinite(r))[0])
        raise OPEError(f"rewards: row {row} is {float(r[row])!r}; rewards must be finite")
    t = np.asarray(terminals)
    if t.shape != (n,) or t.dtype != np.bool_:
        raise OPEError(f"terminals: expected a bool array of shape ({n},), got {t.dtype} {t.shape}")
    ep = np.asarray(episode_ids)
    if ep.shape != (n,):
        raise OPEError(f"episode_ids: expected shape ({n},), got {ep.shape}")
    st = np.asarray(steps)
    if st.shape != (n,) or not np.issubdtype(st.dtype, np.integer):
        raise OPEError(
            f"steps: expected an integer array of shape ({n},), got {st.dtype} {st.shape}"
        )
    if next_valid is not None:
        nv = np.asarray(next_valid)
        if nv.shape != (n,) or nv.dtype != np.bool_:
            raise OPEError(
                f"next_valid: expected a bool array of shape ({n},), got {nv.dtype} {nv.shape}"
            )
    else:
        nv = np.ones(n, dtype=bool)
    bootstrap = ~t & nv
    ns32 = np.ascontiguousarray(ns, dtype=np.float32)
    finite_next = np.isfinite(ns32).all(axis=1)
    if not finite_next[bootstrap].all():
        row = int(np.flatnonzero(bootstrap & ~finite_next)[0])
        raise OPEError(
            f"next_states: row {row} has NaN/inf but is bootstrapped from (not terminal); mark "
            "rows whose next state is unknown with next_valid=False"
        )
    if not finite_next.all():
        ns32 = np.where(finite_next[:, None], ns32, np.float32(0.0))
    init_rows = initial_state_rows(ep, st)
    is_init = np.zeros(n, dtype=bool)
    is_init[init_rows] = True
    init_probs = _as_probs(tp, "target_probs", n, n_actions, is_init)[init_rows]
    ntp32 = _as_probs(next_target_probs, "next_target_probs", n, n_actions, bootstrap)
    if (~t & ~nv).any() and not bootstrap.any():
        raise OPEError(
            "next_valid: no non-terminal row has a known next state, so the continuation value "
            "of the rows without one cannot be learnt"
        )
    return {
        "s": np.ascontiguousarray(s, dtype=np.float32),
        "a": a.astype(np.int64, copy=False),
        "r": r.astype(np.float64, copy=False),
        "ns": ns32,
        "t": t,
        "ep": ep,
        "known": bootstrap,
        "steps": st,
        "init_probs": init_probs.astype(np.float64),
        "ntp": ntp32,
        "init_rows": init_rows,
        "n_actions": n_actions,
        "d": d,
        "gamma": float(gamma),
    }


def _regression_weights(
    v: dict[str, Any], target_probs: npt.ArrayLike, pscore: npt.ArrayLike | None, cfg: FQEConfig
) -> FloatArray | None:
    """Capped importance weights of the regression rows ``(n,)``, or None (unweighted).

    ``per_decision``: :math:`w_i = \\pi(a_i \\mid s_i) / \\mu_i`; ``cumulative``: the running
    product :math:`\\prod_{k \\le t} w_{e,k}` over the episode's steps up to the row's, so the
    weighted rows follow the target policy's distribution of (history, action) at each step.
    Both are capped at ``max_weight``.
    """
    if pscore is None or cfg.importance_weighting == "none":
        return None
    n: int = v["s"].shape[0]
    p = np.asarray(pscore)
    if p.shape != (n,) or not np.issubdtype(p.dtype, np.number):
        raise OPEError(f"pscore: expected a numeric array of shape ({n},), got {p.dtype} {p.shape}")
    p = p.astype(np.float64)
    bad = ~(np.isfinite(p) & (p > 0.0) & (p <= 1.0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise OPEError(
            f"pscore: row {row} is {float(p[row])!r}; behaviour propensities must be in (0, 1] "
            "(leave pscore out to fit FQE without importance weights)"
        )
    probs = _as_probs(target_probs, "target_probs", n, v["n_actions"], np.ones(n, dtype=bool))
    w = probs[np.arange(n), v["a"]].astype(np.float64) / p
    if cfg.importance_weighting == "cumulative":
        order = np.lexsort((v["steps"], _codes(v["ep"])))
        codes = _codes(v["ep"])[order]
        cum = pd.Series(w[order]).groupby(codes, sort=False).cumprod().to_numpy()
        w = np.empty(n)
        w[order] = cum
    w = np.minimum(w, cfg.max_weight)
    if not (w > 0).any():
        raise OPEError(
            "target_probs: the target policy gives probability 0 to every logged action, so "
            'an importance-weighted FQE has no data (set importance_weighting = "none")'
        )
    return w


def support_clip_probs(
    target_probs: npt.ArrayLike, behaviour_probs: npt.ArrayLike, multiple: float
) -> FloatArray:
    """Move the target's mass beyond ``multiple`` times the behaviour's onto the behaviour.

    Shapes: both ``(m, A)`` rows summing to 1; returns ``(m, A)`` rows summing to 1:

    .. math::  \\tilde\\pi(a \\mid s) = \\min\\big(\\pi(a \\mid s),\\, M\\mu(a \\mid s)\\big)
               + \\Big(1 - \\sum_b \\min\\big(\\pi(b \\mid s),\\, M\\mu(b \\mid s)\\big)\\Big)
               \\,\\mu(a \\mid s)

    Rows where :math:`\\pi \\le M\\mu` everywhere are returned unchanged.
    """
    if not (isinstance(multiple, int | float) and 0.0 < multiple < math.inf):
        raise OPEError(f"multiple == {multiple!r}, must be a finite number > 0")
    pi = np.asarray(target_probs, dtype=np.float64)
    mu = np.asarray(behaviour_probs, dtype=np.float64)
    if pi.ndim != 2 or pi.shape != mu.shape:
        raise OPEError(
            f"behaviour_probs: expected the target_probs' shape {pi.shape}, got {mu.shape}"
        )
    kept = np.minimum(pi, multiple * mu)
    excess = np.clip(1.0 - kept.sum(axis=1, keepdims=True), 0.0, None)
    return kept + excess * mu


def _support_clipped_next_probs(v: dict[str, Any], multiple: float, seed: int) -> FloatArray:
    """``support_clip_probs`` of the bootstrap rows' next-state target probabilities ``(n, A)``.

    The behaviour :math:`\\hat\\mu(a \\mid s)` is a multinomial logistic regression of the
    logged actions on the (normalised) states, fitted here by Adam on minibatches (800 steps of
    1,024 rows, L2 1e-4: about a second, against a minute for the cross-fitted
    :func:`ope.behaviour_model.fit_behaviour_model`, which FQE would repeat for every policy).
    Only its support matters here, not its calibration.
    """
    n_act: int = v["n_actions"]
    s = torch.from_numpy(v["s"])
    a = torch.from_numpy(v["a"])
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Linear(int(v["d"]), n_act)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    n = int(s.shape[0])
    for _ in range(_BEHAVIOUR_STEPS):
        idx = torch.randint(n, (min(1024, n),), generator=g)
        loss = nn.functional.cross_entropy(model(s[idx]), a[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    out = np.asarray(v["ntp"], dtype=np.float32).copy()
    rows = np.flatnonzero(v["known"])
    with torch.no_grad():
        for lo in range(0, rows.size, 65536):
            part = rows[lo : lo + 65536]
            mu_next = torch.softmax(model(torch.from_numpy(v["ns"][part])), dim=1).double()
            out[part] = support_clip_probs(out[part], mu_next.numpy(), multiple).astype(np.float32)
    return out


_BEHAVIOUR_STEPS = 800


def _codes(ep: npt.NDArray[Any]) -> IntArray:
    return np.unique(ep, return_inverse=True)[1].astype(np.int64)


def _episode_returns(
    r: FloatArray, ep: npt.NDArray[Any], steps: IntArray, gamma: float
) -> FloatArray:
    """Logged discounted return :math:`\\sum_t \\gamma^t r_t` of each episode, ``(n_episodes,)``."""
    _, inverse = np.unique(ep, return_inverse=True)
    disc = np.power(gamma, steps.astype(np.float64)) if gamma > 0 else (steps == 0) * 1.0
    return np.bincount(inverse, weights=r * disc)


def _auto_scales(returns: FloatArray) -> tuple[float, float]:
    """Reward scale ``c = 1 / RMS(returns)`` and Huber threshold ``2 c (max G - min(G, 0))``.

    With ``c`` the values FQE fits are O(1) whatever the reward units. The Huber threshold is
    chosen so that the loss is quadratic for every residual a sensible Q can produce: a small
    threshold turns the regression into a median-like one whose fixed point is *not* the
    expected return (with the threshold at 1 in raw units d3rlpy's DiscreteFQE overestimates
    our tabular test's value about twofold), while the linear tails still cap the gradients of a
    diverging fit. All-zero returns give ``(1, 1)``.
    """
    rms = float(np.sqrt(np.mean(returns * returns)))
    if not (rms > 0 and math.isfinite(rms)):
        return 1.0, 1.0
    scale = 1.0 / rms
    spread = (float(returns.max()) - min(float(returns.min()), 0.0)) * scale
    return scale, max(2.0 * spread, 1.0)


def _split_episodes(
    ep: npt.NDArray[Any], fraction: float, rng: np.random.Generator
) -> tuple[npt.NDArray[np.bool_], int, int]:
    uniq, inverse = np.unique(ep, return_inverse=True)
    n_ep = uniq.size
    if fraction == 0.0:
        return np.zeros(ep.shape[0], dtype=bool), n_ep, 0
    if n_ep < 2:
        raise OPEError(
            f"episode_ids: only {n_ep} episode; a validation split needs >= 2 episodes "
            "(or set FQEConfig.validation_fraction = 0)"
        )
    n_val = min(max(1, int(round(fraction * n_ep))), n_ep - 1)
    val_ep = np.zeros(n_ep, dtype=bool)
    val_ep[rng.choice(n_ep, size=n_val, replace=False)] = True
    return val_ep[inverse], n_ep - n_val, n_val


def fit_fqe(
    states: npt.ArrayLike,
    actions: npt.ArrayLike,
    rewards: npt.ArrayLike,
    next_states: npt.ArrayLike,
    terminals: npt.ArrayLike,
    episode_ids: npt.ArrayLike,
    steps: npt.ArrayLike,
    target_probs: npt.ArrayLike,
    next_target_probs: npt.ArrayLike,
    gamma: float,
    *,
    next_valid: npt.ArrayLike | None = None,
    pscore: npt.ArrayLike | None = None,
    config: FQEConfig | None = None,
) -> FQEResult:
    """Fit :math:`\\hat Q^\\pi` by FQE and estimate the policy value from initial states.

    Shapes: ``states``, ``next_states`` ``(n, d)`` float (normalised features); ``actions``
    ``(n,)`` int in ``[0, A)``; ``rewards`` ``(n,)``; ``terminals`` ``(n,)`` bool (true end of
    the episode: no bootstrap); ``episode_ids`` ``(n,)`` any hashable; ``steps`` ``(n,)`` int,
    0 on each episode's first row; ``target_probs`` :math:`\\pi(\\cdot \\mid s_i)` and
    ``next_target_probs`` :math:`\\pi(\\cdot \\mid s'_i)`, ``(n, A)`` rows summing to 1 (only
    checked where used: initial rows, resp. rows bootstrapped from); ``gamma`` in ``[0, 1)``.
    ``next_valid`` ``(n,)`` bool, optional: False for a non-terminal row whose next state is not
    known (offrec's datasets store zeros for the next state of timeout rows: pass
    ``~timeouts``); such rows bootstrap from the learnt continuation value :math:`W(s, a)`.
    Timeout rows *with* a real next state are bootstrapped through like any other row.
    ``pscore`` ``(n,)`` in ``(0, 1]``, optional: the behaviour probability of each logged
    action. With it (and ``config.importance_weighting != "none"``) the regression is
    importance weighted (rows are sampled with probability proportional to
    ``min(w_i, max_weight)``, ``w_i = pi(a_i | s_i) / pscore_i`` or its running product over
    the episode), which removes the bias of a behaviour policy that acts on information the
    states do not hold (see the module docstring); ``target_probs`` is then checked on every row.

    Cost: at most ``2 * max_epochs * steps_per_epoch`` gradient steps of ``batch_size`` rows
    (held-out run, then refit) whatever ``n`` (sampling is with replacement from tensors built
    once), plus one pass over the validation rows per epoch; ~1.8 s per epoch at 1M rows,
    d = 40, A = 51 on one core.
    """
    cfg = config if config is not None else FQEConfig()
    if not isinstance(cfg, FQEConfig):
        raise OPEError(f"config: expected an FQEConfig, got {type(cfg).__name__}")
    v = _validate(
        states,
        actions,
        rewards,
        next_states,
        terminals,
        episode_ids,
        steps,
        target_probs,
        next_target_probs,
        gamma,
        next_valid,
    )
    v["w"] = _regression_weights(v, target_probs, pscore, cfg)
    if cfg.support_clip > 0:
        v["ntp"] = _support_clipped_next_probs(v, cfg.support_clip, cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gamma_f: float = v["gamma"]
    auto_scale, auto_delta = _auto_scales(_episode_returns(v["r"], v["ep"], v["steps"], gamma_f))
    scale = cfg.reward_scale if cfg.reward_scale is not None else auto_scale
    delta = cfg.huber_delta if cfg.huber_delta is not None else auto_delta * scale / auto_scale
    is_val, n_train_ep, n_val_ep = _split_episodes(v["ep"], cfg.validation_fraction, rng)
    train_rows = np.flatnonzero(~is_val)
    val_rows = np.flatnonzero(is_val)

    with _torch_threads(cfg.threads):
        net, curves, converged, refit_epochs = _train(
            v, cfg, scale, delta, gamma_f, train_rows, val_rows
        )
    train_curve, val_curve, value_curve = curves
    fq = FittedQ(
        net, n_features=v["d"], n_actions=v["n_actions"], reward_scale=scale, threads=cfg.threads
    )
    init_rows = v["init_rows"]
    init_vals = fq.values(v["s"][init_rows], v["init_probs"])
    value = float(np.mean(init_vals))

    r = v["r"]
    lo = min(float(r.min()), 0.0) / (1.0 - gamma_f)
    hi = max(float(r.max()), 0.0) / (1.0 - gamma_f)
    # stability is judged on the held-out loss, and on the training loss of epochs without one
    loss_curves = (
        [val_curve] if val_curve.size else [train_curve[: train_curve.size - refit_epochs]]
    )
    value_curves = [value_curve[: value_curve.size - refit_epochs]]
    if refit_epochs:
        loss_curves.append(train_curve[-refit_epochs:])
        value_curves.append(value_curve[-refit_epochs:])
    warnings, diverged = _diagnose(
        value, init_vals, (lo, hi), loss_curves, converged, cfg, value_curves, scale
    )
    return FQEResult(
        value=value,
        initial_values=init_vals,
        episode_ids=v["ep"][init_rows],
        q_values=fq,
        train_loss=train_curve,
        validation_loss=val_curve,
        value_curve=value_curve,
        epochs_run=int(train_curve.size),
        refit_epochs=refit_epochs,
        converged=converged,
        diverged=diverged,
        warnings=tuple(warnings),
        value_bounds=(lo, hi),
        reward_scale=float(scale),
        huber_delta=float(delta),
        gamma=gamma_f,
        n_train_episodes=n_train_ep,
        n_validation_episodes=n_val_ep,
        config=cfg,
    )


def _diagnose(
    value: float,
    init_vals: FloatArray,
    bounds: tuple[float, float],
    loss_curves: list[FloatArray],
    converged: bool,
    cfg: FQEConfig,
    value_curves: list[FloatArray] | None = None,
    scale: float = 1.0,
) -> tuple[list[str], bool]:
    """Divergence flag and human-readable warnings for the report.

    Diverged means: a non-finite value or loss; a value outside the attainable range
    ``bounds``; or a *runaway*: over the last ``w = max(patience, 3) + 1`` epochs of a phase the
    loss rose at every epoch, the value moved by more than ``10 * tolerance`` RMS-return units
    (``10 * tolerance / scale`` in reward units) over those epochs, and the loss ended either
    ``divergence_ratio`` times above where the window started or ``divergence_ratio ** 3``
    times above its minimum over the phase (a slow geometric blow-up). A loss that rises while
    the value stands still is how FQE's held-out residual normally behaves as values are
    learnt (it holds the variance of ``r + gamma V(s')``), and a value that drifts while the
    loss is flat is slow propagation, so neither alone is flagged; runs shorter than ``w``
    epochs are only judged on the first two rules.
    """
    lo, hi = bounds
    warnings: list[str] = []
    diverged = False
    if not np.isfinite(init_vals).all() or not all(np.isfinite(c).all() for c in loss_curves):
        diverged = True
        warnings.append("FQE produced non-finite Q values or losses: the fit diverged")
    tol = 1e-6 * max(hi - lo, 1.0)
    if math.isfinite(value) and not (lo - tol <= value <= hi + tol):
        diverged = True
        warnings.append(
            f"FQE value {value:.6g} is outside the attainable range [{lo:.6g}, {hi:.6g}] "
            "(min(r, 0) / (1 - gamma), max(r, 0) / (1 - gamma)): the fit diverged"
        )
    curves = value_curves if value_curves is not None else [np.array([])] * len(loss_curves)
    w = max(cfg.patience, 3) + 1
    moved = 10.0 * cfg.tolerance / scale
    for curve, values in zip(loss_curves, curves, strict=True):
        window = curve[-w:]
        vwin = values[-w:]
        if window.size < w or vwin.size < w or not np.isfinite(window).all():
            continue
        rising = bool(np.all(np.diff(window) > 0))
        drift = float(vwin[-1] - vwin[0])
        last, first = float(window[-1]), float(window[0])
        floor = max(float(curve.min()), 1e-300)
        blown = last > cfg.divergence_ratio * first or last > cfg.divergence_ratio**3 * floor
        if rising and blown and abs(drift) > moved:
            diverged = True
            warnings.append(
                f"FQE loss rose at each of the last {w} epochs to {last:.4g} "
                f"({last / max(first, 1e-300):.3g}x the window's start, {last / floor:.3g}x its "
                f"minimum) while the value moved by {drift:+.4g}: the fit is running away and the "
                "value is unreliable (lower learning_rate or tau, add weight_decay, or check the "
                "reward scale)"
            )
            break
    if not converged and not diverged:
        warnings.append(
            f"FQE value had not settled within {cfg.tolerance:g} (RMS-return units) over the "
            f"last {cfg.patience} epochs after max_epochs = {cfg.max_epochs}: it may not have "
            "converged (raise max_epochs or steps_per_epoch)"
        )
    return warnings, diverged


def _fused_adam(
    params: list[nn.Parameter], lr: float, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):  # torch builds without fused CPU Adam
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


_CHUNK_STEPS = 32  # batches gathered per index_select call (fewer, larger gathers)


def _train(
    v: dict[str, Any],
    cfg: FQEConfig,
    scale: float,
    delta: float,
    gamma: float,
    train_rows: IntArray,
    val_rows: IntArray,
) -> tuple[_QNet, tuple[FloatArray, FloatArray, FloatArray], bool, int]:
    """Run the FQE epochs: the held-out run, then (optionally) the refit on all episodes.

    Returns the target network, the curves, whether the value settled, the refit's epochs.
    """
    n_act: int = v["n_actions"]
    s = torch.from_numpy(v["s"])
    ns = torch.from_numpy(v["ns"])
    a = torch.from_numpy(v["a"])
    ntp = torch.from_numpy(v["ntp"])
    r = torch.from_numpy((v["r"] * scale).astype(np.float32))
    disc = torch.from_numpy((~v["t"]).astype(np.float32) * np.float32(gamma))
    known = torch.from_numpy(v["known"].astype(np.float32))
    continuation = bool((~v["t"] & ~v["known"]).any())
    s0 = s[torch.from_numpy(v["init_rows"])]
    p0 = torch.from_numpy(v["init_probs"].astype(np.float32))
    g = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        net = _QNet(v["d"], n_act, cfg.hidden_units, continuation)
    target = copy.deepcopy(net)
    target.requires_grad_(False)
    params = list(net.parameters())
    tparams = list(target.parameters())
    opt = _fused_adam(params, cfg.learning_rate, cfg.weight_decay)
    tr = torch.from_numpy(train_rows)
    val = torch.from_numpy(val_rows)
    bs = cfg.batch_size

    columns = (s, ns, ntp, a, r, disc, known)

    def gather(rows: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(col.index_select(0, rows) for col in columns)

    def losses(
        model: nn.Module, tgt: nn.Module, batch: tuple[torch.Tensor, ...], reduction: str = "mean"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Huber TD loss of Q and (when learnt) of the continuation head W on one batch."""
        s_b, ns_b, p_b, a_b, r_b, d_b, k_b = batch
        a_col = a_b[:, None]
        out = model(s_b)
        q = out[:, :n_act].gather(1, a_col).squeeze(1)
        with torch.no_grad():
            v_next = (tgt(ns_b)[:, :n_act] * p_b).sum(1)
            if continuation:
                w_tgt = tgt(s_b)[:, n_act:].gather(1, a_col).squeeze(1)
                v_next = k_b * v_next + (1.0 - k_b) * w_tgt
            y = r_b + d_b * v_next
        q_loss = nn.functional.huber_loss(q, y, delta=delta, reduction=reduction)
        if not continuation:
            return q_loss, torch.zeros(())
        w = out[:, n_act:].gather(1, a_col).squeeze(1)
        mask = k_b * (d_b > 0)  # non-terminal rows whose next state is known
        w_err = nn.functional.huber_loss(w, v_next, delta=delta, reduction="none") * mask
        w_loss = w_err.sum() if reduction == "sum" else w_err.sum() / mask.sum().clamp(min=1.0)
        return q_loss, w_loss

    row_w = torch.from_numpy(v["w"]) if v.get("w") is not None else None

    def residual(model: nn.Module) -> float:
        """Mean (importance-weighted when the fit is) Bellman residual on the held-out rows."""
        total, weight = 0.0, 0.0
        with torch.no_grad():
            for lo in range(0, int(val.shape[0]), 65536):
                rows = val[lo : lo + 65536]
                batch = gather(rows)
                q_loss, _ = losses(model, model, batch, reduction="none")
                if row_w is None:
                    total += float(q_loss.sum())
                    weight += float(rows.shape[0])
                else:
                    wv = row_w.index_select(0, rows)
                    total += float((q_loss.double() * wv).sum())
                    weight += float(wv.sum())
        return total / weight if weight > 0 else math.nan

    def sampler(rows: torch.Tensor) -> Callable[[int], torch.Tensor]:
        """Draw ``m`` rows with replacement: uniformly, or proportionally to their weight."""
        n_rows = int(rows.shape[0])
        if row_w is None:
            return lambda m: rows.index_select(0, torch.randint(n_rows, (m,), generator=g))
        cdf = torch.cumsum(row_w.index_select(0, rows), 0)
        total = float(cdf[-1])
        if not total > 0:
            raise OPEError(
                "pscore: every importance weight of the training episodes is 0 (the target "
                "policy never takes their logged actions); FQE cannot be weighted on them"
            )

        def draw(m: int) -> torch.Tensor:
            u = torch.rand(m, generator=g, dtype=torch.float64) * total
            idx = torch.searchsorted(cdf, u, right=True).clamp_(max=n_rows - 1)
            return rows.index_select(0, idx)

        return draw

    train_curve: list[float] = []
    val_curve: list[float] = []
    value_curve: list[float] = []
    step = 0

    def run_phase(rows: torch.Tensor, validate: bool) -> tuple[bool, int]:
        """Epochs on ``rows`` until the value settles; returns (settled, epochs run)."""
        nonlocal step
        draw = sampler(rows)
        start = len(value_curve)
        for epoch in range(cfg.max_epochs):
            net.train()
            running = torch.zeros(())
            done = 0
            while done < cfg.steps_per_epoch:
                k = min(_CHUNK_STEPS, cfg.steps_per_epoch - done)
                # one gather per column for k batches: far cheaper than k small gathers
                chunk = gather(draw(k * bs))
                for j in range(k):
                    batch = tuple(col[j * bs : (j + 1) * bs] for col in chunk)
                    q_loss, w_loss = losses(net, target, batch)
                    opt.zero_grad(set_to_none=True)
                    (q_loss + w_loss).backward()
                    nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                    opt.step()
                    running += q_loss.detach()
                    step += 1
                    if step % cfg.target_update_interval == 0:
                        with torch.no_grad():
                            for tp, p in zip(tparams, params, strict=True):
                                tp.lerp_(p, cfg.tau)
                done += k
            train_curve.append(float(running) / cfg.steps_per_epoch)
            with torch.no_grad():
                value_curve.append(float((target(s0)[:, :n_act] * p0).sum(1).mean()) / scale)
            if validate:
                val_curve.append(residual(target))
            if not (math.isfinite(value_curve[-1]) and math.isfinite(train_curve[-1])):
                return False, epoch + 1
            recent = value_curve[start:][-(cfg.patience + 1) :]
            if (
                len(recent) == cfg.patience + 1
                and (max(recent) - min(recent)) * scale < cfg.tolerance
            ):
                return True, epoch + 1
        return False, cfg.max_epochs

    converged, _ = run_phase(tr, validate=bool(val.shape[0]))
    refit_epochs = 0
    if converged and val.shape[0] and cfg.refit_on_all:
        converged, refit_epochs = run_phase(torch.cat([tr, val]), validate=False)
    target.eval()
    curves = (
        np.asarray(train_curve, dtype=np.float64),
        np.asarray(val_curve, dtype=np.float64),
        np.asarray(value_curve, dtype=np.float64),
    )
    return target, curves, converged, refit_epochs


@dataclass(frozen=True)
class FQEInterval:
    """FQE's value with a ``1 - alpha`` interval that counts the error of the fit.

    ``bootstrap_se`` is the session-bootstrap standard error of the mean initial-state value
    with the fitted Q held fixed (what resampling ``initial_values`` gives: it ignores that Q
    was itself estimated from the same sessions). ``refit_values`` are the values of FQE refitted
    from scratch (new seed) on ``n_refits`` session-bootstrap resamples of the data; their
    standard deviation ``refit_se`` estimates the whole estimator's sampling and fitting error.
    The interval is ``point +- max(z_{1 - alpha/2} * bootstrap_se, t_{K-1, 1 - alpha/2} *
    refit_se)`` with ``K = n_refits``: the refit spread is the right total, and since it is
    estimated from only K draws its quantile is Student's t with K - 1 degrees of freedom (4.30
    for K = 3, 2.78 for K = 5), not the normal one; the fixed-Q bootstrap is a floor when a handful
    of refits happens to agree. ``se`` is the half-width over ``z_{1 - alpha/2}``. It does not
    cover a bias that every refit shares.
    """

    point: float
    low: float
    high: float
    alpha: float
    se: float
    bootstrap_se: float
    refit_se: float
    refit_values: FloatArray
    method: str = "fqe-refit"

    @property
    def extra_se(self) -> float:
        """The standard error the fixed-Q bootstrap misses: ``sqrt(se**2 - bootstrap_se**2)``."""
        return math.sqrt(max(self.se**2 - self.bootstrap_se**2, 0.0))


def fqe_interval(
    result: FQEResult,
    states: npt.ArrayLike,
    actions: npt.ArrayLike,
    rewards: npt.ArrayLike,
    next_states: npt.ArrayLike,
    terminals: npt.ArrayLike,
    episode_ids: npt.ArrayLike,
    steps: npt.ArrayLike,
    target_probs: npt.ArrayLike,
    next_target_probs: npt.ArrayLike,
    *,
    next_valid: npt.ArrayLike | None = None,
    pscore: npt.ArrayLike | None = None,
    n_refits: int = 4,
    alpha: float = 0.05,
    n_bootstrap: int = 1000,
    random_state: int | np.random.Generator | None = None,
) -> FQEInterval:
    """Interval of ``result.value`` widened by the spread of FQE refits on resampled sessions.

    Arguments are those given to :func:`fit_fqe` for ``result`` (same rows, same order; the
    config and gamma are taken from ``result``). Cost: ``n_refits`` more fits. See
    :class:`FQEInterval` for the maths; ``n_refits = 0`` gives the fixed-Q bootstrap alone.
    """
    if not isinstance(result, FQEResult):
        raise OPEError(f"result: expected the FQEResult of fit_fqe, got {type(result).__name__}")
    if isinstance(n_refits, bool) or not isinstance(n_refits, int) or n_refits < 0:
        raise OPEError(f"n_refits == {n_refits!r}, must be an integer >= 0 (0 = no refits)")
    if n_refits == 1:
        raise OPEError("n_refits == 1: a spread needs at least 2 refits (or 0 for none)")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int) or n_bootstrap < 2:
        raise OPEError(f"n_bootstrap == {n_bootstrap!r}, must be an integer >= 2")
    if not (isinstance(alpha, int | float) and 0.0 < alpha < 1.0):
        raise OPEError(f"alpha == {alpha!r}, must be in (0, 1)")
    ep = np.asarray(episode_ids)
    if ep.shape[0] != np.asarray(states).shape[0]:
        raise OPEError(
            f"episode_ids: expected {np.asarray(states).shape[0]} rows like states, got "
            f"{ep.shape[0]}; pass the arrays fit_fqe was given"
        )
    rng = np.random.default_rng(random_state)
    init = result.initial_values
    n_ep = init.shape[0]
    if n_ep < 2:
        raise OPEError(f"an interval needs at least 2 episodes, got {n_ep}")
    idx = rng.integers(0, n_ep, size=(n_bootstrap, n_ep))
    boot_se = float(init[idx].mean(axis=1).std(ddof=1))
    refits = np.empty(n_refits)
    if n_refits:
        uniq, codes = np.unique(ep, return_inverse=True)
        order = np.argsort(codes, kind="stable")
        starts = np.searchsorted(codes[order], np.arange(uniq.size))
        ends = np.append(starts[1:], codes.size)
        arrays = {
            "states": np.asarray(states),
            "actions": np.asarray(actions),
            "rewards": np.asarray(rewards),
            "next_states": np.asarray(next_states),
            "terminals": np.asarray(terminals),
            "steps": np.asarray(steps),
            "target_probs": np.asarray(target_probs),
            "next_target_probs": np.asarray(next_target_probs),
        }
        if next_valid is not None:
            arrays["next_valid"] = np.asarray(next_valid)
        if pscore is not None:
            arrays["pscore"] = np.asarray(pscore)
        for k in range(n_refits):
            pick = rng.integers(0, uniq.size, size=uniq.size)
            rows = np.concatenate([order[starts[e] : ends[e]] for e in pick])
            copy_id = np.repeat(np.arange(uniq.size), ends[pick] - starts[pick])
            sub = {name: arr[rows] for name, arr in arrays.items()}
            cfg = replace(result.config, seed=result.config.seed + 1 + k)
            refit = fit_fqe(
                sub.pop("states"),
                sub.pop("actions"),
                sub.pop("rewards"),
                sub.pop("next_states"),
                sub.pop("terminals"),
                copy_id,
                sub.pop("steps"),
                sub.pop("target_probs"),
                sub.pop("next_target_probs"),
                result.gamma,
                config=cfg,
                **sub,
            )
            refits[k] = refit.value
    refit_se = float(refits.std(ddof=1)) if n_refits else 0.0
    z = float(NormalDist().inv_cdf(1.0 - alpha / 2.0))
    # the refit spread comes from n_refits draws: Student's t with n_refits - 1 dof
    t = float(student_t.ppf(1.0 - alpha / 2.0, n_refits - 1)) if n_refits else z
    half = max(z * boot_se, t * refit_se)
    se = half / z
    return FQEInterval(
        point=result.value,
        low=result.value - half,
        high=result.value + half,
        alpha=float(alpha),
        se=se,
        bootstrap_se=boot_se,
        refit_se=refit_se,
        refit_values=refits,
    )


def widen_rows(table: pd.DataFrame, interval: FQEInterval) -> pd.DataFrame:
    """FQE rows of a runner table with the fitting error of ``interval`` added to their bounds.

    ``table`` holds rows built from a kernel of FQE's initial values (``value, low, high`` and,
    when compared with a baseline, ``lift*`` and ``rel_lift*`` and ``baseline_value``): each
    side's half-width ``h`` becomes ``sqrt(h**2 + (z * extra_se)**2)`` (independent errors add
    in variance); for the relative lift the added term is divided by ``|baseline_value|``.
    Returns a copy.
    """
    if not isinstance(interval, FQEInterval):
        raise OPEError(f"interval: expected an FQEInterval, got {type(interval).__name__}")
    out = table.copy()
    add = float(NormalDist().inv_cdf(1.0 - interval.alpha / 2.0)) * interval.extra_se
    groups = [("value", "low", "high", 1.0), ("lift", "lift_low", "lift_high", 1.0)]
    if "baseline_value" in out.columns:
        base = out["baseline_value"].abs().to_numpy(dtype=np.float64)
        scale = np.divide(1.0, base, out=np.full_like(base, np.nan), where=base > 0)
        groups.append(("rel_lift", "rel_lift_low", "rel_lift_high", scale))
    for point, low, high, k in groups:
        if point not in out.columns:
            continue
        p = out[point].to_numpy(dtype=np.float64)
        extra = add * np.asarray(k, dtype=np.float64)
        out[low] = p - np.hypot(p - out[low].to_numpy(dtype=np.float64), extra)
        out[high] = p + np.hypot(out[high].to_numpy(dtype=np.float64) - p, extra)
    return out
