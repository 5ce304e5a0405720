"""Errors raised while reading results and writing reports."""

__all__ = ["ReportError", "ReportWriteError"]


class ReportError(ValueError):
    """Missing or malformed results for a report; the message says what to run first."""

    exit_code = 2


class ReportWriteError(ReportError):
    """The report (or the index) could not be written; the message names the path.

    Exit code 1 (an IO failure, not bad input); earlier outputs are left untouched.
    """

    exit_code = 1
