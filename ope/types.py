"""Array aliases shared by the OPE modules (shapes are given in each docstring)."""

from __future__ import annotations

from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = [
    "FloatArray",
    "IntArray",
    "BoolArray",
    "AnyArray",
    "RandomState",
    "IntervalMethod",
    "BootstrapScheme",
    "INTERVAL_METHODS",
    "BOOTSTRAP_SCHEMES",
]

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
AnyArray: TypeAlias = npt.NDArray[np.generic]

#: ``None`` (fresh entropy), an integer seed or a generator that is advanced in place.
RandomState: TypeAlias = int | np.random.Generator | None

IntervalMethod: TypeAlias = Literal["percentile", "normal"]
BootstrapScheme: TypeAlias = Literal["auto", "multinomial", "poisson"]

INTERVAL_METHODS: tuple[str, ...] = ("percentile", "normal")
BOOTSTRAP_SCHEMES: tuple[str, ...] = ("auto", "multinomial", "poisson")
