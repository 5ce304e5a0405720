"""Errors raised by ingest."""

__all__ = ["IngestError", "WarehouseLockedError", "MappingError"]


class IngestError(ValueError):
    """Bad ingest input or config; the message names the file, row/key and the fix."""


class MappingError(IngestError):
    """A mapping TOML is invalid or does not fit a file; the message names the mapping key."""


class WarehouseLockedError(IngestError):
    """Another process holds the warehouse file open for writing.

    ``exit_code`` 4 matches ``offrec.errors.EXIT_LOCKED`` (ingest must not import offrec).
    """

    exit_code = 4
