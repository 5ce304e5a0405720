"""Run history, read straight from the ``runs/`` directory (no database needed).

:func:`discover_runs` lists every run directory for the index page (newest first; runs whose
files cannot be read are kept, with the problem, so the index shows them too).
:func:`load_trend` collects, for the runs up to the current one, the behaviour policy's value
and every policy's estimate on one (estimator, objective): stored numbers, selected, not
recomputed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ope.verdict import Verdict
from reports.errors import ReportError
from reports.model import (
    MANIFEST,
    Manifest,
    ReportInput,
    ResultRow,
    load_manifest,
    load_results,
    load_summary,
)

__all__ = [
    "REPORT_NAME",
    "INDEX_NAME",
    "RunEntry",
    "TrendPoint",
    "Trend",
    "discover_runs",
    "load_trend",
]

REPORT_NAME = "report.html"
INDEX_NAME = "index.html"


@dataclass(frozen=True)
class RunEntry:
    """One run directory as the index sees it."""

    run_id: str
    path: Path
    manifest: Manifest | None
    verdict: Verdict | None
    has_report: bool
    problem: str | None = None  # why the manifest or the verdict could not be read

    @property
    def created_at(self) -> datetime | None:
        return self.manifest.created_at if self.manifest else None


def _is_run_dir(p: Path) -> bool:
    return p.is_dir() and not p.name.startswith((".", "_"))


def discover_runs(runs_dir: Path | str) -> list[RunEntry]:
    """Every run directory under ``runs_dir``: readable ones newest first, then the others."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise ReportError(
            f"{runs_dir}: runs directory not found; run `offrec nightly` (or `offrec train` and "
            "`offrec evaluate`) first, or set [paths] runs in offrec.toml"
        )
    entries: list[RunEntry] = []
    for sub in sorted(p for p in runs_dir.iterdir() if _is_run_dir(p)):
        manifest = verdict = None
        problem = None
        if not (sub / MANIFEST).is_file():
            problem = f"no {MANIFEST}"
        else:
            try:
                manifest = load_manifest(sub)
            except ReportError as exc:
                problem = str(exc)
        if manifest is not None and (sub / "evaluation" / "summary.json").is_file():
            try:
                verdict = load_summary(sub).verdict
            except ReportError as exc:
                problem = str(exc)
        entries.append(
            RunEntry(sub.name, sub, manifest, verdict, (sub / REPORT_NAME).is_file(), problem)
        )
    readable = [e for e in entries if e.manifest is not None]
    readable.sort(key=lambda e: (e.manifest.created_at, e.run_id), reverse=True)  # type: ignore[union-attr]
    return readable + [e for e in entries if e.manifest is None]


@dataclass(frozen=True)
class TrendPoint:
    """One policy's stored estimate in one run."""

    run_id: str
    created_at: datetime
    policy: str
    behaviour: bool
    value: float | None
    low: float | None
    high: float | None
    ground_truth: float | None


@dataclass(frozen=True)
class Trend:
    """Estimates over the runs up to the current one, oldest first."""

    estimator: str
    objective: str
    run_ids: tuple[str, ...]
    points: tuple[TrendPoint, ...]
    skipped: tuple[tuple[str, str], ...]  # (run_id, why it is not in the trend)


def load_trend(current: ReportInput, *, limit: int, estimator: str, objective: str) -> Trend:
    """The current run and up to ``limit`` earlier runs of the same runs directory, on one
    (estimator, objective).

    Earlier runs whose files are missing or malformed are skipped, with the reason, rather than
    failing the report; so are runs without rows for that (estimator, objective).
    """
    cutoff = (current.manifest.created_at, current.run_id)
    earlier: list[tuple[RunEntry, datetime]] = [
        (e, e.manifest.created_at)
        for e in discover_runs(current.run_dir.parent)
        if e.manifest is not None
        and e.run_id != current.run_id
        and (e.manifest.created_at, e.run_id) < cutoff
    ][:limit]
    skipped: list[tuple[str, str]] = []
    points: list[TrendPoint] = []
    run_ids: list[str] = []
    for entry, created_at in reversed(earlier):
        try:
            behaviour = load_summary(entry.path).behaviour_policy
            rows = load_results(entry.path)
        except ReportError as exc:
            skipped.append((entry.run_id, str(exc)))
            continue
        got = _points(entry.run_id, created_at, rows, behaviour, estimator, objective)
        if not got:
            skipped.append((entry.run_id, f"no {estimator} rows for objective {objective!r}"))
            continue
        run_ids.append(entry.run_id)
        points.extend(got)
    if current.summary is not None:
        run_ids.append(current.run_id)
        points.extend(
            _points(
                current.run_id,
                current.manifest.created_at,
                current.results,
                current.summary.behaviour_policy,
                estimator,
                objective,
            )
        )
    return Trend(estimator, objective, tuple(run_ids), tuple(points), tuple(skipped))


def _points(
    run_id: str,
    created_at: datetime,
    rows: Sequence[ResultRow],
    behaviour: str,
    estimator: str,
    objective: str,
) -> list[TrendPoint]:
    return [
        TrendPoint(
            run_id,
            created_at,
            r.policy,
            r.policy == behaviour,
            r.value,
            r.low,
            r.high,
            r.ground_truth,
        )
        for r in rows
        if r.estimator == estimator and r.objective == objective
    ]
