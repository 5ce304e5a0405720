"""Errors raised by ingest."""

__all__ = ["IngestError"]


class IngestError(ValueError):
    """Bad ingest input or config; the message names the file, row/key and the fix."""
