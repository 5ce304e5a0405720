"""Errors raised by the dataset build."""

__all__ = ["BuildError"]


class BuildError(ValueError):
    """Bad build input or config; the message names the table/key and the fix."""
