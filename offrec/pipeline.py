"""The batch job: ingest -> build -> train -> evaluate -> report, for ``nightly`` and ``demo``.

Guarantees (issue 8):

* **locked** — one job per project (:class:`offrec.locking.JobLock` on ``<runs>/.offrec.lock``);
* **idempotent** — a run id names its directory; re-running it redoes the stages with the same
  seeds and replaces their outputs (ingest skips unchanged files by content hash; a rebuilt
  dataset version replaces its own rows);
* **resumable** — ``resume=True`` skips the stages the manifest records as ``done``;
* **atomic outputs** — models, results and reports are written to temporary paths and renamed
  into place, and the manifest marks a stage ``done`` only after that;
* **observable** — the manifest and the warehouse ``runs`` table record status, timings, peak
  memory, row counts, inputs, dataset version, models, and the OPE summary.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb

from offrec.bench import PeakRSS
from offrec.config import OffrecConfig, config_hash, config_to_toml
from offrec.errors import (
    EXIT_GATE_FAILED,
    EXIT_OK,
    GateFailedError,
)
from offrec.locking import JobLock
from offrec.logs import log_event
from offrec.manifest import Manifest

__all__ = ["STAGES", "PipelineOptions", "PipelineOutcome", "run_pipeline", "apply_retention"]

STAGES: tuple[str, ...] = ("ingest", "build", "train", "evaluate", "report")


@dataclass(frozen=True)
class PipelineOptions:
    run_id: str
    kind: str = "nightly"
    date: str | None = None
    resume: bool = False
    stages: tuple[str, ...] = STAGES
    simulated: bool = False
    simulator_config: dict[str, Any] | None = None
    progress: Callable[[str], None] | None = None


@dataclass
class PipelineOutcome:
    exit_code: int
    run_dir: Path
    manifest: Manifest
    report_path: Path | None = None
    gate_failures: list[str] = field(default_factory=list)


class _Context:
    def __init__(self, cfg: OffrecConfig, opts: PipelineOptions, run_dir: Path, m: Manifest):
        self.cfg = cfg
        self.opts = opts
        self.run_dir = run_dir
        self.manifest = m
        self.gate_failures: list[str] = []


def run_pipeline(cfg: OffrecConfig, opts: PipelineOptions) -> PipelineOutcome:
    """Run the configured stages under the project lock; see the module docstring."""
    runs_dir = cfg.paths.runs
    runs_dir.mkdir(parents=True, exist_ok=True)
    with JobLock(runs_dir / ".offrec.lock", command=opts.kind,
                 timeout_s=cfg.nightly.lock_timeout_s) as lock:
        if lock.took_over is not None:
            log_event("took over a stale lock", holder=lock.took_over.describe())
        return _run_locked(cfg, opts)


def _run_locked(cfg: OffrecConfig, opts: PipelineOptions) -> PipelineOutcome:
    run_dir = cfg.paths.runs / opts.run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = run_dir / "manifest.json"
    partial = tuple(opts.stages) != STAGES
    if (opts.resume or partial) and manifest_path.exists():
        # resuming, or running some stages only: keep what earlier stages recorded
        manifest = Manifest.load(run_dir)
        manifest.status = "running"
    else:
        manifest = Manifest(run_id=opts.run_id, kind=opts.kind, date=opts.date)
    manifest.config_hash = config_hash(cfg)
    manifest.config_path = str(cfg.source) if cfg.source else None
    manifest.simulated = opts.simulated or _simulator_inputs(cfg) is not None
    (run_dir / "config.toml").write_text(config_to_toml(cfg))
    for name in STAGES:
        manifest.stage(name)
    manifest.save(run_dir)
    ctx = _Context(cfg, opts, run_dir, manifest)
    log_event("run started", run_id=opts.run_id, kind=opts.kind, run_dir=str(run_dir))

    runners: dict[str, Callable[[_Context], dict[str, Any]]] = {
        "ingest": _stage_ingest,
        "build": _stage_build,
        "train": _stage_train,
        "evaluate": _stage_evaluate,
        "report": _stage_report,
    }
    blocked_by_gate = False
    for name in STAGES:
        rec = manifest.stage(name)
        if name not in opts.stages:
            if rec.status != "done":
                rec.status = "skipped"
            continue
        if opts.resume and rec.status == "done":
            log_event(f"{name}: already done, skipped (--resume)")
            continue
        if blocked_by_gate and name in ("train", "evaluate"):
            rec.status = "skipped"
            rec.error = "skipped: the dataset failed a data-quality gate"
            manifest.save(run_dir)
            continue
        rec.status, rec.error = "running", None
        rec.started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        manifest.save(run_dir)
        log_event(f"{name}: started")
        t0 = time.perf_counter()
        try:
            with PeakRSS(interval=0.05) as peak:
                details = runners[name](ctx)
        except GateFailedError as exc:
            rec.status, rec.error = "failed", str(exc)
            rec.seconds = round(time.perf_counter() - t0, 3)
            ctx.gate_failures.append(f"{name}: {exc}")
            manifest.gates.append({"stage": name, "message": str(exc)})
            manifest.save(run_dir)
            log_event(f"{name}: data-quality gate failed", error=str(exc))
            blocked_by_gate = True
            continue
        except BaseException as exc:
            rec.status, rec.error = "failed", f"{type(exc).__name__}: {exc}"
            rec.seconds = round(time.perf_counter() - t0, 3)
            manifest.status = "failed"
            manifest.save(run_dir)
            log_event(f"{name}: failed", error=rec.error)
            raise
        rec.details = details
        rec.status = "done"
        rec.seconds = round(time.perf_counter() - t0, 3)
        rec.peak_rss_mb = round(peak.peak, 1)
        rec.finished_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        manifest.save(run_dir)
        log_event(f"{name}: done", seconds=rec.seconds, peak_rss_mb=rec.peak_rss_mb)

    exit_code = EXIT_GATE_FAILED if ctx.gate_failures else EXIT_OK
    manifest.status = "gate_failed" if ctx.gate_failures else "ok"
    manifest.exit_code = exit_code
    manifest.save(run_dir)
    if manifest.stage("report").status == "done":
        from reports import render_index

        render_index(cfg.paths.runs)  # again, now that the run's final status is saved
    _record_run(cfg, manifest)
    apply_retention(cfg.paths.runs, keep=cfg.nightly.keep_runs, protect=opts.run_id)
    report = Path(manifest.report_path) if manifest.report_path else None
    log_event("run finished", status=manifest.status, exit_code=exit_code)
    return PipelineOutcome(exit_code, run_dir, manifest, report, ctx.gate_failures)


# --------------------------------------------------------------------------------------------
# stages


def _simulator_inputs(cfg: OffrecConfig) -> Any:
    """The simulator config when ``[paths] inputs`` holds ``offrec simulate`` output, else None."""
    from offrec.simulator import load_simulation_config

    try:
        return load_simulation_config(cfg.paths.inputs)
    except Exception:  # noqa: BLE001 - not simulator output
        return None


def _stage_ingest(ctx: _Context) -> dict[str, Any]:
    from ingest import ingest_paths

    cfg = ctx.cfg
    report = ingest_paths(cfg.paths.warehouse, cfg.paths.inputs, cfg.ingest, date=ctx.opts.date,
                          progress=ctx.opts.progress,
                          protected=(cfg.paths.datasets, cfg.paths.runs))
    files = [f.to_dict() for f in report.files]
    ctx.manifest.inputs = files
    totals = report.totals()
    if report.failed_files():
        names = ", ".join(f.path for f in report.failed_files())
        log_event("some input files were refused", files=names)
    return {"files": len(files), **totals}


def _build_config(ctx: _Context) -> Any:
    cfg = ctx.cfg
    build_cfg = cfg.build
    if ctx.opts.kind == "nightly" and ctx.opts.date and hasattr(build_cfg, "end_date"):
        import datetime as dt

        end = dt.date.fromisoformat(ctx.opts.date) + dt.timedelta(days=1)
        start = end - dt.timedelta(days=cfg.nightly.window_days)
        build_cfg = replace(build_cfg, start_date=start.isoformat(), end_date=end.isoformat())
    return build_cfg


def _stage_build(ctx: _Context) -> dict[str, Any]:
    from sql.build import build_dataset
    from sql.errors import GateFailed

    cfg = ctx.cfg
    try:
        result = build_dataset(cfg.paths.warehouse, _build_config(ctx),
                               datasets_dir=cfg.paths.datasets, progress=ctx.opts.progress)
    except GateFailed as exc:
        raise GateFailedError(str(exc)) from None
    ctx.manifest.dataset_version = result.version
    write_data_summary(cfg, ctx.run_dir, result.summary, simulated=ctx.manifest.simulated)
    summary = result.summary
    return {"dataset_version": result.version,
            "episodes": summary.get("episodes", {}).get("total"),
            "decisions": summary.get("decisions", {}).get("total")}


def write_data_summary(cfg: OffrecConfig, run_dir: Path, build_summary: dict[str, Any], *,
                       simulated: bool) -> Path:
    """``data_summary.json`` for the report: the build summary plus ingest accounting."""
    from reports.model import DATA_SUMMARY, data_summary_from_build, write_json

    version = build_summary["version"]
    con = duckdb.connect(str(cfg.paths.warehouse), read_only=True)
    try:
        lo, hi = con.execute(
            "SELECT min(decision_ts), max(decision_ts) FROM transitions "
            "WHERE dataset_version = $v", {"v": version}).fetchone()
        tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        loaded = rejected = duplicate = 0
        reasons: dict[str, int] = {}
        if "events" in tables:
            loaded = int(con.execute(
                "SELECT count(*) FROM events WHERE ts >= $lo AND ts <= $hi",
                {"lo": lo, "hi": hi}).fetchone()[0])
        if "ingest_log" in tables:
            rejected, duplicate = (int(x or 0) for x in con.execute(
                "SELECT sum(rows_rejected), sum(rows_duplicate) FROM (SELECT rows_rejected, "
                "rows_duplicate, row_number() OVER (PARTITION BY path ORDER BY load_id DESC) "
                "AS k FROM ingest_log) AS latest WHERE k = 1").fetchone())
        if "rejected_events" in tables:
            reasons = {str(r): int(c) for r, c in con.execute(
                "SELECT reason, count(*) FROM rejected_events GROUP BY reason").fetchall()}
    finally:
        con.close()
    ds = data_summary_from_build(
        build_summary, data_source="simulator" if simulated else "logs", date_range=(lo, hi),
        events_loaded=loaded, events_rejected=rejected, events_duplicate=duplicate,
        rejected_reasons=reasons)
    path = Path(run_dir) / DATA_SUMMARY
    write_json(path, ds.to_dict())
    return path


def _stage_train(ctx: _Context) -> dict[str, Any]:
    from offline_rl.train import train_algorithms
    from sql.dataset import load_action_space, load_feature_spec, load_transitions

    cfg = ctx.cfg
    version = ctx.manifest.dataset_version
    wh = cfg.paths.warehouse
    data = load_transitions(wh, version=version)
    spec = load_feature_spec(wh, version=version)
    actions = load_action_space(wh, version=version)
    staging = ctx.run_dir / ".train-staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    models = train_algorithms(data.for_split("train"), data.for_split("validation"), spec,
                              actions, cfg.train, staging, progress=ctx.opts.progress)
    final = ctx.run_dir / "models"
    old = ctx.run_dir / ".models-old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    (staging / "models").rename(final)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
    ctx.manifest.models = {name: str(final / name) for name in models}
    return {"models": sorted(models)}


def _stage_evaluate(ctx: _Context) -> dict[str, Any]:
    from offrec.evaluation import evaluate_run

    result = evaluate_run(ctx.cfg, ctx.run_dir, version=ctx.manifest.dataset_version,
                          simulator_config=ctx.opts.simulator_config,
                          progress=ctx.opts.progress)
    ctx.manifest.ope_summary = result.summary_for_manifest()
    return {"rows": result.n_rows, "policies": result.policies}


def _stage_report(ctx: _Context) -> dict[str, Any]:
    from reports import render_index, render_run

    ctx.manifest.save(ctx.run_dir)
    path = render_run(ctx.run_dir, ctx.cfg.report)
    render_index(ctx.cfg.paths.runs)
    ctx.manifest.report_path = str(path)
    return {"report": str(path)}


# --------------------------------------------------------------------------------------------
# run history and retention


def _record_run(cfg: OffrecConfig, m: Manifest) -> None:
    """Upsert the run into the warehouse ``runs`` table (the trend section's history)."""
    if not cfg.paths.warehouse.exists():
        return
    con = duckdb.connect(str(cfg.paths.warehouse))
    try:
        con.execute(
            "CREATE TABLE IF NOT EXISTS runs (run_id VARCHAR PRIMARY KEY, kind VARCHAR, "
            "run_date VARCHAR, created_at VARCHAR, status VARCHAR, exit_code INTEGER, "
            "config_hash VARCHAR, dataset_version VARCHAR, manifest JSON)"
        )
        con.execute("DELETE FROM runs WHERE run_id = $run_id", {"run_id": m.run_id})
        from dataclasses import asdict

        con.execute(
            "INSERT INTO runs VALUES ($run_id, $kind, $date, $created, $status, $code, $hash, "
            "$version, $manifest)",
            {"run_id": m.run_id, "kind": m.kind, "date": m.date, "created": m.created_at,
             "status": m.status, "code": m.exit_code, "hash": m.config_hash,
             "version": m.dataset_version, "manifest": json.dumps(asdict(m), default=str)},
        )
    finally:
        con.close()


def apply_retention(runs_dir: Path, *, keep: int, protect: str | None = None) -> list[Path]:
    """Delete all but the newest ``keep`` run directories (by manifest creation time).

    Only directories holding a ``manifest.json`` count as runs; the warehouse is never touched.
    """
    runs = []
    for d in Path(runs_dir).iterdir() if Path(runs_dir).exists() else []:
        mf = d / "manifest.json"
        if d.is_dir() and mf.exists():
            try:
                created = json.loads(mf.read_text()).get("created_at", "")
            except (OSError, ValueError):
                created = ""
            runs.append((created, d.name, d))
    runs.sort(reverse=True)
    removed = []
    for _, name, d in runs[keep:]:
        if name == protect:
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    return removed
