"""Opening the DuckDB warehouse file, creating ingest's tables, and checking them.

``open_warehouse`` turns DuckDB's lock and "not a database" errors into clear messages: DuckDB
lets one process write a database file at a time, so a second writer (or a reader while a
writer is open) gets :class:`~ingest.errors.WarehouseLockedError` naming the holder's PID.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb

from ingest.errors import IngestError, WarehouseLockedError
from sql.loader import list_sql, read_sql, run_sql

__all__ = [
    "open_warehouse",
    "ensure_schema",
    "check_warehouse",
    "WAREHOUSE_CHECKS",
    "TABLES",
    "EVENTS_COLUMNS",
]

#: Tables (and the view) ingest creates, in creation order.
TABLES: tuple[str, ...] = (
    "events",
    "rejected_events",
    "ingest_log",
    "ingest_files",
    "ingest_pseudonymisation",
)

_SCHEMA_FILES = (
    "stg_create_events.sql",
    "stg_create_rejected_events.sql",
    "stg_create_ingest_log.sql",
    "stg_create_ingest_files.sql",
    "stg_create_pseudonymisation.sql",
)

#: Whole-warehouse checks (``sql/checks/ingest_*.sql`` without parameters).
WAREHOUSE_CHECKS: tuple[str, ...] = (
    "checks/ingest_events_contract.sql",
    "checks/ingest_accounting.sql",
    "checks/ingest_duplicate_event_ids.sql",
    "checks/ingest_orphan_rows.sql",
    "checks/ingest_session_gaps.sql",
)

_PID = re.compile(r"PID (\d+)")


def open_warehouse(
    path: Path | str,
    *,
    read_only: bool = False,
    threads: int | None = None,
    memory_limit: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """Connect to the warehouse file; in write mode create it and ingest's tables if needed.

    Raises :class:`WarehouseLockedError` when another process holds the file, and
    :class:`IngestError` when the file is missing (read-only) or not a DuckDB database.
    Timestamps are UTC: the connection's TimeZone is set to UTC.
    """
    path = Path(path)
    if read_only and not path.exists():
        raise IngestError(f"warehouse {path} does not exist; load raw logs with `offrec ingest`")
    if path.exists() and path.is_dir():
        raise IngestError(f"warehouse {path} is a directory; give the path of a .duckdb file")
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {}
    if threads is not None:
        config["threads"] = threads
    if memory_limit is not None:
        config["memory_limit"] = memory_limit
    try:
        con = duckdb.connect(str(path), read_only=read_only, config=config)
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" in text.lower():
            pid = _PID.search(text)
            holder = f" (held by PID {pid.group(1)})" if pid else ""
            raise WarehouseLockedError(
                f"warehouse {path} is locked by another process{holder}; wait for it to "
                "finish (e.g. a running `offrec nightly` or an open duckdb shell) and retry"
            ) from None
        raise IngestError(f"warehouse {path}: cannot open it: {_first_line(text)}") from None
    except duckdb.Error as exc:
        raise IngestError(f"warehouse {path}: cannot open it: {_first_line(str(exc))}") from None
    try:
        con.execute("SET TimeZone = 'UTC'")
        if not read_only:
            ensure_schema(con)
    except BaseException:
        con.close()
        raise
    return con


#: ``events`` columns and types (docs/design.md section 2), in table order.
EVENTS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "VARCHAR"),
    ("ts", "TIMESTAMP"),
    ("user_id", "VARCHAR"),
    ("session_id", "VARCHAR"),
    ("event_type", "VARCHAR"),
    ("item_id", "VARCHAR"),
    ("position", "INTEGER"),
    ("propensity", "DOUBLE"),
    ("price", "DOUBLE"),
    ("request_id", "VARCHAR"),
    ("extra", "JSON"),
    ("source_file", "VARCHAR"),
    ("source_row", "BIGINT"),
    ("ingested_at", "TIMESTAMP"),
)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create ingest's tables (:data:`TABLES`) if absent.

    An existing ``events`` table must have the contract's columns (it may have been made by
    hand or by an older tool); otherwise :class:`IngestError` says what differs.
    """
    for name in _SCHEMA_FILES:
        run_sql(con, name)
    # ingest before 2026-11 left its per-file view in the warehouse (pointing at a raw file)
    con.execute("DROP VIEW IF EXISTS main._offrec_raw")
    have = tuple(
        (str(n), str(t).upper())
        for n, t in con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'events' AND table_schema = current_schema() "
            "ORDER BY ordinal_position"
        ).fetchall()
    )
    if have != EVENTS_COLUMNS:
        want = ", ".join(f"{n} {t}" for n, t in EVENTS_COLUMNS)
        got = ", ".join(f"{n} {t}" for n, t in have)
        raise IngestError(
            f"the warehouse's events table does not have the expected columns; it has ({got}), "
            f"ingest writes ({want}). Use a new warehouse file or rebuild this one"
        )


def check_warehouse(
    con_or_path: duckdb.DuckDBPyConnection | Path | str,
) -> dict[str, list[tuple[Any, ...]]]:
    """Run every whole-warehouse ingest check; returns {check file: offending rows}.

    All lists are empty on a healthy warehouse. The checks: stored counts agree with the
    tables and the accounting invariant; event ids are unique; no events without a loaded
    source file; rebuilt sessions have no gap above their session_gap_s and one user each.
    """
    if isinstance(con_or_path, duckdb.DuckDBPyConnection):
        return _run_checks(con_or_path)
    con = open_warehouse(con_or_path, read_only=True)
    try:
        return _run_checks(con)
    finally:
        con.close()


def _run_checks(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    available = set(list_sql("checks"))
    out: dict[str, list[tuple[Any, ...]]] = {}
    for name in WAREHOUSE_CHECKS:
        if name not in available:
            raise IngestError(f"sql/{name} is missing from the installed package")
        out[name] = con.execute(read_sql(name)).fetchall()
    return out


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
