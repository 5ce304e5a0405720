"""Input checks shared by every public OPE entry point.

Each check converts its argument to the array type the estimators compute with and raises
:class:`ope.errors.OPEError` naming the argument, the offending row and what to fix, e.g.
``expected action.shape[0] == reward.shape[0], got 10 and 12``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ope.errors import OPEError
from ope.types import (
    BOOTSTRAP_SCHEMES,
    INTERVAL_METHODS,
    AnyArray,
    FloatArray,
    IntArray,
    RandomState,
)

__all__ = [
    "ROW_SUM_TOLERANCE",
    "show",
    "as_float_vector",
    "as_int_vector",
    "as_id_vector",
    "check_same_length",
    "check_pscore",
    "check_probability",
    "as_action_dist",
    "check_action_range",
    "as_position",
    "as_reward_model",
    "check_hyperparameter",
    "check_alpha",
    "check_n_bootstrap",
    "check_method",
    "check_scheme",
    "make_rng",
]

#: How far a row of an action distribution may sum away from 1.
ROW_SUM_TOLERANCE = 1e-6


def show(value: Any) -> str:
    """A value for an error message: numpy scalars as plain Python (``0.5``, ``'a'``)."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask.ravel())[0])


def as_float_vector(name: str, value: Any) -> FloatArray:
    """A 1-d array of finite floats (booleans and integers are converted)."""
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise OPEError(f"{name} must be a 1-d array of shape (n,), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise OPEError(f"{name} is empty; OPE needs at least one logged decision")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise OPEError(f"{name} must hold numbers, got dtype {arr.dtype}")
    out = arr.astype(np.float64, copy=False)
    bad = ~np.isfinite(out)
    if bad.any():
        i = _first(bad)
        raise OPEError(f"{name}[{i}] = {show(out[i])}; {name} must be finite (no NaN or inf)")
    return out


def as_int_vector(name: str, value: Any, *, minimum: int | None = 0) -> IntArray:
    """A 1-d array of integers (integer dtype required, floats are not silently truncated)."""
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise OPEError(f"{name} must be a 1-d array of shape (n,), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise OPEError(f"{name} is empty; OPE needs at least one logged decision")
    if not np.issubdtype(arr.dtype, np.integer):
        raise OPEError(
            f"{name} must hold integers, got dtype {arr.dtype}; cast it with .astype(int)"
        )
    out = arr.astype(np.int64, copy=False)
    if minimum is not None and out.min() < minimum:
        i = _first(out < minimum)
        raise OPEError(f"{name}[{i}] = {out[i]}; {name} must be >= {minimum}")
    return out


def as_id_vector(name: str, value: Any) -> AnyArray:
    """A 1-d array of hashable ids (strings or integers), without missing values."""
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise OPEError(f"{name} must be a 1-d array of shape (n,), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise OPEError(f"{name} is empty; OPE needs at least one logged decision")
    if np.issubdtype(arr.dtype, np.floating):
        bad = np.isnan(arr)
        if bad.any():
            raise OPEError(f"{name}[{_first(bad)}] is NaN; every row needs an id")
    elif arr.dtype == object:
        bad = np.fromiter(
            (v is None or (isinstance(v, float) and math.isnan(v)) for v in arr),
            dtype=bool,
            count=arr.shape[0],
        )
        if bad.any():
            raise OPEError(f"{name}[{_first(bad)}] is missing (None/NaN); every row needs an id")
    return arr


def check_same_length(reference: tuple[str, np.ndarray], *others: tuple[str, Any]) -> None:
    """Every array has ``reference``'s first dimension."""
    ref_name, ref = reference
    for name, arr in others:
        if arr is None:
            continue
        if np.shape(arr)[0] != ref.shape[0]:
            raise OPEError(
                f"expected {name}.shape[0] == {ref_name}.shape[0], "
                f"got {np.shape(arr)[0]} and {ref.shape[0]}"
            )


def check_pscore(name: str, pscore: FloatArray) -> None:
    """Behaviour propensities must lie in (0, 1]."""
    bad = (pscore <= 0.0) | (pscore > 1.0)
    if bad.any():
        i = _first(bad)
        raise OPEError(
            f"{name}[{i}] = {show(pscore[i])}; propensities must be in (0, 1] "
            "(a logged action must have had a positive probability)"
        )


def check_probability(name: str, prob: FloatArray) -> None:
    """Target probabilities must lie in [0, 1]."""
    bad = (prob < 0.0) | (prob > 1.0)
    if bad.any():
        i = _first(bad)
        raise OPEError(f"{name}[{i}] = {show(prob[i])}; probabilities must be in [0, 1]")


def as_action_dist(name: str, value: Any) -> FloatArray:
    """``(n, n_actions)`` or ``(n, n_actions, len_list)`` probabilities -> 3-d float array.

    Each ``value[i, :, k]`` must be a distribution: entries in [0, 1] and a sum within
    :data:`ROW_SUM_TOLERANCE` of 1.
    """
    arr = np.asarray(value)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise OPEError(
            f"{name} must have shape (n, n_actions) or (n, n_actions, len_list), "
            f"got shape {np.shape(value)}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0 or arr.shape[2] == 0:
        raise OPEError(f"{name} is empty (shape {np.shape(value)})")
    if not np.issubdtype(arr.dtype, np.number):
        raise OPEError(f"{name} must hold probabilities, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    # Two passes without large temporaries: a row sum is finite iff every entry of the row is,
    # so the exact per-entry scans run only when something is wrong.
    sums = arr.sum(axis=1)
    if not np.isfinite(sums).all() and not np.isfinite(arr).all():
        i, a, k = np.unravel_index(_first(~np.isfinite(arr)), arr.shape)
        raise OPEError(f"{name}[{i}, {a}, {k}] is not finite; probabilities must be numbers")
    if arr.min() < 0.0:
        i, a, k = np.unravel_index(_first(arr < 0.0), arr.shape)
        raise OPEError(f"{name}[{i}, {a}, {k}] = {show(arr[i, a, k])}; probabilities must be >= 0")
    bad = np.abs(sums - 1.0) > ROW_SUM_TOLERANCE
    if bad.any():
        i, k = np.unravel_index(_first(bad), sums.shape)
        raise OPEError(
            f"{name}[{i}, :, {k}] sums to {show(sums[i, k])}; each row must be a probability "
            f"distribution over actions (sum 1 within {ROW_SUM_TOLERANCE:g})"
        )
    return arr


def check_action_range(name: str, action: IntArray, n_actions: int, dist_name: str) -> None:
    """Logged action ids must index ``dist_name``'s action axis."""
    bad = action >= n_actions
    if bad.any():
        i = _first(bad)
        raise OPEError(
            f"{name}[{i}] = {action[i]} is out of range: {dist_name} has {n_actions} actions "
            f"(ids 0..{n_actions - 1})"
        )


def as_position(value: Any, n: int, len_list: int) -> IntArray:
    """Slot of each decision; required when ``len_list > 1``, zeros when omitted."""
    if value is None:
        if len_list > 1:
            raise OPEError(
                f"position is required: action_dist has len_list = {len_list} slots "
                "(shape (n, n_actions, len_list)); pass the slot of each logged decision"
            )
        return np.zeros(n, dtype=np.int64)
    position = as_int_vector("position", value)
    if position.shape[0] != n:
        raise OPEError(
            f"expected position.shape[0] == action.shape[0], got {position.shape[0]} and {n}"
        )
    bad = position >= len_list
    if bad.any():
        i = _first(bad)
        raise OPEError(
            f"position[{i}] = {position[i]} is out of range: action_dist has len_list = "
            f"{len_list} (slots 0..{len_list - 1})"
        )
    return position


def as_reward_model(value: Any, dist_shape: tuple[int, ...]) -> FloatArray:
    """``estimated_rewards_by_reg_model``: finite, the same shape as the action distribution."""
    arr = np.asarray(value)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape != dist_shape:
        raise OPEError(
            "expected estimated_rewards_by_reg_model.shape == action_dist.shape, got "
            f"{np.shape(value)} and {dist_shape if dist_shape[2] > 1 else dist_shape[:2]}"
        )
    if not np.issubdtype(arr.dtype, np.number):
        raise OPEError(f"estimated_rewards_by_reg_model must hold numbers, got {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr.sum()) and not np.isfinite(arr).all():
        i, a, k = np.unravel_index(_first(~np.isfinite(arr)), arr.shape)
        raise OPEError(
            f"estimated_rewards_by_reg_model[{i}, {a}, {k}] is not finite; the reward model "
            "must predict a number for every (decision, action, slot)"
        )
    return arr


def check_hyperparameter(owner: str, name: str, value: Any, *, minimum: float = 0.0) -> None:
    """A real-valued hyper-parameter: a number, not NaN, ``>= minimum`` (inf allowed)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise OPEError(f"{owner}: {name} must be a number, got {show(value)}")
    if math.isnan(float(value)):
        raise OPEError(f"{owner}: {name} is NaN; give a number >= {minimum:g} (or inf)")
    if float(value) < minimum:
        raise OPEError(f"{owner}: {name} == {show(value)}, must be >= {minimum:g}")


def check_alpha(alpha: Any) -> float:
    """Interval level: ``0 < alpha < 1`` (0.05 gives a 95% interval)."""
    if isinstance(alpha, bool) or not isinstance(alpha, int | float | np.floating):
        raise OPEError(f"alpha must be a number in (0, 1), got {show(alpha)}")
    if not 0.0 < float(alpha) < 1.0:
        raise OPEError(f"alpha == {show(alpha)}, must be in (0, 1) (0.05 for a 95% interval)")
    return float(alpha)


def check_n_bootstrap(n_bootstrap: Any, *, name: str = "n_bootstrap") -> int:
    """Number of bootstrap resamples: an integer >= 10."""
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int | np.integer):
        raise OPEError(f"{name} must be a whole number, got {show(n_bootstrap)}")
    if int(n_bootstrap) < 10:
        raise OPEError(f"{name} == {n_bootstrap}, must be >= 10 (1000 is a good default)")
    return int(n_bootstrap)


def check_method(method: Any) -> str:
    if method not in INTERVAL_METHODS:
        raise OPEError(f"method == {method!r}, must be one of {', '.join(INTERVAL_METHODS)}")
    return str(method)


def check_scheme(scheme: Any) -> str:
    if scheme not in BOOTSTRAP_SCHEMES:
        raise OPEError(f"scheme == {scheme!r}, must be one of {', '.join(BOOTSTRAP_SCHEMES)}")
    return str(scheme)


def make_rng(random_state: RandomState) -> np.random.Generator:
    """``None`` / int seed / Generator -> Generator (a Generator is used, and advanced, as is)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, bool) or not isinstance(random_state, int | np.integer):
        raise OPEError(
            f"random_state must be None, an int seed or a numpy Generator, got {show(random_state)}"
        )
    if int(random_state) < 0:
        raise OPEError(f"random_state == {random_state}, must be >= 0")
    return np.random.default_rng(int(random_state))
