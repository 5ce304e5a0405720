"""Estimated behaviour policy :math:`\\hat\\mu(a \\mid s)`: cross-fitted, floored, calibrated.

Used when the logs carry no propensities (organic mode: the "action" is the item the user went
to next, so nobody logged its probability) or to audit logged ones. A multinomial classifier of
the logged action on the state is cross-fitted by episode (as in :mod:`ope.reward_model`): row
i's probabilities come from the model that did not see row i's episode, so the importance
weights :math:`\\pi(a_i \\mid s_i) / \\hat\\mu(a_i \\mid s_i)` are not deflated by memorisation.

Probabilities are floored at ``propensity_floor`` :math:`f` and renormalised *exactly*: entries
below :math:`f` are raised to :math:`f` and the other entries of the row are scaled down in
proportion to keep the row sum at 1 (repeated until no entry falls below :math:`f`; needs
:math:`A f < 1`). Unlike mixing with the uniform distribution, this leaves well-supported
probabilities almost untouched. The pscore is :math:`\\hat\\mu(a_i \\mid s_i)` after flooring.

Diagnostics: the cross-fitted log-loss :math:`-\\frac1n\\sum_i \\log\\hat\\mu(a_i \\mid s_i)`
against the log-loss of the marginal action frequencies (an uninformative model), and a
calibration table over all (row, action) pairs: in bins of the predicted probability
:math:`\\hat\\mu(a \\mid s_i)` (equal-count bins), the mean prediction against the observed
frequency of :math:`a_i = a`; ``ece`` is the count-weighted mean absolute gap.

A result always says ``propensity_source == "estimated"`` so the report can state it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ope.errors import OPEError
from ope.reward_model import _check_xy, _sample, _threads, episode_folds
from ope.types import FloatArray, IntArray

__all__ = [
    "BehaviourModelConfig",
    "BehaviourModelResult",
    "CalibrationTable",
    "FittedBehaviourModel",
    "PropensityComparison",
    "PropensityChoice",
    "fit_behaviour_model",
    "floor_probabilities",
    "calibration_table",
    "compare_propensities",
    "choose_propensities",
]


@dataclass(frozen=True)
class BehaviourModelConfig:
    """How :func:`fit_behaviour_model` estimates :math:`\\hat\\mu(a \\mid s)`."""

    kind: Literal["logistic", "hgb"] = field(
        default="logistic",
        metadata={
            "help": "multinomial logistic regression (standardised states) or "
            "gradient-boosted trees",
            "choices": ("logistic", "hgb"),
        },
    )
    n_folds: int = field(default=5, metadata={"help": "cross-fitting folds (by episode)", "min": 2})
    max_train_rows: int = field(
        default=200_000,
        metadata={
            "help": "rows sampled for each fit (speed); predictions cover all rows",
            "min": 100,
        },
    )
    propensity_floor: float = field(
        default=1e-3,
        metadata={
            "help": "smallest estimated probability (rows renormalised exactly)",
            "gt": 0,
            "lt": 1,
        },
    )
    C: float = field(
        default=1.0, metadata={"help": "logistic: inverse L2 regularisation strength", "gt": 0}
    )
    max_iter: int = field(default=200, metadata={"help": "logistic: solver iterations", "min": 1})
    boosting_iter: int = field(
        default=100,
        metadata={"help": "hgb: boosting iterations (each grows one tree per action)", "min": 1},
    )
    learning_rate: float = field(
        default=0.1, metadata={"help": "hgb learning rate", "gt": 0, "max": 1}
    )
    max_leaf_nodes: int = field(default=31, metadata={"help": "hgb leaves per tree", "min": 2})
    min_samples_leaf: int = field(
        default=20, metadata={"help": "hgb minimum rows per leaf", "min": 1}
    )
    calibration_bins: int = field(
        default=10, metadata={"help": "equal-count bins of the calibration table", "min": 2}
    )
    early_stopping: bool = field(
        default=True,
        metadata={
            "help": "hgb: stop boosting after 10 iterations without improvement on a 10% split "
            "of the training rows (fewer trees: faster predictions, less overfitting)"
        },
    )
    seed: int = field(default=0, metadata={"help": "seed of folds, row sampling, models", "min": 0})
    threads: int = field(
        default=1, metadata={"help": "CPU threads for fitting and predicting", "min": 1}
    )

    def __post_init__(self) -> None:
        if self.kind not in ("logistic", "hgb"):
            raise OPEError(
                f"BehaviourModelConfig.kind == {self.kind!r}, must be 'logistic' or 'hgb'"
            )
        for name, lo in (
            ("n_folds", 2),
            ("max_train_rows", 100),
            ("max_iter", 1),
            ("boosting_iter", 1),
            ("max_leaf_nodes", 2),
            ("min_samples_leaf", 1),
            ("calibration_bins", 2),
            ("seed", 0),
            ("threads", 1),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise OPEError(
                    f"BehaviourModelConfig.{name} == {value!r}, must be an integer >= {lo}"
                )
        if not (isinstance(self.propensity_floor, int | float) and 0 < self.propensity_floor < 1):
            raise OPEError(
                f"BehaviourModelConfig.propensity_floor == {self.propensity_floor!r}, must be "
                "in (0, 1)"
            )
        if not (isinstance(self.C, int | float) and math.isfinite(self.C) and self.C > 0):
            raise OPEError(f"BehaviourModelConfig.C == {self.C!r}, must be > 0")
        if not (isinstance(self.learning_rate, int | float) and 0 < self.learning_rate <= 1):
            raise OPEError(
                f"BehaviourModelConfig.learning_rate == {self.learning_rate!r}, must be in (0, 1]"
            )


def floor_probabilities(
    probs: npt.ArrayLike, floor: float, *, out: FloatArray | None = None
) -> FloatArray:
    """Raise entries below ``floor`` to it and rescale the others so each row sums to 1.

    ``probs`` ``(n, A)`` non-negative rows (normalised first); returns an ``(n, A)`` float64
    array with every entry ``>= floor``, written to ``out`` when given (``out`` may be
    ``probs`` itself: rows are processed in blocks, each read before it is written). Requires
    ``A * floor < 1``.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise OPEError(f"probs: expected shape (n, A), got {p.shape}")
    n_actions = p.shape[1]
    if not (isinstance(floor, int | float) and 0 < floor and n_actions * floor < 1):
        raise OPEError(
            f"propensity_floor == {floor!r}: must be > 0 and < 1 / n_actions = "
            f"{1 / max(n_actions, 1):.6g} so that floored rows can still sum to 1"
        )
    if out is None:
        out = np.empty_like(p)
    elif out.shape != p.shape or out.dtype != np.float64:
        raise OPEError(f"out: expected a float64 array of shape {p.shape}")
    for lo in range(0, p.shape[0], _FLOOR_BLOCK):
        blk = p[lo : lo + _FLOOR_BLOCK]
        if not np.isfinite(blk).all() or (blk < 0).any():
            raise OPEError("probs: expected finite, non-negative probabilities")
        sums = blk.sum(axis=1, keepdims=True)
        if (sums <= 0).any():
            raise OPEError(f"probs: row {lo + int(np.flatnonzero(sums[:, 0] <= 0)[0])} sums to 0")
        q = blk / sums
        low = q < floor
        for _ in range(n_actions):
            free = 1.0 - floor * low.sum(axis=1, keepdims=True)
            rest = np.where(low, 0.0, q).sum(axis=1, keepdims=True)
            res = np.where(low, floor, q * (free / np.where(rest > 0, rest, 1.0)))
            new_low = (res < floor) & ~low
            if not new_low.any():
                break
            low |= new_low
        out[lo : lo + _FLOOR_BLOCK] = res
    return out


_FLOOR_BLOCK = 65536


@dataclass(frozen=True)
class CalibrationTable:
    """Reliability table of predicted action probabilities (arrays of shape ``(n_bins,)``).

    ``low``/``high``: the bin's predicted-probability range; ``count``: (row, action) pairs in
    it; ``mean_predicted``: their mean :math:`\\hat\\mu(a \\mid s)`; ``observed``: the share of
    them where ``a`` is the logged action. ``ece``: :math:`\\sum_b \\frac{n_b}{N}
    |\\text{observed}_b - \\text{mean\\_predicted}_b|`; ``max_gap``: the largest bin gap.
    """

    low: FloatArray
    high: FloatArray
    count: IntArray
    mean_predicted: FloatArray
    observed: FloatArray
    ece: float
    max_gap: float

    def rows(self) -> list[dict[str, float]]:
        """One dict per bin (for tables in reports)."""
        return [
            {
                "low": float(lo),
                "high": float(hi),
                "count": int(c),
                "mean_predicted": float(mp),
                "observed": float(ob),
            }
            for lo, hi, c, mp, ob in zip(
                self.low, self.high, self.count, self.mean_predicted, self.observed, strict=True
            )
        ]


def calibration_table(
    probs: npt.ArrayLike, actions: npt.ArrayLike, n_bins: int = 10, *, seed: int = 0
) -> CalibrationTable:
    """Calibration of ``probs`` ``(n, A)`` against logged ``actions`` ``(n,)``.

    Every (row, action) pair is a prediction :math:`p_{ia}` with outcome
    :math:`1[a_i = a]`. Bin edges are quantiles of the predictions (estimated on at most 10^6
    sampled pairs, seeded), so bins hold about equal numbers of pairs; empty bins are dropped.
    """
    p = np.asarray(probs, dtype=np.float64)
    a = np.asarray(actions)
    if p.ndim != 2 or a.shape != (p.shape[0],) or p.shape[0] == 0:
        raise OPEError(
            f"calibration: expected probs (n, A) and actions (n,), got {p.shape} and {a.shape}"
        )
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 2:
        raise OPEError(f"n_bins == {n_bins!r}, must be an integer >= 2")
    n, n_actions = p.shape
    rng = np.random.default_rng(seed)
    flat = p.reshape(-1)
    sample = (
        flat if flat.size <= 1_000_000 else flat[rng.choice(flat.size, 1_000_000, replace=False)]
    )
    inner = np.unique(np.quantile(sample, np.linspace(0, 1, n_bins + 1)[1:-1]))
    n_b = inner.size + 1
    count = np.zeros(n_b, dtype=np.int64)
    sum_p = np.zeros(n_b)
    hits = np.zeros(n_b)
    chunk = max(1, 4_000_000 // n_actions)
    for lo in range(0, n, chunk):
        pc = p[lo : lo + chunk]
        b = np.searchsorted(inner, pc, side="right")
        count += np.bincount(b.reshape(-1), minlength=n_b)
        sum_p += np.bincount(b.reshape(-1), weights=pc.reshape(-1), minlength=n_b)
        rows = np.arange(pc.shape[0])
        hits += np.bincount(b[rows, a[lo : lo + chunk]], minlength=n_b)
    keep = count > 0
    edges_lo = np.concatenate([[0.0], inner])
    edges_hi = np.concatenate([inner, [1.0]])
    mean_p = sum_p[keep] / count[keep]
    obs = hits[keep] / count[keep]
    gap = np.abs(obs - mean_p)
    return CalibrationTable(
        low=edges_lo[keep],
        high=edges_hi[keep],
        count=count[keep],
        mean_predicted=mean_p,
        observed=obs,
        ece=float(np.sum(count[keep] * gap) / count.sum()),
        max_gap=float(gap.max()),
    )


class FittedBehaviourModel:
    """A fitted :math:`\\hat\\mu`: ``model(states)`` gives floored ``(m, A)`` probabilities."""

    def __init__(
        self, model: Any, *, n_features: int, n_actions: int, floor: float, threads: int
    ) -> None:
        self._model = model
        self.name = "estimated_behaviour"
        self.n_features = n_features
        self.n_actions = n_actions
        self.floor = floor
        self._threads = threads
        classes = np.asarray(model.classes_, dtype=np.int64)
        self._classes = classes

    def raw(self, states: npt.ArrayLike) -> FloatArray:
        """Unfloored classifier probabilities ``(m, A)`` (0 for actions unseen in training)."""
        x = np.asarray(states)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise OPEError(
                f"states: expected shape (m, {self.n_features}) like the fitted states, got "
                f"{x.shape}"
            )
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float64)
        out = np.zeros((x.shape[0], self.n_actions), dtype=np.float64)
        with _threads(self._threads):
            out[:, self._classes] = self._model.predict_proba(x)
        return out

    def __call__(self, states: npt.ArrayLike) -> FloatArray:
        return floor_probabilities(self.raw(states), self.floor)

    def action_probs(self, states: npt.ArrayLike) -> FloatArray:
        """Policy-protocol look-alike (``name``, ``n_actions``, ``action_probs``), so the estimate
        can stand in for the logging policy; ``states`` as given to the fit (normalised or not)."""
        return self(states)


@dataclass(frozen=True)
class BehaviourModelResult:
    """Cross-fitted behaviour probabilities and diagnostics.

    ``probs`` ``(n, A)`` floored cross-fitted :math:`\\hat\\mu(\\cdot \\mid s_i)`; ``pscore``
    ``(n,)`` = ``probs[i, actions[i]]``; ``log_loss`` its mean negative log, ``baseline_log_loss``
    that of the marginal action frequencies (same folds), ``calibration`` the reliability table,
    ``share_floored`` the share of logged actions whose probability was raised to the floor.
    ``warnings``: solver non-convergence, many floored pscores, a model no better than the
    marginal frequencies.
    """

    probs: FloatArray
    pscore: FloatArray
    folds: IntArray
    model: FittedBehaviourModel
    log_loss: float
    baseline_log_loss: float
    calibration: CalibrationTable
    share_floored: float
    n_train_rows: int
    propensity_source: Literal["estimated"]
    warnings: tuple[str, ...]
    config: BehaviourModelConfig


def fit_behaviour_model(
    states: npt.ArrayLike,
    actions: npt.ArrayLike,
    groups: npt.ArrayLike,
    n_actions: int,
    *,
    config: BehaviourModelConfig | None = None,
) -> BehaviourModelResult:
    """Cross-fit :math:`\\hat\\mu(a \\mid s)`; see the module docstring.

    Shapes: ``states`` ``(n, d)``; ``actions`` ``(n,)`` int in ``[0, n_actions)``; ``groups``
    ``(n,)`` episode ids (folds never split an episode).
    """
    cfg = config if config is not None else BehaviourModelConfig()
    if not isinstance(cfg, BehaviourModelConfig):
        raise OPEError(f"config: expected a BehaviourModelConfig, got {type(cfg).__name__}")
    x, a, g = _check_xy(states, actions, groups, n_actions)
    n_actions = int(n_actions)
    if n_actions * cfg.propensity_floor >= 1:
        raise OPEError(
            f"propensity_floor == {cfg.propensity_floor!r} with {n_actions} actions: the floor "
            f"must be < 1 / n_actions = {1 / n_actions:.6g}"
        )
    folds = episode_folds(g, cfg.n_folds, cfg.seed)
    rng = np.random.default_rng(cfg.seed + 1)

    notes: list[str] = []

    def fit(rows: IntArray, label: str) -> FittedBehaviourModel:
        ya = a[rows]
        if np.unique(ya).size < 2:
            model: Any = _Constant(int(ya[0]))
        elif cfg.kind == "logistic":
            model = make_pipeline(
                StandardScaler(),
                LogisticRegression(C=cfg.C, max_iter=cfg.max_iter, random_state=cfg.seed),
            )
        else:
            model = HistGradientBoostingClassifier(
                max_iter=cfg.boosting_iter,
                learning_rate=cfg.learning_rate,
                max_leaf_nodes=cfg.max_leaf_nodes,
                min_samples_leaf=cfg.min_samples_leaf,
                early_stopping=cfg.early_stopping,
                n_iter_no_change=10,
                validation_fraction=0.1,
                random_state=cfg.seed,
            )
        with _threads(cfg.threads), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(x[rows], ya)
        if any(issubclass(w.category, ConvergenceWarning) for w in caught):
            notes.append(
                f"logistic regression did not converge in max_iter = {cfg.max_iter} "
                f"iterations ({label}); raise max_iter"
            )
        return FittedBehaviourModel(
            model,
            n_features=x.shape[1],
            n_actions=n_actions,
            floor=cfg.propensity_floor,
            threads=cfg.threads,
        )

    raw = np.empty((x.shape[0], n_actions), dtype=np.float64)
    base = np.empty(x.shape[0], dtype=np.float64)
    n_used = 0
    for k in range(cfg.n_folds):
        held = np.flatnonzero(folds == k)
        train_all = np.flatnonzero(folds != k)
        train = _sample(train_all, cfg.max_train_rows, rng)
        n_used = max(n_used, int(train.size))
        raw[held] = fit(train, f"fold {k}").raw(x[held])
        freq = np.bincount(a[train_all], minlength=n_actions) / train_all.size
        base[held] = floor_probabilities(freq[None, :], cfg.propensity_floor)[0, a[held]]
    full = fit(_sample(np.arange(x.shape[0]), cfg.max_train_rows, rng), "full data")
    rows = np.arange(x.shape[0])
    share_floored = float(np.mean(raw[rows, a] < cfg.propensity_floor))
    probs = floor_probabilities(raw, cfg.propensity_floor, out=raw)  # in place: saves (n, A)
    pscore = probs[rows, a]
    log_loss = float(-np.mean(np.log(pscore)))
    baseline = float(-np.mean(np.log(base)))
    if share_floored > 0.01:
        notes.append(
            f"{100 * share_floored:.1f}% of logged actions had an estimated "
            f"probability below the floor {cfg.propensity_floor:g}: importance weights "
            "of those rows are capped by the floor, not estimated"
        )
    if log_loss >= baseline:
        notes.append(
            f"the behaviour model's cross-fitted log-loss {log_loss:.4g} is no better "
            f"than the marginal action frequencies' {baseline:.4g}"
        )
    return BehaviourModelResult(
        probs=probs,
        pscore=pscore,
        folds=folds,
        model=full,
        log_loss=log_loss,
        baseline_log_loss=baseline,
        calibration=calibration_table(probs, a, cfg.calibration_bins, seed=cfg.seed),
        share_floored=share_floored,
        n_train_rows=n_used,
        propensity_source="estimated",
        warnings=tuple(notes),
        config=cfg,
    )


class _Constant:
    """Classifier for a training fold that saw a single action (sklearn refuses to fit it)."""

    def __init__(self, action: int) -> None:
        self.classes_ = np.array([action])

    def fit(self, x: FloatArray, y: IntArray) -> _Constant:
        return self

    def predict_proba(self, x: FloatArray) -> FloatArray:
        return np.ones((x.shape[0], 1))


@dataclass(frozen=True)
class PropensityComparison:
    """Logged against estimated pscores of the logged actions (rows with a logged value).

    ``median_ratio`` and ``share_outside_band`` use the ratio logged / estimated;
    ``corr_log`` is the Pearson correlation of the log pscores (nan when either is constant).
    """

    n_compared: int
    n_missing_logged: int
    mean_logged: float
    mean_estimated: float
    mean_abs_diff: float
    rmse: float
    corr_log: float
    median_ratio: float
    share_outside_band: float
    ratio_band: float

    def summary(self) -> str:
        """One sentence for a report."""
        return (
            f"{self.n_compared} logged propensities compared with estimated ones: median "
            f"ratio logged/estimated {self.median_ratio:.3g}, {100 * self.share_outside_band:.1f}"
            f"% outside [1/{self.ratio_band:g}, {self.ratio_band:g}], mean absolute difference "
            f"{self.mean_abs_diff:.3g}, correlation of logs {self.corr_log:.3f}"
            + (
                f"; {self.n_missing_logged} rows had no logged propensity"
                if self.n_missing_logged
                else ""
            )
        )


def _check_pscores(p: npt.ArrayLike, name: str, allow_nan: bool) -> FloatArray:
    arr = np.asarray(p)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.number):
        raise OPEError(f"{name}: expected a 1-d numeric array (n,), got {arr.dtype} {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    known = ~np.isnan(arr) if allow_nan else np.ones(arr.shape, dtype=bool)
    bad = known & ~((arr > 0) & (arr <= 1))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        what = "in (0, 1] or NaN (unknown)" if allow_nan else "in (0, 1]"
        raise OPEError(f"{name}: row {row} is {float(arr[row])!r}; propensities must be {what}")
    return arr


def compare_propensities(
    estimated: npt.ArrayLike, logged: npt.ArrayLike, *, ratio_band: float = 2.0
) -> PropensityComparison:
    """Summarise how logged pscores ``(n,)`` (NaN = unknown) agree with estimated ones."""
    est = _check_pscores(estimated, "estimated", allow_nan=False)
    log = _check_pscores(logged, "logged", allow_nan=True)
    if est.shape != log.shape:
        raise OPEError(
            f"expected estimated and logged of the same shape, got {est.shape} and {log.shape}"
        )
    if not (isinstance(ratio_band, int | float) and ratio_band > 1):
        raise OPEError(f"ratio_band == {ratio_band!r}, must be > 1")
    known = ~np.isnan(log)
    n_known = int(known.sum())
    if n_known == 0:
        raise OPEError(
            "logged: every propensity is NaN; nothing to compare (organic data has "
            "no logged propensities: use the estimated ones)"
        )
    e, lg = est[known], log[known]
    ratio = lg / e
    le, ll = np.log(e), np.log(lg)
    corr = float(np.corrcoef(le, ll)[0, 1]) if le.std() > 0 and ll.std() > 0 else math.nan
    return PropensityComparison(
        n_compared=n_known,
        n_missing_logged=int(log.size - n_known),
        mean_logged=float(lg.mean()),
        mean_estimated=float(e.mean()),
        mean_abs_diff=float(np.mean(np.abs(lg - e))),
        rmse=float(np.sqrt(np.mean((lg - e) ** 2))),
        corr_log=corr,
        median_ratio=float(np.median(ratio)),
        share_outside_band=float(np.mean((ratio > ratio_band) | (ratio < 1 / ratio_band))),
        ratio_band=float(ratio_band),
    )


@dataclass(frozen=True)
class PropensityChoice:
    """The pscores an estimator should use and where they came from."""

    pscore: FloatArray
    source: Literal["logged", "estimated"]
    n_missing_logged: int
    reason: str


def choose_propensities(
    logged: npt.ArrayLike | None,
    estimated: BehaviourModelResult | None,
    *,
    prefer: Literal["auto", "logged", "estimated"] = "auto",
) -> PropensityChoice:
    """Pick logged or estimated pscores for the whole dataset (never a per-row mix).

    ``auto``: logged ones when every row has one, else estimated ones (an error when none were
    fitted). ``logged``: logged ones, an error if any is missing. ``estimated``: estimated ones.
    """
    if prefer not in ("auto", "logged", "estimated"):
        raise OPEError(f"prefer == {prefer!r}, must be 'auto', 'logged' or 'estimated'")
    log = None if logged is None else _check_pscores(logged, "logged", allow_nan=True)
    n_missing = int(np.isnan(log).sum()) if log is not None else -1
    if estimated is not None and log is not None and estimated.pscore.shape != log.shape:
        raise OPEError(
            f"expected logged pscores of shape {estimated.pscore.shape} like the "
            f"behaviour model's rows, got {log.shape}"
        )
    if prefer == "logged" or (prefer == "auto" and log is not None and n_missing == 0):
        if log is None or n_missing:
            raise OPEError(
                f"logged: {'no propensities given' if log is None else f'{n_missing} rows have none'}"
                "; fit a behaviour model and use prefer='estimated' (or 'auto')"
            )
        return PropensityChoice(log, "logged", 0, "every decision has a logged propensity")
    if estimated is None:
        raise OPEError(
            "estimated: no behaviour model given but logged propensities are "
            + ("absent" if log is None else f"missing on {n_missing} rows")
            + "; call fit_behaviour_model first"
        )
    reason = (
        "requested"
        if prefer == "estimated"
        else "no logged propensities"
        if log is None or n_missing == log.size
        else f"{n_missing} of {log.size} rows lack a logged propensity"
    )
    return PropensityChoice(
        estimated.pscore, "estimated", max(n_missing, 0), f"estimated propensities used: {reason}"
    )
