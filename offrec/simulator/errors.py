"""The simulator's error type."""

from __future__ import annotations

from offrec.errors import OffrecError

__all__ = ["SimulatorError"]


class SimulatorError(OffrecError):
    """Bad input to the simulator: a policy's output, an action space, user ids, an output dir."""
