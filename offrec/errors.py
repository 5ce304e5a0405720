"""Exit codes and the error types the CLI maps to them."""

from __future__ import annotations

__all__ = [
    "EXIT_OK",
    "EXIT_UNEXPECTED",
    "EXIT_BAD_INPUT",
    "EXIT_GATE_FAILED",
    "EXIT_LOCKED",
    "OffrecError",
    "ConfigError",
    "GateFailedError",
    "LockedError",
    "user_error_types",
]

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_BAD_INPUT = 2
EXIT_GATE_FAILED = 3
EXIT_LOCKED = 4


class OffrecError(ValueError):
    """A problem with the user's config or input: exit code 2, message only."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(OffrecError):
    """The config file (or a command-line option) is invalid."""


class GateFailedError(OffrecError):
    """A data-quality gate failed."""

    exit_code = EXIT_GATE_FAILED


class LockedError(OffrecError):
    """Another offrec process holds the lock."""

    exit_code = EXIT_LOCKED


def user_error_types() -> tuple[type[BaseException], ...]:
    """Every error type that means "bad config or input" (exit 2, no traceback).

    Stage packages define their own ``ValueError`` subclasses so that they need not import
    ``offrec``; they are collected here lazily so importing this module stays cheap.
    """
    types: list[type[BaseException]] = [OffrecError]
    for module, name in [
        ("ingest.errors", "IngestError"),
        ("sql.errors", "BuildError"),
        ("offline_rl.errors", "TrainError"),
        ("ope.errors", "OPEError"),
        ("reports.errors", "ReportError"),
    ]:
        try:
            mod = __import__(module, fromlist=[name])
            types.append(getattr(mod, name))
        except (ImportError, AttributeError):
            continue
    return tuple(types)
