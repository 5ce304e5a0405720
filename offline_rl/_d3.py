"""Quiet access to d3rlpy.

Importing d3rlpy prints gym's deprecation banner and d3rlpy logs ``info`` lines (through
structlog, to stdout) when it builds datasets. Every use of d3rlpy in ``offline_rl`` goes through
:func:`d3rlpy_module` and :func:`quiet` so that nothing leaks to the user's terminal.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from types import ModuleType

__all__ = ["quiet", "d3rlpy_module"]

_MODULE: ModuleType | None = None


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Swallow stdout, stderr and warnings raised inside the block."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield


def d3rlpy_module() -> ModuleType:
    """``import d3rlpy`` once, silently, and return the module."""
    global _MODULE
    if _MODULE is None:
        with quiet():
            import d3rlpy

        _MODULE = d3rlpy
    return _MODULE
