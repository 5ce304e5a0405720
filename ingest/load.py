"""Loading raw log files into the warehouse, one file per transaction.

For each file (docs/ingest.md has the full story):

1. hash it (SHA-256); the same content, mapping and session gap as its loaded version is a
   no-op (``unchanged``);
2. open it as a DuckDB view and check the mapping's columns exist; with ``[ingest]
   pseudonymise``, ``sql/stg_pseudonymise.sql`` replaces the listed columns by their keyed
   pseudonyms right there, so nothing after it sees a raw id; ``sql/stg_events.sql``
   defines the typed, validated rows as a view over it (nothing is copied), and
   ``sql/stg_keys.sql`` reads it once into a small keys table (row number, event id, verdict);
3. ``BEGIN``; if an earlier version was loaded, delete its events and rejected rows;
4. invalid rows go to ``rejected_events`` with the reason and row number;
5. ``sql/stg_duplicates.sql`` finds repeated event ids (within the file, or already loaded);
6. without source session ids, ``sql/stg_sessions.sql`` rebuilds sessions for the users touched;
7. ``sql/stg_insert_events.sql`` reads the view a second time and inserts the other rows;
8. counts are taken back from the tables and must satisfy
   ``rows_read = loaded + rejected + duplicate``; an ``ingest_log`` row records them;
   ``COMMIT``.

Any error in 2-8 rolls back, so a bad file, a crash or an interrupt leaves the warehouse
exactly as it was; the file is reported ``failed`` and the next file loads. Memory stays
bounded by the keys table (tens of bytes per row), not by the file.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from ingest.config import IngestConfig
from ingest.errors import IngestError, MappingError
from ingest.mapping import CANONICAL_COLUMNS, Mapping, load_mapping
from ingest.pseudonymise import (
    PseudonymKey,
    check_embedded_user_ids,
    check_pseudonym_record,
    install_pseudonymiser,
    load_pseudonym_key,
    pseudonym_columns,
    redact,
)
from ingest.report import FileReport, IngestReport
from ingest.sources import (
    RAW_VIEW,
    SourceFile,
    SourceSchema,
    discover,
    file_sha256,
    open_source,
    ts_kind,
)
from ingest.warehouse import open_warehouse
from sql.loader import quote_ident, read_sql, run_sql

__all__ = ["ingest_paths", "load_file", "resolve_mapping", "Progress"]

#: Progress callback: receives one human-readable line per update (files, rows, current file).
Progress = Callable[[str], None]

_NULL_COL = "__offrec_null"
_FILE_VIEW = "_offrec_file"
_ROW_COL = "__offrec_row"
_TEMP_OBJECTS = (
    ("VIEW", "_offrec_typed"),
    ("VIEW", "_offrec_src"),
    ("VIEW", "_offrec_raw"),
    ("VIEW", _FILE_VIEW),
    ("TABLE", "_offrec_keys"),
    ("TABLE", "_offrec_skip"),
    ("TABLE", "_offrec_dup"),
    ("TABLE", "_offrec_sessions"),
    ("TABLE", "_offrec_gone_users"),
    ("TABLE", "_offrec_csv_errors"),
    ("TABLE", "_offrec_csv_scans"),
)
_BAR = 24
_UTC_NAMES = frozenset({"UTC", "ETC/UTC", "GMT", "ETC/GMT", "UCT", "ETC/UCT", "ZULU", "ETC/ZULU"})


def resolve_mapping(cfg: IngestConfig) -> Mapping:
    """The mapping a config selects: ``mapping_file`` when set, else the built-in ``mapping``."""
    return load_mapping(cfg.mapping_file if cfg.mapping_file is not None else cfg.mapping)


def ingest_paths(
    warehouse: Path | str,
    inputs: Path | str,
    cfg: IngestConfig | None = None,
    date: str | None = None,
    progress: Progress | None = None,
    *,
    mapping: Mapping | None = None,
    force: bool = False,
    protected: Sequence[Path | str] = (),
) -> IngestReport:
    """Load every raw log file under ``inputs`` into the warehouse; one transaction per file.

    ``inputs``: a file, a directory, a glob or a ``dt=YYYY-MM-DD/`` tree; ``date`` keeps only
    the ``dt=<date>`` partition. ``mapping`` overrides the one ``cfg`` names; ``force`` reloads
    files even when they are unchanged (their rows are replaced). With ``cfg.pseudonymise``
    the key is read first (docs/ingest.md, Pseudonymised users): it must not lie in the
    warehouse's directory nor under a ``protected`` directory (offrec passes its datasets and
    runs directories), and must be the key the warehouse was loaded with. Refused files do
    not raise: they are reported with status ``failed`` after the other files loaded (call
    ``report.raise_for_failures()`` to turn them into an error). Raises :class:`IngestError`
    for problems that stop the whole run: no input files, a bad mapping, a locked warehouse.
    """
    cfg = cfg or IngestConfig()
    mapping = mapping or resolve_mapping(cfg)
    files, skipped = discover(inputs, mapping, date)
    if not files:
        extra = f" ({len(skipped)} file(s) with unknown extensions skipped)" if skipped else ""
        raise IngestError(f"input {inputs}: no raw log files found{extra}")
    key = load_pseudonym_key(cfg, warehouse=warehouse, protected=protected)
    report = IngestReport(warehouse=str(warehouse), skipped=[str(p) for p in skipped])
    con = open_warehouse(warehouse, threads=cfg.threads, memory_limit=cfg.memory_limit)
    try:
        check_pseudonym_record(con, cfg.pseudonymise, key)
        if key is not None:
            install_pseudonymiser(con, key)
            run_sql(con, "stg_pseudonym_macro.sql")
        # rows need no order (source_row is explicit); progress goes to `progress`, not stdout
        con.execute("SET preserve_insertion_order = false")
        con.execute("SET enable_progress_bar_print = false")
        tz = _check_timezone(con, mapping)
        rows_done = 0
        for i, src in enumerate(files):
            if progress is not None:
                progress(_bar(i, len(files), rows_done, src.path.name))
            result = load_file(
                con, src, mapping, cfg, timezone=tz, progress=progress, force=force, key=key
            )
            report.files.append(result)
            rows_done += result.rows_read if result.status in ("loaded", "replaced") else 0
        if progress is not None:
            progress(_bar(len(files), len(files), rows_done, "done"))
    finally:
        con.close()
    return report


def _bar(done: int, total: int, rows: int, current: str) -> str:
    filled = round(_BAR * done / max(total, 1))
    return (
        f"ingest [{'#' * filled}{'.' * (_BAR - filled)}] {done}/{total} files, "
        f"{rows:,} rows  {current}"
    )


def _check_timezone(con: duckdb.DuckDBPyConnection, mapping: Mapping) -> str:
    row = _first(
        con,
        "SELECT name FROM pg_timezone_names() WHERE lower(name) = lower($tz) "
        "ORDER BY name = $tz DESC LIMIT 1",
        {"tz": mapping.ts_timezone},
    )
    if row is None:
        raise MappingError(
            f"mapping {mapping.origin}: [values] ts_timezone = {mapping.ts_timezone!r} is not a "
            'time zone name; use e.g. "UTC", "Europe/Berlin" or "America/New_York"'
        )
    return str(row[0])


# --------------------------------------------------------------------------------------------
# one file


@dataclass(frozen=True)
class _Plan:
    """How the mapping applies to one opened file."""

    params: dict[str, Any]
    sessionise: bool


def load_file(
    con: duckdb.DuckDBPyConnection,
    src: SourceFile,
    mapping: Mapping,
    cfg: IngestConfig,
    *,
    timezone: str = "UTC",
    progress: Progress | None = None,
    force: bool = False,
    key: PseudonymKey | None = None,
) -> FileReport:
    """Load one file in one transaction on ``con`` (an open, writable warehouse).

    ``force`` loads it even when it equals its loaded version (the rows are replaced). With
    ``cfg.pseudonymise``, ``key`` must be the key :func:`ingest_paths` installed on ``con``.
    """
    if cfg.pseudonymise and key is None:
        raise IngestError(
            "load_file: [ingest] pseudonymise is set but no key was given; use ingest_paths, "
            "which reads the key and installs it on the connection"
        )
    t0 = time.perf_counter()
    path = str(src.path)
    base = FileReport(path=path, status="failed", format=src.format, size_bytes=src.size)
    if src.size == 0:
        base.message = (
            "the file is empty (0 bytes): no header and no rows; delete it or "
            "write at least a header"
        )
        return base
    stat = src.path.stat()
    current = _first(con, read_sql("stg_current_file.sql"), {"path": path})
    if current is not None and int(current[4]) == src.size and not force:
        # same size as the loaded version: probably unchanged, so hash before anything else
        digest = file_sha256(src.path)
        if _unchanged(current, digest, mapping, cfg):
            base.content_hash = digest
            return _unchanged_report(base, current, t0)
        hasher = _Hasher(src.path, digest)
    else:  # new or resized: it loads anyway, so hash on a helper thread meanwhile
        hasher = _Hasher(src.path)

    started = _utcnow()
    in_transaction = False
    try:
        # Staging only writes connection-local temp tables, so it runs before the transaction
        # (the staged table's rowid is then the plain 0-based file row).
        plan = _stage(con, src, mapping, timezone, progress, cfg.pseudonymise)
        con.execute("BEGIN TRANSACTION")
        in_transaction = True
        result = _load_staged(
            con, src, mapping, cfg, plan, base, current, started, progress, hasher, stat
        )
        con.execute("COMMIT")
        in_transaction = False
    except (IngestError, duckdb.Error) as exc:
        if in_transaction:
            con.execute("ROLLBACK")
        base.message = _message(exc, redacted=bool(cfg.pseudonymise))
        base.seconds = round(time.perf_counter() - t0, 3)
        return base
    except BaseException:
        if in_transaction:
            con.execute("ROLLBACK")
        raise
    finally:
        _reset_session(con)
    result.seconds = round(time.perf_counter() - t0, 3)
    return result


def _unchanged(current: tuple[Any, ...], digest: str, mapping: Mapping, cfg: IngestConfig) -> bool:
    content_hash, mapping_hash, gap = current[0], current[1], current[2]
    same_gap = gap is None or float(gap) == cfg.session_gap_s
    return content_hash == digest and mapping_hash == mapping.fingerprint() and same_gap


def _unchanged_report(base: FileReport, current: tuple[Any, ...], t0: float) -> FileReport:
    base.status = "unchanged"
    base.rows_read, base.rows_loaded, base.rows_rejected, base.rows_duplicate = (
        int(v) for v in current[5:9]
    )
    base.events_loaded = int(current[9])
    base.message = "same content and mapping as the loaded version; nothing to do"
    base.seconds = round(time.perf_counter() - t0, 3)
    return base


def _stage(
    con: duckdb.DuckDBPyConnection,
    src: SourceFile,
    mapping: Mapping,
    timezone: str,
    progress: Progress | None,
    pseudonymise: Sequence[str] = (),
) -> _Plan:
    """Open the file, check the mapping fits, define the typed view and read the keys.

    Runs before the file's transaction: it only creates connection-local temp objects.
    """
    if not pseudonymise:
        schema = open_source(con, src, mapping)
    else:
        schema = open_source(con, src, mapping, view=_FILE_VIEW)
        resolve = {name: schema.resolve(name) for name in _names_used(mapping, pseudonymise)}
        columns = pseudonym_columns(schema.columns, resolve, mapping, pseudonymise, str(src.path))
        check_embedded_user_ids(
            con, schema.columns, resolve, mapping, pseudonymise, columns, str(src.path)
        )
        if columns:
            con.execute("SET VARIABLE offrec_pseudo_cols = $v", {"v": list(columns)})
            run_sql(con, "stg_pseudonymise.sql")
        else:  # nothing of this file is listed (e.g. an optional session_id column is absent)
            con.execute(f"CREATE OR REPLACE TEMP VIEW {RAW_VIEW} AS SELECT * FROM {_FILE_VIEW}")
    plan = _plan(schema, mapping, src, timezone)
    streamed = src.format == "parquet"
    run_sql(con, "stg_source_rows_parquet.sql" if streamed else "stg_source_rows.sql")
    for name, value in plan.params.items():
        con.execute(f"SET VARIABLE {quote_ident(name)} = $value", {"value": value})
    # naive timestamps are read in the mapping's zone (until _reset_session)
    con.execute("SET TimeZone = $tz", {"tz": timezone})
    run_sql(con, "stg_events.sql")
    with _watch(con, progress, f"{src.path.name}: checking rows"):
        if streamed:  # Parquet: read twice (keys now, rows at insert), nothing held
            run_sql(con, "stg_rows_streamed.sql")
            run_sql(con, "stg_keys.sql")
        else:  # text: parse once into an ordered table, whose rowid numbers the rows
            con.execute("SET preserve_insertion_order = true")
            run_sql(con, "stg_stage_rows.sql")
            con.execute("SET preserve_insertion_order = false")
            run_sql(con, "stg_rows_staged.sql")
            run_sql(con, "stg_keys_staged.sql")
    return plan


def _load_staged(
    con: duckdb.DuckDBPyConnection,
    src: SourceFile,
    mapping: Mapping,
    cfg: IngestConfig,
    plan: _Plan,
    base: FileReport,
    current: tuple[Any, ...] | None,
    started: dt.datetime,
    progress: Progress | None,
    hasher: _Hasher,
    stat: os.stat_result,
) -> FileReport:
    """Steps 3-8 of the module docstring, inside the file's transaction."""
    path = str(src.path)
    file_param = {"source_file": path}
    if plan.sessionise:
        # users of the version being replaced keep correct sessions after their rows go
        run_sql(con, "stg_gone_users.sql", file_param)
    if current is not None:
        run_sql(con, "stg_delete_file_events.sql", file_param)
        run_sql(con, "stg_delete_file_rejects.sql", file_param)

    load_id = _scalar(con, read_sql("stg_next_load_id.sql"))
    stamp = {"source_file": path, "load_id": load_id, "ingested_at": started}
    run_sql(con, "stg_insert_rejected.sql", stamp)
    if src.format == "csv":
        run_sql(con, "stg_insert_malformed.sql", {**stamp, "redact": bool(cfg.pseudonymise)})
    run_sql(con, "stg_duplicates.sql")
    run_sql(con, "stg_skip_rows.sql")
    if plan.sessionise:
        run_sql(con, "stg_sessions.sql", {"gap_s": cfg.session_gap_s})
    else:
        run_sql(con, "stg_sessions_none.sql")
    with _watch(con, progress, f"{src.path.name}: loading rows"):
        run_sql(con, "stg_insert_events.sql", {"source_file": path, "ingested_at": started})
    if plan.params["has_responses"]:
        run_sql(con, "stg_insert_responses.sql", file_param)
    if plan.sessionise:
        run_sql(con, "stg_update_sessions.sql")

    counts = con.execute(read_sql("stg_file_counts.sql"), file_param).fetchall()[0]
    events, rejected, duplicate, parsed, malformed = (int(v) for v in counts)
    loaded = events
    if plan.params["has_responses"]:
        loaded = _scalar(con, read_sql("stg_file_rows_loaded.sql"), file_param)
    read = parsed + malformed
    if read != loaded + rejected + duplicate:
        raise IngestError(
            f"{path}: accounting mismatch: read {read:,} rows but loaded {loaded:,} + rejected "
            f"{rejected:,} + duplicate {duplicate:,}; nothing was loaded. This is a bug in "
            "offrec ingest: please report it with the file"
        )
    reasons = {
        str(code): int(n)
        for code, n in con.execute(read_sql("stg_reject_reasons.sql"), file_param).fetchall()
    }
    if read and rejected / read > cfg.max_rejected_share:
        raise IngestError(_too_many_rejects(con, path, read, rejected, reasons, mapping, cfg))
    now = src.path.stat()
    if (now.st_size, now.st_mtime_ns) != (stat.st_size, stat.st_mtime_ns):
        raise IngestError(
            f"{path}: the file changed while it was being loaded (still being written?); "
            "nothing was loaded from it: run ingest again once it is complete"
        )
    base.content_hash = hasher.result()
    status = "replaced" if current is not None else "loaded"
    run_sql(
        con,
        "stg_insert_ingest_log.sql",
        {
            "load_id": load_id,
            "path": path,
            "size_bytes": src.size,
            "content_hash": base.content_hash,
            "format": src.format,
            "mapping": mapping.name,
            "mapping_hash": mapping.fingerprint(),
            "session_gap_s": cfg.session_gap_s if plan.sessionise else None,
            "rows_read": read,
            "rows_loaded": loaded,
            "rows_rejected": rejected,
            "rows_duplicate": duplicate,
            "events_loaded": events,
            "status": status,
            "started_at": started,
            "finished_at": _utcnow(),
        },
    )
    base.status = status
    base.rows_read, base.rows_loaded, base.rows_rejected = read, loaded, rejected
    base.rows_duplicate, base.events_loaded = duplicate, events
    base.reject_reasons = reasons
    return base


def _plan(schema: SourceSchema, mapping: Mapping, src: SourceFile, timezone: str) -> _Plan:
    """Resolve the mapping against the file's columns into the parameters of stg_events.sql."""
    path = str(src.path)
    chosen: dict[str, str] = {}
    missing: list[str] = []
    for canon in CANONICAL_COLUMNS:
        spec = mapping.columns.get(canon)
        if spec is None or spec.kind != "column" or spec.name is None:
            continue
        actual = schema.resolve(spec.name)
        if actual is not None:
            chosen[canon] = actual
        elif not spec.optional:
            missing.append(f"column {spec.name!r} (mapping key [columns] {canon})")
    responses: list[tuple[str, str]] = []
    for etype, column in mapping.responses.items():
        actual = schema.resolve(column)
        if actual is None:
            missing.append(f"column {column!r} (mapping key [responses] {etype})")
        else:
            responses.append((actual, etype))
    if missing:
        raise MappingError(
            f"{path}: missing {'; '.join(missing)} of mapping {mapping.name!r} "
            f"({mapping.origin}); the file has columns: {_names(schema.columns)}. Fix the "
            "mapping or the file"
        )
    ts_col = chosen["ts"]
    kind = ts_kind(schema.type_of(ts_col))
    if kind is None:
        raise MappingError(
            f"{path}: column {ts_col!r} ([columns] ts) has type {schema.type_of(ts_col)}; a "
            "timestamp must be text (ISO-8601 or ts_format), a number (epoch) or a timestamp"
        )
    used = set(chosen.values()) | {c for c, _ in responses}
    extra = [c for c in schema.columns if c not in used]
    specs = mapping.columns

    def const(canon: str) -> str | None:
        spec = specs.get(canon)
        return spec.value if spec is not None and spec.kind == "value" else None

    def per_row(canon: str) -> bool:
        spec = specs.get(canon)
        return spec is not None and spec.kind == "per_row"

    et_from, et_to = mapping.event_type_pairs()
    ordered = [c for c in schema.columns if c in {c for c, _ in responses}]
    params: dict[str, Any] = {
        f"c_{canon}": [chosen.get(canon, _NULL_COL)] for canon in CANONICAL_COLUMNS
    }
    params.update(
        {
            "k_user_id": const("user_id"),
            "k_session_id": const("session_id"),
            "k_event_type": const("event_type"),
            "k_item_id": const("item_id"),
            "row_user_id": per_row("user_id"),
            "row_session_id": per_row("session_id"),
            "row_request_id": per_row("request_id"),
            "ts_kind": kind,
            "tz_is_utc": timezone.upper() in _UTC_NAMES,
            "ts_unit": mapping.ts_unit,
            "ts_format": mapping.ts_format or "%Y-%m-%d",
            "has_ts_format": bool(mapping.ts_format),
            "position_base": mapping.position_base,
            "et_from": et_from,
            "et_to": et_to,
            "c_responses": [*ordered, _NULL_COL],
            "resp_cols": [c for c, _ in responses] or [_NULL_COL],
            "resp_types": [t for _, t in responses] or [""],
            "has_responses": bool(responses),
            "has_extra": bool(extra),
            # with no extra columns the list leaves only the helper columns, so the (unevaluated)
            # extra expression still binds
            "not_extra": [*sorted(used), _NULL_COL, _ROW_COL] if extra else list(schema.columns),
        }
    )
    sessions_given = "session_id" in chosen or (
        "session_id" in specs and specs["session_id"].kind in ("value", "per_row")
    )
    params["key_columns"] = ["source_row", "event_id", "is_bad", "aux"] + (
        [] if sessions_given else ["user_id", "ts"]
    )
    return _Plan(params=params, sessionise=not sessions_given)


def _too_many_rejects(
    con: duckdb.DuckDBPyConnection,
    path: str,
    read: int,
    rejected: int,
    reasons: dict[str, int],
    mapping: Mapping,
    cfg: IngestConfig,
) -> str:
    first = _first(con, read_sql("stg_first_reject.sql"), {"source_file": path, "limit": 1})
    where = ""
    if first is not None:
        row, line, reason = first
        where = f"; e.g. {'row ' + str(row) if row is not None else 'line ' + str(line)}: {reason}"
    summary = ", ".join(f"{n:,} {code}" for code, n in reasons.items())
    return (
        f"{rejected:,} of {read:,} rows rejected ({rejected / read:.0%}: {summary}){where}. "
        f"That is more than [ingest] max_rejected_share = {cfg.max_rejected_share:g}, which "
        f"usually means mapping {mapping.name!r} does not fit this file; nothing was loaded. "
        "Fix the mapping, or raise max_rejected_share to load the valid rows"
    )


def _names(columns: tuple[str, ...], limit: int = 12) -> str:
    shown = ", ".join(repr(c) for c in columns[:limit])
    return shown + (f" … ({len(columns)} in all)" if len(columns) > limit else "")


_INTERNAL = (
    duckdb.BinderException,
    duckdb.ParserException,
    duckdb.CatalogException,
    duckdb.InternalException,
)


def _names_used(mapping: Mapping, pseudonymise: Sequence[str]) -> list[str]:
    """Source names pseudonym_columns() may look up: mapped columns and the listed names."""
    names = [s.name for s in mapping.columns.values() if s.kind == "column" and s.name]
    return [*names, *mapping.responses.values(), *pseudonymise]


def _message(exc: BaseException, *, redacted: bool = False) -> str:
    """One readable line from an IngestError or a DuckDB error.

    ``redacted`` (ids are pseudonymised): quoted parts of a DuckDB message are blanked, since
    DuckDB may quote the offending value or line.
    """
    if isinstance(exc, IngestError):
        return str(exc)
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    head = lines[0] if lines else type(exc).__name__
    if redacted:
        head = redact(head)
    if isinstance(exc, _INTERNAL):
        return f"internal error while loading (a bug in offrec ingest; please report): {head}"
    hint = ""
    low = head.lower()
    if "gzip" in low or "zstd" in low or "compress" in low:
        hint = "; the compressed file is truncated or corrupt: re-export or re-download it"
    elif "sniff" in low or "dialect" in low:
        hint = (
            "; DuckDB could not read it as CSV (corrupt, binary, or an unterminated quote): "
            "check the file, or set [source] delimiter/quote in the mapping"
        )
    elif "parquet" in low or "magic" in low:
        hint = "; the Parquet file is corrupt or truncated: re-export it"
    elif "json" in low:
        hint = "; fix the malformed JSON (each line must be one JSON object)"
    return f"cannot read the file: {head}{hint}"


def _reset_session(con: duckdb.DuckDBPyConnection) -> None:
    """Back to UTC and drop the per-file temp objects (outside the transaction)."""
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET preserve_insertion_order = false")
        existing = {
            (str(kind), str(name))
            for kind, name in con.execute(
                "SELECT 'TABLE', table_name FROM duckdb_tables() WHERE temporary "
                "UNION ALL SELECT 'VIEW', view_name FROM duckdb_views() WHERE temporary"
            ).fetchall()
        }
        for kind, name in _TEMP_OBJECTS:
            if (kind, name) in existing:
                con.execute(f"DROP {kind} {name}")
    except duckdb.Error:
        # the connection is unusable (e.g. interrupted); the caller's close() cleans up
        return


def _first(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None
) -> tuple[Any, ...] | None:
    """The first row of a query (fully fetched, so the connection is free afterwards)."""
    rows = con.execute(sql, params or {}).fetchall()
    return rows[0] if rows else None


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None) -> int:
    """The single integer a counting query returns."""
    return int(con.execute(sql, params or {}).fetchall()[0][0])


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class _Hasher:
    """SHA-256 of a file on a helper thread (hashlib releases the GIL while it hashes)."""

    def __init__(self, path: Path, digest: str | None = None) -> None:
        self._digest = digest
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if digest is None:
            self._thread = threading.Thread(target=self._run, args=(path,), daemon=True)
            self._thread.start()

    def _run(self, path: Path) -> None:
        try:
            self._digest = file_sha256(path)
        except OSError as exc:
            self._error = exc

    def result(self) -> str:
        if self._thread is not None:
            self._thread.join()
        if self._error is not None or self._digest is None:
            raise IngestError(f"cannot hash the file: {self._error}")
        return self._digest


class _watch:
    """While a long statement runs, report DuckDB's query progress in 10% steps.

    Polled every half second from a helper thread; the steps keep line-per-message progress
    consumers (logs) short, while a TTY bar still moves.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, progress: Progress | None, label: str):
        self.con, self.progress, self.label = con, progress, label
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        if self.progress is None:
            return
        shown = -1
        while not self._stop.wait(0.5):
            try:
                pct = self.con.query_progress()
            except duckdb.Error:
                return
            step = int(pct // 10) * 10
            if pct >= 0 and step > shown:
                shown = step
                self.progress(f"ingest   {self.label} {step}%")

    def __enter__(self) -> _watch:
        if self.progress is not None:
            self.con.execute("SET enable_progress_bar = true")
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
