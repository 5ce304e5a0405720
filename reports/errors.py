"""Errors raised while rendering reports."""

__all__ = ["ReportError"]


class ReportError(ValueError):
    """Missing or malformed results for a report; the message says what to run first."""
