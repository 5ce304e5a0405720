"""``offrec bench ingest``: our validated load vs a plain DuckDB ``CREATE TABLE AS``.

Input (scale 1): 10,000,000 events in the canonical raw schema, written once as Parquet
(timestamps as TIMESTAMPTZ, like the simulator) and once as CSV (ISO-8601 ``...Z`` strings).
The events come from :mod:`offrec.simulator`: a base simulation of ~200,000 events is tiled
(each copy shifted by the simulated period and given its own ids), because simulating 10M
events directly takes minutes and the load cost does not depend on how the rows were made.

* ours — :func:`ingest.ingest_paths` into a fresh warehouse: hashing, typing, every row rule,
  duplicate detection, ``rejected_events``, accounting, ``ingest_log``, one transaction;
* baseline — ``CREATE TABLE events AS SELECT * FROM read_parquet(...)`` /
  ``read_csv(...)`` in a fresh database file, same ``threads`` and ``memory_limit``.

Goal: ours >= 0.5x the plain load's speed (ratio >= 0.5), peak RSS <= 2 GB.

A third comparison prices ``[ingest] pseudonymise = ["user_id"]`` (an HMAC-SHA256 per row,
inside DuckDB): the Parquet load with it against the same load without it.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from offrec.bench import BenchOptions, BenchSuite, Comparison, Contender

__all__ = ["suite", "make_inputs", "plain_load", "our_load"]

_BASE_SESSIONS = 40_000
_KEY_ENV = "OFFREC_BENCH_PSEUDONYM_KEY"
_SHIFT_DAYS = 28


def make_inputs(directory: Path, n_events: int, seed: int) -> dict[str, Path]:
    """Write ``events.parquet`` and ``events.csv`` with ``n_events`` simulated events.

    Reuses files already made for the same ``n_events`` and ``seed`` in ``directory``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    tag = f"{n_events}-{seed}"
    paths = {"parquet": directory / f"events-{tag}.parquet", "csv": directory / f"events-{tag}.csv"}
    if all(p.exists() for p in paths.values()):
        return paths
    # imported only when needed: the simulator's libraries would add to the measured RSS
    from offrec.simulator import SimulatorConfig, write_logs

    base_dir = directory / f"base-{seed}"
    shutil.rmtree(base_dir, ignore_errors=True)
    sim = SimulatorConfig(format="parquet", n_days=_SHIFT_DAYS)
    sessions = max(50, min(_BASE_SESSIONS, n_events // 4))
    summary = write_logs(base_dir, sim, n_sessions=sessions, seed=seed, overwrite=True)
    base = str(summary.files[0])
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        n_base = int(
            con.execute("SELECT count(*) FROM read_parquet($p)", {"p": base}).fetchall()[0][0]
        )
        copies = -(-n_events // n_base)
        # copy k: ids suffixed with -k, timestamps shifted by k periods, so every event is
        # distinct and sessions of different copies never overlap
        tiled = (
            "SELECT event_id || '-' || k AS event_id, "
            "ts + to_days(CAST(k * $shift AS INTEGER)) AS ts, "
            "user_id || '-' || k AS user_id, session_id || '-' || k AS session_id, "
            "event_type, item_id, position, propensity, price, "
            "request_id || '-' || k AS request_id "
            "FROM read_parquet($p) CROSS JOIN range($copies) AS r(k) "
            "ORDER BY k, ts, event_id LIMIT $n"
        )
        params = {"p": base, "shift": _SHIFT_DAYS, "copies": copies, "n": n_events}
        con.sql(tiled, params=params).write_parquet(str(paths["parquet"]))
        as_text = (
            "SELECT * REPLACE (strftime(ts, '%Y-%m-%dT%H:%M:%S.%gZ') AS ts) FROM read_parquet($p)"
        )
        con.sql(as_text, params={"p": str(paths["parquet"])}).write_csv(
            str(paths["csv"]), header=True
        )
    finally:
        con.close()
        shutil.rmtree(base_dir, ignore_errors=True)
    return paths


def _fresh(path: Path) -> None:
    for suffix in ("", ".wal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    shutil.rmtree(Path(str(path) + ".tmp"), ignore_errors=True)


@contextmanager
def _bench_key() -> Iterator[None]:
    """A fixed pseudonym key in a bench-only environment variable, for the call only."""
    old = os.environ.get(_KEY_ENV)
    os.environ[_KEY_ENV] = "offrec-bench-pseudonym-key-0123456789"
    try:
        yield
    finally:
        if old is None:
            del os.environ[_KEY_ENV]
        else:
            os.environ[_KEY_ENV] = old


def our_load(warehouse: Path, source: Path, pseudonymise: tuple[str, ...] = ()) -> dict[str, Any]:
    """ingest_paths into ``warehouse`` with the default [ingest] settings (plus
    ``pseudonymise``, keyed by a fixed bench key)."""
    from ingest import IngestConfig, ingest_paths

    cfg = IngestConfig(mapping="simulator", pseudonymise=pseudonymise, pseudonym_key_env=_KEY_ENV)
    with _bench_key():
        report = ingest_paths(warehouse, source, cfg)
    f = report.files[0]
    if f.status != "loaded":
        raise RuntimeError(f"bench input refused: {f.message}")
    return {
        "rows_read": f.rows_read,
        "rows_loaded": f.rows_loaded,
        "rows_rejected": f.rows_rejected,
        "rows_duplicate": f.rows_duplicate,
    }


def plain_load(warehouse: Path, source: Path, fmt: str) -> dict[str, Any]:
    """``CREATE TABLE events AS SELECT * FROM read_<fmt>(source)`` with the same settings."""
    from ingest import IngestConfig

    cfg = IngestConfig()
    con = duckdb.connect(
        str(warehouse),
        config={"threads": cfg.threads, "memory_limit": cfg.memory_limit},
    )
    try:
        con.execute("SET enable_progress_bar = false")  # as ours: nothing printed meanwhile
        reader = "read_parquet" if fmt == "parquet" else "read_csv"
        con.execute(f"CREATE TABLE events AS SELECT * FROM {reader}($p)", {"p": str(source)})
        rows = int(con.execute("SELECT count(*) FROM events").fetchall()[0][0])
    finally:
        con.close()
    return {"rows": rows}


def suite(opts: BenchOptions) -> BenchSuite:
    n = max(1000, round(10_000_000 * opts.scale))
    t0 = time.perf_counter()
    inputs = make_inputs(opts.workdir / "ingest-inputs", n, opts.seed)
    made_s = time.perf_counter() - t0
    comparisons = []
    for fmt in ("parquet", "csv"):
        source = inputs[fmt]
        ours_db = opts.workdir / f"ours-{fmt}.duckdb"
        plain_db = opts.workdir / f"plain-{fmt}.duckdb"
        comparisons.append(
            Comparison(
                name=f"{n:,} events, {fmt}",
                ours=Contender(
                    "offrec ingest (validated)",
                    lambda w=ours_db, s=source: our_load(w, s),
                    setup=lambda w=ours_db: _fresh(w),
                ),
                baselines=(
                    Contender(
                        f"plain CTAS read_{fmt}",
                        lambda w=plain_db, s=source, f=fmt: plain_load(w, s, f),
                        setup=lambda w=plain_db: _fresh(w),
                    ),
                ),
                n_items=n,
                unit="events",
                goal="ratio >= 0.5 (at least half the plain load's speed), peak RSS <= 2 GB",
            )
        )
    pseudo_db, off_db = opts.workdir / "pseudo.duckdb", opts.workdir / "unpseudo.duckdb"
    comparisons.append(
        Comparison(
            name=f"{n:,} events, parquet, pseudonymise user_id",
            ours=Contender(
                "offrec ingest, pseudonymise = [user_id]",
                lambda: our_load(pseudo_db, inputs["parquet"], ("user_id",)),
                setup=lambda: _fresh(pseudo_db),
            ),
            baselines=(
                Contender(
                    "offrec ingest, no pseudonymisation",
                    lambda: our_load(off_db, inputs["parquet"]),
                    setup=lambda: _fresh(off_db),
                ),
            ),
            n_items=n,
            unit="events",
            goal="ratio >= 0.7 (the keyed hash costs at most ~30% of the load)",
        )
    )

    def cleanup() -> None:
        for fmt in ("parquet", "csv"):
            _fresh(opts.workdir / f"ours-{fmt}.duckdb")
            _fresh(opts.workdir / f"plain-{fmt}.duckdb")
        _fresh(pseudo_db)
        _fresh(off_db)

    sizes = ", ".join(f"{k} {p.stat().st_size / 2**20:,.0f} MiB" for k, p in inputs.items())
    notes = (
        f"{n:,} simulated events ({sizes}; made in {made_s:.0f} s, reused from "
        f"{inputs['parquet'].parent} when present); threads and memory_limit from [ingest] "
        "defaults for both"
    )
    return BenchSuite(stage="ingest", comparisons=tuple(comparisons), notes=notes, cleanup=cleanup)
