"""Training progress reporting: a small protocol and a terminal progress bar."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

from offline_rl.errors import TrainError

__all__ = ["TrainProgress", "ProgressBar", "EpochLog", "CallbackProgress", "as_progress"]


class TrainProgress(Protocol):
    """Receives training events; ``train_algorithms(progress=...)`` calls it."""

    def start(self, name: str, n_steps: int) -> None: ...

    def advance(self, name: str, steps_done: int) -> None: ...

    def epoch(self, name: str, metrics: dict[str, Any]) -> None: ...

    def finish(self, name: str) -> None: ...


def _short(metrics: dict[str, Any]) -> str:
    parts = []
    for key in ("td_error", "initial_value", "agreement", "ips"):
        value = metrics.get(key)
        if isinstance(value, float):
            parts.append(f"{key}={value:.3g}")
    return " ".join(parts)


class ProgressBar:
    """One redrawn line per algorithm on a terminal: ``cql [#####-----] 5000/10000 …``."""

    def __init__(
        self, stream: TextIO | None = None, width: int = 24, min_interval_s: float = 0.2
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.min_interval_s = min_interval_s
        self._total = 1
        self._t0 = 0.0
        self._last_draw = 0.0
        self._suffix = ""

    def start(self, name: str, n_steps: int) -> None:
        self._total = max(1, n_steps)
        self._t0 = self._last_draw = time.perf_counter()
        self._suffix = ""
        self._draw(name, 0, force=True)

    def advance(self, name: str, steps_done: int) -> None:
        self._draw(name, steps_done)

    def epoch(self, name: str, metrics: dict[str, Any]) -> None:
        self._suffix = _short(metrics)
        self._draw(name, int(metrics.get("step", 0)), force=True)

    def finish(self, name: str) -> None:
        self.stream.write("\n")
        self.stream.flush()

    def _draw(self, name: str, done: int, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last_draw < self.min_interval_s:
            return
        self._last_draw = now
        filled = int(self.width * done / self._total)
        rate = done / max(now - self._t0, 1e-9)
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"\r{name:<11} [{bar}] {done}/{self._total} {rate:,.0f} upd/s {self._suffix}"
        self.stream.write(line.ljust(100))
        self.stream.flush()


class EpochLog:
    """One plain line per epoch (for logs that are not a terminal)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr

    def start(self, name: str, n_steps: int) -> None:
        self.stream.write(f"training {name}: {n_steps} updates\n")

    def advance(self, name: str, steps_done: int) -> None:
        return None

    def epoch(self, name: str, metrics: dict[str, Any]) -> None:
        self.stream.write(
            f"{name} epoch {metrics.get('epoch')} step {metrics.get('step')}: {_short(metrics)}\n"
        )
        self.stream.flush()

    def finish(self, name: str) -> None:
        return None


class CallbackProgress:
    """Adapts a ``message -> None`` callable (e.g. a job logger) to :class:`TrainProgress`."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say

    def start(self, name: str, n_steps: int) -> None:
        self.say(f"train {name}: {n_steps} updates")

    def advance(self, name: str, steps_done: int) -> None:
        return None

    def epoch(self, name: str, metrics: dict[str, Any]) -> None:
        self.say(
            f"train {name}: epoch {metrics.get('epoch')} step {metrics.get('step')} "
            f"{_short(metrics)}".rstrip()
        )

    def finish(self, name: str) -> None:
        self.say(f"train {name}: done")


def as_progress(progress: Any) -> TrainProgress | None:
    """``None``, a :class:`TrainProgress`, or a plain ``str -> None`` callable (adapted)."""
    if progress is None:
        return None
    if all(callable(getattr(progress, m, None)) for m in ("start", "advance", "epoch", "finish")):
        return progress
    if callable(progress):
        return CallbackProgress(progress)
    raise TrainError(
        f"progress must be a TrainProgress (start/advance/epoch/finish) or a callable taking a "
        f"message, got {type(progress).__name__}"
    )
