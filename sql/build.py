"""Build a versioned RL dataset from the warehouse ``events`` table.

``build_dataset`` runs the plain-SQL steps of this package in order, each a SELECT in its own
file, materialised as a table named after the file (in a scratch DuckDB file attached beside a
warehouse file and deleted afterwards; a temporary table for an in-memory warehouse)::

    int_sessions -> int_events -> int_decisions -> int_episodes -> int_item_actions
      -> int_rewards, int_session_state, int_history -> int_features
      -> fct_actions, fct_item_actions, fct_transitions, fct_episodes, fct_feature_stats

then the data-quality gates (``checks/dq_*.sql``, each returns offending rows). The fct_
writes, summary and gates happen in one transaction: a failing gate rolls the build back and raises
:class:`sql.errors.GateFailed`. The version id hashes the config, a fingerprint of the input
events and the code, so re-running the same build replaces that version's rows (never
duplicates them), and different versions coexist in the tables, keyed by ``dataset_version``.
After the commit the version's tables are copied to Parquet under ``datasets/<version>/``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from sql.config import RUNTIME_FIELDS, BuildConfig, parse_instant
from sql.errors import BuildError, GateFailed, WarehouseBusy
from sql.features import SCALAR_FEATURES, state_layout
from sql.fetch import one
from sql.loader import list_sql, quote_ident, read_sql, sql_params
from sql.schema import DATASET_TABLES, TABLES, create_tables
from sql.summary import compute_summary

__all__ = [
    "BuildResult",
    "GateResult",
    "build_dataset",
    "run_gates",
    "dataset_version_id",
    "code_version",
    "open_warehouse",
    "INT_STEPS",
    "EVENT_TYPES",
    "FUSED_CHECKS",
    "REQUIRED_EVENT_COLUMNS",
]

#: The intermediate steps, in execution order (each ``sql/<name>.sql`` -> temp table <name>).
INT_STEPS: tuple[str, ...] = (
    "int_sessions",
    "int_events",
    "int_decisions",
    "int_episodes",
    "int_item_actions",
    "int_rewards",
    "int_session_state",
    "int_history",
    "int_features",
)

#: Final steps and the table each one's rows go to.
_FCT_STEPS: tuple[tuple[str, str], ...] = (
    ("fct_actions", "actions"),
    ("fct_item_actions", "item_actions"),
    ("fct_transitions", "transitions"),
    ("fct_episodes", "episodes"),
)

EVENT_TYPES: tuple[str, ...] = ("impression", "view", "click", "add_to_cart", "purchase")

REQUIRED_EVENT_COLUMNS: dict[str, tuple[str, ...]] = {
    "event_id": ("VARCHAR",),
    "ts": ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"),
    "user_id": ("VARCHAR",),
    "session_id": ("VARCHAR",),
    "event_type": ("VARCHAR",),
    "item_id": ("VARCHAR",),
    "position": ("INTEGER", "BIGINT", "SMALLINT", "TINYINT"),
    "propensity": ("DOUBLE", "FLOAT"),
    "price": ("DOUBLE", "FLOAT"),
    "request_id": ("VARCHAR",),
}

_NO_START = datetime(1, 1, 1)
_NO_END = datetime(9999, 12, 31)
_SAMPLE_ROWS = 5

#: Decisions per batch of fct_transitions (its windows then fit in memory without spilling).
BATCH_DECISIONS = 1_000_000

Progress = Callable[[str], None]


@dataclass(frozen=True)
class GateResult:
    """Outcome of one data-quality gate: how many offending rows it found (0 = passed)."""

    check: str
    description: str
    n_offending: int
    columns: tuple[str, ...] = ()
    sample: tuple[tuple[Any, ...], ...] = ()
    seconds: float = 0.0  # wall time the check took

    @property
    def passed(self) -> bool:
        return self.n_offending == 0


@dataclass(frozen=True)
class BuildResult:
    """What a build produced. ``summary`` is also stored in ``dataset_versions.summary_json``."""

    version: str
    summary: dict[str, Any]
    parquet_dir: Path
    replaced: bool = False
    gates: tuple[GateResult, ...] = ()
    elapsed_s: float = 0.0
    warnings: tuple[str, ...] = field(default_factory=tuple)
    #: wall seconds of each phase of the build, in order (``step:int_events``,
    #: ``write:transitions``, ``gates``, ``commit``, ``parquet`` ...)
    timings: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# public entry points


def build_dataset(
    con_or_warehouse_path: duckdb.DuckDBPyConnection | str | Path,
    cfg: BuildConfig,
    *,
    datasets_dir: Path | str,
    progress: Progress | None = None,
) -> BuildResult:
    """Build (or rebuild) the dataset version ``cfg`` defines over the warehouse's events.

    ``con_or_warehouse_path`` is an open DuckDB connection or the warehouse file (opened with
    ``cfg.threads`` / ``cfg.memory_limit``). Returns the version id and summary; raises
    :class:`BuildError` for bad input (naming the table, key or rows and the fix) and
    :class:`GateFailed` (a BuildError) when a data-quality gate finds offending rows, in which
    case nothing of this build is kept.
    """
    if not isinstance(cfg, BuildConfig):
        raise BuildError(f"cfg must be a sql.config.BuildConfig, got {type(cfg).__name__}")
    t0 = time.perf_counter()
    clock = _Clock()
    datasets_dir = Path(datasets_dir)
    with _connection(con_or_warehouse_path, cfg) as con:
        with clock("fingerprint"):
            _check_events_table(con)
            fingerprint = _fingerprint(con)
        version = dataset_version_id(cfg, fingerprint)
        params = _step_params(cfg, version, fingerprint)
        _say(progress, f"building dataset {version}")
        with _scratch(con) as scratch:
            warnings = _run_int_steps(con, cfg, params, progress, clock, scratch)
            replaced, summary, gates = _write_and_gate(
                con, cfg, version, params, fingerprint, warnings, progress, clock
            )
        _say(progress, f"writing Parquet to {datasets_dir / version}")
        with clock("parquet"):
            parquet_dir = export_parquet(con, version, datasets_dir)
    return BuildResult(
        version=version,
        summary=summary,
        parquet_dir=parquet_dir,
        replaced=replaced,
        gates=tuple(gates),
        elapsed_s=time.perf_counter() - t0,
        warnings=tuple(warnings),
        timings=clock.seconds,
    )


def _write_and_gate(
    con: duckdb.DuckDBPyConnection,
    cfg: BuildConfig,
    version: str,
    params: dict[str, Any],
    fingerprint: dict[str, Any],
    warnings: list[str],
    progress: Progress | None,
    clock: _Clock,
) -> tuple[bool, dict[str, Any], list[GateResult]]:
    """The fct_ writes, summary and gates in one transaction (rolled back on any error)."""
    con.execute("BEGIN TRANSACTION")
    try:
        replaced = _write_version(con, cfg, version, params, progress, clock)
        with clock("summary"):
            summary = compute_summary(con, version, cfg, warnings=warnings)
            _write_version_row(con, cfg, version, params, fingerprint, summary)
        _say(progress, "running data-quality gates")
        with clock("gates"):
            gates = run_gates(con, version, raise_on_failure=True)
        with clock("commit"):
            con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return replaced, summary, gates


def run_gates(
    con: duckdb.DuckDBPyConnection, version: str, *, raise_on_failure: bool = True
) -> list[GateResult]:
    """Run every ``checks/dq_*.sql`` gate on one dataset version.

    Each gate returns the offending rows; with ``raise_on_failure`` the first failing gate
    raises :class:`GateFailed` with its name and up to 5 sample rows. The row-level gates
    (those :data:`FUSED_CHECKS` names) are first counted together by
    ``checks/fused_row_checks.sql`` in one pass over ``transitions``; a gate's own file runs
    (for its sample rows and count) only when its fused count is not zero, and a gate that
    passed there reports an equal share of the fused pass's wall time as its ``seconds``.
    """
    row = one(
        con.execute(
            "SELECT state_dim FROM dataset_versions WHERE dataset_version = $v", {"v": version}
        )
    )
    if row is None:
        raise BuildError(f"dataset version {version!r} is not in dataset_versions")
    values: dict[str, Any] = {"dataset_version": version, "state_dim": int(row[0])}
    fused, fused_s = _fused_counts(con, values)
    results: list[GateResult] = []
    for name in list_sql("checks"):
        check = Path(name).stem
        if not check.startswith("dq_"):
            continue
        text = read_sql(name)
        bound = _bind(text, values, name)
        if fused.get(check) == 0:
            # the columns the gate would return, from binding its query (not running it)
            columns = tuple(con.sql(text, params=bound).columns)
            share = round(fused_s / len(fused), 4)
            results.append(GateResult(check, _description(text), 0, columns, seconds=share))
            continue
        t0 = time.perf_counter()
        cur = con.execute(f"SELECT * FROM (\n{text}\n) AS offending LIMIT {_SAMPLE_ROWS}", bound)
        sample = cur.fetchall()
        columns = tuple(d[0] for d in cur.description or ())
        n = 0
        if sample:
            n = int(one(con.execute(f"SELECT count(*) FROM (\n{text}\n) AS o", bound))[0])
        seconds = round(time.perf_counter() - t0, 4)
        result = GateResult(check, _description(text), n, columns, tuple(sample), seconds)
        results.append(result)
        if n and raise_on_failure:
            raise GateFailed(
                check,
                list(sample),
                columns=columns,
                n_offending=n,
                version=version,
                description=result.description,
            )
    return results


#: The gates ``checks/fused_row_checks.sql`` counts in one pass (one column each).
FUSED_CHECKS: tuple[str, ...] = (
    "dq_propensity_range",
    "dq_finite_features",
    "dq_terminal_xor_timeout",
    "dq_next_state",
    "dq_action_range",
)


def _fused_counts(
    con: duckdb.DuckDBPyConnection, values: dict[str, Any]
) -> tuple[dict[str, int], float]:
    """Offending-row count of each of :data:`FUSED_CHECKS` and the pass's wall seconds."""
    name = "checks/fused_row_checks.sql"
    text = read_sql(name)
    t0 = time.perf_counter()
    cur = con.execute(text, _bind(text, values, name))
    row = one(cur)
    columns = [d[0] for d in cur.description or ()]
    if row is None or sorted(columns) != sorted(FUSED_CHECKS):
        raise BuildError(f"sql/{name} must return one row with the columns {FUSED_CHECKS}")
    # the sums are NULL for a version without transitions: nothing offends
    counts = {c: int(v or 0) for c, v in zip(columns, row, strict=True)}
    return counts, time.perf_counter() - t0


def dataset_version_id(cfg: BuildConfig, fingerprint: dict[str, Any]) -> str:
    """``ds-`` + 12 hex digits of sha256(config without runtime fields, input, code)."""
    config = dataclasses.asdict(cfg)
    for name in RUNTIME_FIELDS:
        config.pop(name, None)
    payload = {
        "config": config,
        "input": {k: str(v) for k, v in sorted(fingerprint.items())},
        "code": code_version(),
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return "ds-" + hashlib.sha256(blob).hexdigest()[:12]


def code_version() -> str:
    """Hash of every SQL file and the Python modules that shape the data."""
    h = hashlib.sha256()
    for name in list_sql() + list_sql("checks"):
        h.update(name.encode())
        h.update(read_sql(name).encode())
    base = resources.files("sql")
    for module in ("build.py", "features.py", "schema.py"):
        h.update(module.encode())
        h.update(base.joinpath(module).read_bytes())
    return h.hexdigest()[:12]


def open_warehouse(
    path: str | Path, *, threads: int = 2, memory_limit: str = "1500MB", read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """Open an existing warehouse file (BuildError naming the path when it is missing)."""
    path = Path(path)
    if not path.exists():
        raise BuildError(
            f"warehouse {path} does not exist; run `offrec ingest` first (or pass --warehouse)"
        )
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WarehouseBusy(
                f"warehouse {path} is in use by another process (DuckDB allows one writer); "
                "retry when it has finished"
            ) from None
        raise BuildError(f"cannot open warehouse {path}: {exc}") from None
    except duckdb.Error as exc:
        raise BuildError(f"cannot open warehouse {path}: {exc}") from None
    try:
        con.execute(f"SET threads = {int(threads)}")
        con.execute("SET memory_limit = $m", {"m": memory_limit})
        # row order of the build tables carries no meaning; not keeping it saves memory
        con.execute("SET preserve_insertion_order = false")
        con.execute("SET enable_progress_bar = false")
    except duckdb.Error as exc:
        con.close()
        raise BuildError(f"memory_limit = {memory_limit!r}: {exc}") from None
    return con


def export_parquet(con: duckdb.DuckDBPyConnection, version: str, datasets_dir: Path) -> Path:
    """Copy one version's tables to ``datasets_dir/<version>/<table>.parquet`` atomically."""
    target = Path(datasets_dir) / version
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    try:
        for table in DATASET_TABLES:
            cols = ", ".join(quote_ident(c.name) for c in TABLES[table])
            order = _PARQUET_ORDER.get(table, "")
            reader = con.sql(
                f"SELECT {cols} FROM {quote_ident(table)} WHERE dataset_version = $v {order}",
                params={"v": version},
            ).to_arrow_reader(_PARQUET_BATCH_ROWS)
            # Arrow's Parquet writer encodes the FLOAT[] state columns cheaper than DuckDB's
            # COPY; zstd level 1 and no dictionary for numbers (the dictionary attempt on the
            # ~d * n state floats costs a third of the export for a file ~9% smaller);
            # batches keep memory flat
            with pq.ParquetWriter(
                tmp / f"{table}.parquet",
                reader.schema,
                compression="zstd",
                compression_level=1,
                use_dictionary=_dictionary_columns(reader.schema),
            ) as writer:
                for batch in reader:
                    writer.write_batch(batch)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{version}.old.", dir=target.parent))
            os.replace(target, old / version)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


_PARQUET_BATCH_ROWS = 65_536


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    """The string columns: ids and labels repeat, so dictionary pages pay off there."""
    return [
        f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
    ]


_PARQUET_ORDER = {
    "actions": "ORDER BY action",
    "item_actions": "ORDER BY action, item_id",
    "feature_spec": 'ORDER BY "offset"',
    "episodes": "ORDER BY start_ts, episode_id",
}


# --------------------------------------------------------------------------------------------
# steps


def _run_int_steps(
    con: duckdb.DuckDBPyConnection,
    cfg: BuildConfig,
    params: dict[str, Any],
    progress: Progress | None,
    clock: _Clock,
    scratch: str,
) -> list[str]:
    warnings: list[str] = []
    last_use = _last_use()
    for i, step in enumerate(INT_STEPS, start=1):
        _say(progress, f"step {i}/{len(INT_STEPS)}: {step}")
        with clock(f"step:{step}"):
            _materialise(con, step, params, scratch)
            # free the tables no later step reads
            for done in INT_STEPS[:i]:
                if last_use[done] == step:
                    con.execute(f"DROP TABLE IF EXISTS {scratch}.{quote_ident(done)}")
        if step == "int_sessions":
            _check_sessions(con)
        elif step == "int_events":
            _check_events(con, cfg, params)
        elif step == "int_episodes":
            _check_episodes(con, cfg)
        elif step == "int_item_actions":
            n_top = one(con.execute("SELECT count(*) FROM int_item_actions WHERE NOT is_other"))[0]
            if n_top < cfg.top_n:
                warnings.append(
                    f"top_n = {cfg.top_n} but the train split has only {n_top} distinct "
                    f"decision items: the action space has {n_top} named actions + other"
                )
    return warnings


def _last_use() -> dict[str, str]:
    """For each int_ step, the last int_ step that reads it; "" (kept until the build ends)
    when a fct_ step reads it or no step does."""
    readers = [(step, read_sql(f"{step}.sql")) for step in INT_STEPS]
    final = " ".join(read_sql(f"{step}.sql") for step, _ in _FCT_STEPS)
    final += read_sql("fct_feature_stats.sql")
    last: dict[str, str] = {}
    for i, step in enumerate(INT_STEPS):
        ref = re.compile(rf"\b{step}\b")
        if ref.search(final):
            last[step] = ""
            continue
        last[step] = ""
        for later, text in readers[i + 1 :]:
            if ref.search(text):
                last[step] = later
    return last


def _write_version(
    con: duckdb.DuckDBPyConnection,
    cfg: BuildConfig,
    version: str,
    params: dict[str, Any],
    progress: Progress | None,
    clock: _Clock,
) -> bool:
    create_tables(con)
    _check_table_schemas(con)
    existed = (
        one(
            con.execute(
                "SELECT count(*) FROM dataset_versions WHERE dataset_version = $v", {"v": version}
            )
        )[0]
        > 0
    )
    for table in DATASET_TABLES:
        con.execute(f"DELETE FROM {quote_ident(table)} WHERE dataset_version = $v", {"v": version})
    n_actions = (
        int(one(con.execute("SELECT count(*) FROM int_item_actions WHERE NOT is_other"))[0]) + 1
    )
    values = {
        **params,
        "dataset_version": version,
        "none": n_actions,
        "bag_len": n_actions if cfg.item_encoding == "onehot" else 0,
    }
    for step, table in _FCT_STEPS:
        text = read_sql(f"{step}.sql")
        cols = ", ".join(quote_ident(c.name) for c in TABLES[table])
        insert = f"INSERT INTO {quote_ident(table)} ({cols})\nSELECT {cols} FROM (\n{text}\n) AS s"
        batches = _session_batches(con) if "sid_lo" in sql_params(text) else [(0, 0)]
        for i, (lo, hi) in enumerate(batches, start=1):
            part = f" (batch {i}/{len(batches)})" if len(batches) > 1 else ""
            _say(progress, f"writing {table} ({step}){part}")
            with clock(f"write:{table}"):
                con.execute(insert, _bind(text, {**values, "sid_lo": lo, "sid_hi": hi}, step))
    with clock("write:feature_spec"):
        _write_feature_spec(con, cfg, version, n_actions)
    return existed


def _session_batches(con: duckdb.DuckDBPyConnection) -> list[tuple[int, int]]:
    """(lo, hi] sid ranges of whole sessions holding about BATCH_DECISIONS decisions each."""
    his = [
        int(r[0])
        for r in con.execute(
            "SELECT max(sid) AS hi FROM (SELECT sid, sum(n_steps) OVER (ORDER BY sid "
            "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum FROM int_episodes) "
            "GROUP BY (cum - 1) // $batch ORDER BY hi",
            {"batch": BATCH_DECISIONS},
        ).fetchall()
    ]
    return list(zip([0, *his[:-1]], his, strict=True))


def _write_feature_spec(
    con: duckdb.DuckDBPyConnection, cfg: BuildConfig, version: str, n_actions: int
) -> None:
    cur = con.execute(read_sql("fct_feature_stats.sql"))
    row = one(cur)
    stats = dict(zip([d[0] for d in cur.description], row, strict=True))
    names, kinds = state_layout(cfg.last_k, n_actions, cfg.item_encoding)
    rows = []
    for offset, (name, kind) in enumerate(zip(names, kinds, strict=True)):
        mean, std = 0.0, 1.0
        if name in SCALAR_FEATURES:
            mean = float(stats[f"mean_{name}"] or 0.0)
            raw_std = stats[f"std_{name}"]
            std = float(raw_std) if raw_std is not None and float(raw_std) > 0 else 1.0
        rows.append((version, name, offset, kind, mean, std))
    con.executemany(
        'INSERT INTO feature_spec (dataset_version, name, "offset", kind, mean, std) '
        "VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )


def _write_version_row(
    con: duckdb.DuckDBPyConnection,
    cfg: BuildConfig,
    version: str,
    params: dict[str, Any],
    fingerprint: dict[str, Any],
    summary: dict[str, Any],
) -> None:
    start, end = cfg.window
    n_actions = int(summary["actions"]["n_actions"])
    config = dataclasses.asdict(cfg)
    con.execute(
        "INSERT INTO dataset_versions VALUES ($version, $created_at, $mode, $n_actions, "
        "$state_dim, $last_k, $item_encoding, $n_episodes, $n_transitions, $window_start, "
        "$window_end, $watermark, $input_events, $input_fingerprint, $code_version, $config, "
        "$summary)",
        {
            "version": version,
            "created_at": datetime.now(UTC).replace(tzinfo=None),
            "mode": cfg.mode,
            "n_actions": n_actions,
            "state_dim": len(state_layout(cfg.last_k, n_actions, cfg.item_encoding)[0]),
            "last_k": cfg.last_k,
            "item_encoding": cfg.item_encoding,
            "n_episodes": int(summary["episodes"]["total"]),
            "n_transitions": int(summary["decisions"]["total"]),
            "window_start": start,
            "window_end": end,
            "watermark": params["watermark"],
            "input_events": int(fingerprint["n_events"]),
            "input_fingerprint": int(fingerprint["fingerprint"]),
            "code_version": code_version(),
            "config": json.dumps(config, sort_keys=True, default=str),
            "summary": json.dumps(summary, sort_keys=True, default=str),
        },
    )


# --------------------------------------------------------------------------------------------
# parameters and input checks


def _step_params(cfg: BuildConfig, version: str, fingerprint: dict[str, Any]) -> dict[str, Any]:
    """Every ``$parameter`` the steps use; times as TIMESTAMPs and epoch microseconds."""
    start, end = cfg.window
    window_start = start or _NO_START
    window_end = end or _NO_END
    lookback = timedelta(days=cfg.lookback_days)
    load_start = window_start - lookback if start is not None else _NO_START
    max_ts = fingerprint["max_ts"]
    watermark = min(max_ts, window_end) if end is not None else max_ts
    if cfg.uses_split_dates:
        validation_start = parse_instant(cfg.validation_start or "", "validation_start")
        test_start = parse_instant(cfg.test_start or "", "test_start")
    else:
        validation_start = test_start = _NO_END
    w = cfg.reward
    return {
        "dataset_version": version,
        "window_start": window_start,
        "window_end": window_end,
        "load_start": load_start,
        "watermark": watermark,
        "watermark_us": _epoch_us(watermark),
        "mode": cfg.mode,
        "max_episode_len": cfg.max_episode_len,
        "session_gap_us": round(cfg.session_gap_s * 1e6),
        "use_split_dates": cfg.uses_split_dates,
        "validation_start_us": _epoch_us(validation_start),
        "test_start_us": _epoch_us(test_start),
        "train_frac": cfg.train_frac,
        "validation_frac": cfg.validation_frac,
        "top_n": cfg.top_n,
        "attribution_window_us": round(cfg.attribution_window_s * 1e6),
        "last_k": cfg.last_k,
        "last_k_minus_1": cfg.last_k - 1,
        "lookback_us": round(cfg.lookback_days * 86400 * 1e6),
        "w_click": w.click,
        "w_cart": w.add_to_cart,
        "w_purchase": w.purchase,
        "w_revenue": w.revenue,
    }


def _epoch_us(value: datetime) -> int:
    delta = value - datetime(1970, 1, 1)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _check_events_table(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'events' AND table_schema = current_schema()"
    ).fetchall()
    if not rows:
        raise BuildError(
            "the warehouse has no `events` table; load raw logs with `offrec ingest` first"
        )
    have = {name: dtype.upper() for name, dtype in rows}
    missing = [c for c in REQUIRED_EVENT_COLUMNS if c not in have]
    if missing:
        raise BuildError(
            f"table events lacks column(s) {', '.join(missing)} (docs/design.md section 2); "
            "re-create it with `offrec ingest`"
        )
    for name, allowed in REQUIRED_EVENT_COLUMNS.items():
        if have[name] not in allowed:
            raise BuildError(
                f"table events column {name} has type {have[name]}, expected "
                f"{' or '.join(allowed)}; cast it (e.g. ALTER TABLE events ALTER {name} "
                f"TYPE {allowed[0]})"
            )


def _fingerprint(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    n_events, max_ts, fingerprint = one(con.execute(read_sql("int_input_fingerprint.sql")))
    if not n_events:
        raise BuildError("table events is empty; load raw logs with `offrec ingest` first")
    bad = con.execute(
        "SELECT event_id, ts, user_id, session_id, event_type, item_id FROM events "
        "WHERE event_id IS NULL OR ts IS NULL OR user_id IS NULL OR session_id IS NULL "
        "OR trim(session_id) = '' OR event_type IS NULL OR item_id IS NULL LIMIT $n",
        {"n": _SAMPLE_ROWS},
    ).fetchall()
    if bad:
        raise BuildError(
            "table events has rows with an empty event_id, ts, user_id, session_id, event_type "
            f"or item_id (every decision needs a session); e.g. {bad[:3]}; fix or delete them"
        )
    if isinstance(max_ts, datetime) and max_ts.tzinfo is not None:
        max_ts = max_ts.astimezone(UTC).replace(tzinfo=None)
    return {"n_events": int(n_events), "max_ts": max_ts, "fingerprint": int(fingerprint)}


def _check_sessions(con: duckdb.DuckDBPyConnection) -> None:
    shared = one(
        con.execute(
            "SELECT session_id, user_id, user_id_max, count(*) OVER () FROM int_sessions "
            "WHERE user_id <> user_id_max ORDER BY session_id LIMIT 1"
        )
    )
    if shared:
        sid, u1, u2, n = shared
        raise BuildError(
            f"table events: session_id {sid!r} has events of several users (e.g. {u1!r} and "
            f"{u2!r}); {n} session id(s) are shared by users. Session ids must be unique "
            "across users: re-ingest so that sessions are per user"
        )


def _check_events(con: duckdb.DuckDBPyConnection, cfg: BuildConfig, params: dict[str, Any]) -> None:
    counts = dict(
        con.execute("SELECT event_type, count(*) FROM int_events GROUP BY event_type").fetchall()
    )
    unknown = sorted(t for t in counts if t not in EVENT_TYPES)
    if unknown:
        sample = con.execute(
            "SELECT event_id FROM int_events WHERE event_type = $t LIMIT 3", {"t": unknown[0]}
        ).fetchall()
        raise BuildError(
            f"table events: unknown event_type {unknown[0]!r} ({counts[unknown[0]]} rows, e.g. "
            f"event_id {sample[0][0]!r}); allowed: {', '.join(EVENT_TYPES)}. Fix the ingest "
            "mapping's event type values"
        )
    window = _window_text(cfg)
    if not counts:
        raise BuildError(
            f"no sessions start in the build window {window}; widen start_date/"
            "end_date or ingest more data"
        )
    if cfg.mode == "logged" and not counts.get("impression"):
        raise BuildError(
            f"mode = 'logged' needs impression events but there are none {window}; set "
            '[build] mode = "organic" to use interactions as decisions'
        )
    if cfg.mode == "organic" and not sum(counts.get(t, 0) for t in EVENT_TYPES[1:]):
        raise BuildError(
            f"mode = 'organic' needs view/click/add_to_cart/purchase events but there are none "
            f"{window}"
        )


def _check_episodes(con: duckdb.DuckDBPyConnection, cfg: BuildConfig) -> None:
    n_train = one(con.execute("SELECT count(*) FROM int_episodes WHERE split = 'train'"))[0]
    if n_train == 0:
        if cfg.uses_split_dates:
            first = one(con.execute("SELECT min(start_us) FROM int_episodes"))[0]
            raise BuildError(
                f"the train split is empty: validation_start = {cfg.validation_start!r} is not "
                f"after the first session start ({_from_us(first)}); move it later"
            )
        raise BuildError(
            "the train split is empty: too few episodes for train_frac = "
            f"{cfg.train_frac:g}; raise train_frac or ingest more sessions"
        )


def _check_table_schemas(con: duckdb.DuckDBPyConnection) -> None:
    for table, columns in TABLES.items():
        have = [
            r[0]
            for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = $t "
                "AND table_schema = current_schema() ORDER BY ordinal_position",
                {"t": table},
            ).fetchall()
        ]
        want = [c.name for c in columns]
        if have != want:
            raise BuildError(
                f"table {table} in the warehouse has columns {have}, expected {want}; it was "
                f"written by an incompatible offrec version: drop the build tables "
                f"({', '.join(TABLES)}) or use a new warehouse"
            )


def _window_text(cfg: BuildConfig) -> str:
    if cfg.start_date is None and cfg.end_date is None:
        return "in the events table"
    return f"in [start_date={cfg.start_date or '-inf'}, end_date={cfg.end_date or '+inf'})"


def _from_us(us: int | None) -> str:
    if us is None:
        return "?"
    return (datetime(1970, 1, 1) + timedelta(microseconds=int(us))).isoformat(sep=" ")


# --------------------------------------------------------------------------------------------
# plumbing


@contextmanager
def _connection(
    con_or_path: duckdb.DuckDBPyConnection | str | Path, cfg: BuildConfig
) -> Iterator[duckdb.DuckDBPyConnection]:
    if isinstance(con_or_path, duckdb.DuckDBPyConnection):
        yield con_or_path
        return
    if not isinstance(con_or_path, str | Path):
        raise BuildError(
            "build_dataset needs a DuckDB connection or a warehouse path, got "
            f"{type(con_or_path).__name__}"
        )
    con = open_warehouse(con_or_path, threads=cfg.threads, memory_limit=cfg.memory_limit)
    try:
        yield con
    finally:
        con.close()


def _bind(text: str, values: dict[str, Any], name: str) -> dict[str, Any]:
    needed = sql_params(text)
    missing = needed - values.keys()
    if missing:
        raise BuildError(f"sql/{name} needs parameters {sorted(missing)} the build does not set")
    return {k: values[k] for k in needed}


def _materialise(
    con: duckdb.DuckDBPyConnection, step: str, params: dict[str, Any], scratch: str
) -> None:
    text = read_sql(f"{step}.sql")
    con.execute(
        f"CREATE OR REPLACE {'TEMP ' if scratch == 'temp' else ''}TABLE "
        f"{scratch}.{quote_ident(step)} AS\n{text}",
        _bind(text, params, f"{step}.sql"),
    )


#: Catalog name of the on-disk scratch database the int_ tables are built in.
_SCRATCH = "offrec_build_scratch"


@contextmanager
def _scratch(con: duckdb.DuckDBPyConnection) -> Iterator[str]:
    """Attach a fresh on-disk DuckDB file beside the warehouse for the int_ tables; yields its
    schema name (``temp`` for an in-memory warehouse) and detaches and deletes it afterwards.

    Temporary tables are kept uncompressed in DuckDB's memory budget and spill uncompressed to
    the temp directory; tables of an attached database file are written compressed (DuckDB
    writes a bulk CREATE TABLE AS straight to the file), which keeps the 10M-event build far
    below ``memory_limit`` instead of spilling. Unqualified names resolve to the warehouse
    first, then the scratch database, so the SQL files stay catalog-free.
    """
    row = one(
        con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()")
    )
    if row is None or not row[0]:
        try:
            yield "temp"
        finally:
            _drop_int_tables(con, "temp")
        return
    base = Path(str(row[0]))
    folder = Path(tempfile.mkdtemp(prefix=f".{base.name}.build-", dir=base.parent))
    path = folder / "scratch.duckdb"
    search_path = one(con.execute("SELECT current_setting('search_path')"))[0]
    db = one(con.execute("SELECT current_database()"))[0]
    con.execute(f"ATTACH {_sql_str(str(path))} AS {_SCRATCH}")
    try:
        con.execute("SET search_path = $p", {"p": f"{_sql_name(db)}.main,{_SCRATCH}.main"})
        yield f"{_SCRATCH}.main"
    finally:
        try:
            con.execute("SET search_path = $p", {"p": search_path})
            con.execute(f"DETACH {_SCRATCH}")
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _sql_name(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _drop_int_tables(con: duckdb.DuckDBPyConnection, schema: str) -> None:
    for step in INT_STEPS:
        try:
            con.execute(f"DROP TABLE IF EXISTS {schema}.{quote_ident(step)}")
        except duckdb.Error:
            pass


def _description(text: str) -> str:
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    first = first.lstrip("-").strip()
    return first.split(":", 1)[1].strip() if ":" in first else first


class _Clock:
    """Accumulates wall seconds per named phase: ``with clock("gates"): ...``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - t0
            self.seconds[name] = round(self.seconds.get(name, 0.0) + elapsed, 4)


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)
