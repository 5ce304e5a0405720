"""Errors raised by training and policy loading."""

__all__ = ["TrainError"]


class TrainError(ValueError):
    """Bad training input/config, or an incompatible model; the message says what to fix."""
