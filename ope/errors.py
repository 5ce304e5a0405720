"""Errors raised by the OPE module."""

__all__ = ["OPEError"]


class OPEError(ValueError):
    """Invalid estimator input; the message names the argument and what is expected."""
