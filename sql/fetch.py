"""Fetching single rows without leaving a DuckDB result half-read.

DuckDB refuses new relations on a connection whose last ``execute`` result was not read to
the end, and ``fetchone`` leaves it open; :func:`one` reads the whole (one-row) result.
"""

from __future__ import annotations

from typing import Any

import duckdb

__all__ = ["one"]


def one(cur: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """The first row of an executed query (None when it returned no rows)."""
    rows = cur.fetchall()
    return rows[0] if rows else None
