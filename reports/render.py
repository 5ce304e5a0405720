"""Render stored results into self-contained HTML: one ``report.html`` per run and an index.

Nothing here estimates anything: numbers come from the run's files (see :mod:`reports.model`)
and are only selected, ordered and formatted. The page is a single file: CSS, the small table
sorting script and the figures (inline SVG from :mod:`reports.plots`) are embedded, and a
Content-Security-Policy forbids every network request and every script but ours (by hash), so
a data string that somehow became markup could still not run or fetch anything.

Files are written to a temporary file in the target directory and renamed into place, so a
failed write leaves the earlier report intact (:class:`ReportWriteError`, exit code 1).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup

from ope.verdict import ESTIMATOR_LABELS, estimator_label
from reports import plots
from reports.config import ReportConfig
from reports.errors import ReportError, ReportWriteError
from reports.formatting import FILTERS
from reports.history import INDEX_NAME, REPORT_NAME, RunEntry, discover_runs, load_trend
from reports.model import (
    OBJECTIVES,
    EvaluationSummary,
    ReportInput,
    ResultRow,
    SegmentRow,
)

__all__ = [
    "ReportOutputs",
    "report_html",
    "render_run",
    "index_html",
    "render_index",
    "generate_reports",
    "write_text_atomic",
]

_ESTIMATOR_ORDER = tuple(ESTIMATOR_LABELS)
_RUN_ID = re.compile(r"^[^/\\\x00]+$")


# --------------------------------------------------------------------------------------------
# templates and page assets


def _asset(name: str) -> str:
    return resources.files("reports.templates").joinpath(name).read_text(encoding="utf-8")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    env.filters["urlpath"] = lambda s: quote(str(s), safe="")
    env.filters["est"] = estimator_label
    return env


def _page_assets() -> dict[str, Any]:
    css = _asset("report.css")
    js = _asset("report.js")
    digest = base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode("ascii")
    csp = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )
    return {"css": Markup(css), "js": Markup(js), "csp": csp}


# --------------------------------------------------------------------------------------------
# the run report


def _order_estimators(names: Sequence[str]) -> list[str]:
    rank = {n: i for i, n in enumerate(_ESTIMATOR_ORDER)}
    return sorted(dict.fromkeys(names), key=lambda n: (rank.get(n, len(rank)), n))


def _order_objectives(names: Sequence[str], primary: str) -> list[str]:
    rank = {n: i for i, n in enumerate(OBJECTIVES)}
    ordered = sorted(dict.fromkeys(names), key=lambda n: (rank.get(n, len(rank)), n))
    return [primary] + [o for o in ordered if o != primary] if primary in ordered else ordered


_FAMILY_ORDER = ("per_decision", "per_session")
_SCALES = {"per_decision": "per decision", "per_session": "per session (discounted return)"}


def _order_families(names: Sequence[str | None]) -> list[str | None]:
    rank = {n: i for i, n in enumerate(_FAMILY_ORDER)}
    return sorted(dict.fromkeys(names), key=lambda n: (rank.get(n or "", len(rank)), n or ""))


def _scale(family: str | None, *, short: bool = False) -> str:
    """What a value is: "per decision" (also when the family is not recorded), or the family."""
    if family is None:
        return "per decision"
    label = _SCALES.get(family, family.replace("_", " "))
    return label.split(" (")[0] if short else label


def _order_policies(inp: ReportInput, summary: EvaluationSummary) -> list[str]:
    behaviour = summary.behaviour_policy
    present = list(dict.fromkeys(r.policy for r in inp.results))
    by_check = [c.policy for c in summary.verdict.checks if c.policy in present]
    rest = sorted(p for p in present if p != behaviour and p not in by_check)
    head = [behaviour] if behaviour in present else []
    return head + by_check + rest


_SEGMENT_NAMES = {"new_user": "New users", "returning_user": "Returning users"}


def _segment_name(segment: str) -> str:
    return _SEGMENT_NAMES.get(segment, segment.replace("_", " "))


def _changes_context(inp: ReportInput, policies: Sequence[str]) -> list[dict[str, Any]]:
    """Per policy (in report order) its stored explanation, or nothing."""
    ex = inp.explanation
    if ex is None:
        return []
    return [{"policy": p, "c": ex.policies[p]} for p in policies if p in ex.policies]


def _segments_context(
    inp: ReportInput,
    summary: EvaluationSummary,
    policies: Sequence[str],
    colours: dict[str, str],
) -> dict[str, Any] | None:
    """New-vs-returning tables: one row per (policy, estimator), one column group per
    segment; the behaviour's own value per segment and family heads each family."""
    rows: Sequence[SegmentRow] = inp.segments
    info = summary.segments
    if not rows and info is None:
        return None
    rank = {"new_user": 0, "returning_user": 1}
    # columns: the segments with estimates; the counts list every stored segment
    segs = sorted(dict.fromkeys(r.segment for r in rows), key=lambda x: (rank.get(x, 2), x))
    listed = list(segs)
    if info is not None:
        listed = sorted(
            dict.fromkeys([*segs, *(c.segment for c in info.counts)]),
            key=lambda x: (rank.get(x, 2), x),
        )
    ests = _order_estimators([r.estimator for r in rows])
    by = {(r.policy, r.estimator, r.segment): r for r in rows}
    families = _order_families([r.family for r in rows])
    tables = []
    for fam in families:
        fam_rows = [r for r in rows if r.family == fam]
        behaviour = {
            s_: next((r.baseline_value for r in fam_rows if r.segment == s_), None) for s_ in segs
        }
        lines = [
            {"policy": p, "estimator": e, "cells": [by.get((p, e, s_)) for s_ in segs]}
            for p in policies
            for e in ests
            if any((p, e, s_) in by and by[(p, e, s_)].family == fam for s_ in segs)
        ]
        if lines:
            tables.append(
                {"family": fam, "scale": _scale(fam), "behaviour": behaviour, "lines": lines}
            )
    counts = {c.segment: c for c in info.counts} if info is not None else {}
    # a lift whose intervals exclude 0 with opposite signs in two segments is worth a flag
    split_calls = []
    for p in policies:
        for e in ests:
            cells = [by.get((p, e, s_)) for s_ in segs]
            signs = {
                1 if c.lift_low > 0 else -1
                for c in cells
                if c is not None
                and c.lift_low is not None
                and c.lift_high is not None
                and (c.lift_low > 0 or c.lift_high < 0)
            }
            if len(signs) > 1:
                split_calls.append((p, e))
    # small multiples: one panel per segment, the verdict's estimator (or the first
    # per-decision one) on its relative lift, the policies in report order
    per_dec = [r for r in rows if r.family == "per_decision"]
    shown = [e for e in ests if any(r.estimator == e for r in per_dec)]
    pick = summary.verdict.estimator if summary.verdict.estimator in shown else None
    pick = pick or (shown[0] if shown else None)
    plot = None
    if pick is not None:
        panels = [
            (
                _segment_name(s_),
                [
                    plots.LiftEntry(p, r.rel_lift, r.rel_lift_low, r.rel_lift_high)
                    for p in policies
                    if (r := by.get((p, pick, s_))) is not None and r.family == "per_decision"
                ],
            )
            for s_ in segs
        ]
        plot = plots.objective_panels(
            panels,
            colours=colours,
            estimator=estimator_label(pick),
            key="segments",
            what="user segment",
        )
    return {
        "plot": plot,
        "plot_estimator": pick,
        "segments": [{"key": s_, "name": _segment_name(s_)} for s_ in segs],
        "listed": [
            {"key": s_, "name": _segment_name(s_), "count": counts.get(s_)} for s_ in listed
        ],
        "tables": tables,
        "definition": info.definition if info is not None else None,
        "objective": info.objective if info is not None else (rows[0].objective if rows else None),
        "split_calls": split_calls,
    }


def _evaluation_context(inp: ReportInput, summary: EvaluationSummary) -> dict[str, Any]:
    """Tables and figures of the evaluation (only for runs that were evaluated)."""
    s, v = summary, summary.verdict
    behaviour = s.behaviour_policy
    objective, estimator = v.objective, v.estimator
    policies = _order_policies(inp, summary)
    candidates = [p for p in policies if p != behaviour]
    estimators = _order_estimators([r.estimator for r in inp.results])
    objectives = _order_objectives([r.objective for r in inp.results], objective)
    row: dict[tuple[str, str, str], ResultRow] = {
        (r.policy, r.estimator, r.objective): r for r in inp.results
    }
    # colours by sorted name, so a policy keeps its colour from one report to the next
    colours = plots.palette(sorted(policies), behaviour)
    level = "confidence" if v.alpha is None else f"{(1 - v.alpha) * 100:.4g}%"
    behaviour_label = behaviour if behaviour == "behaviour" else f"{behaviour} (behaviour)"

    # estimators whose values are on different scales (per decision / per session) are kept
    # apart: the ``family`` column says which, when the evaluation writes it
    families = _order_families([r.family for r in inp.results if r.objective == objective])
    family_of = {(r.policy, r.estimator): r.family for r in inp.results if r.objective == objective}
    comparison = [
        {
            "policy": p,
            "estimator": e,
            "row": row[(p, e, objective)],
            "primary": e == estimator,
            "behaviour": p == behaviour,
            "scale": _scale(family_of.get((p, e)), short=True),
        }
        for p in policies
        for f in families
        for e in estimators
        if (p, e, objective) in row and family_of.get((p, e)) == f
    ]
    forests = []
    styles = plots.estimator_styles([estimator_label(e) for e in estimators])
    for k, f in enumerate(families):
        in_family = [c for c in comparison if family_of.get((c["policy"], c["estimator"])) == f]
        refs = [c["row"] for c in in_family if c["behaviour"] and c["primary"]] or [
            c["row"] for c in in_family if c["behaviour"]
        ]
        ref = refs[0] if refs else None
        entries = [
            plots.ForestEntry(
                c["policy"],
                estimator_label(c["estimator"]),
                c["row"].value,
                c["row"].low,
                c["row"].high,
                c["row"].ground_truth,
            )
            for c in in_family
            if not c["behaviour"]
        ]
        if entries:
            forests.append(
                plots.forest_plot(
                    entries,
                    objective=objective,
                    reference=(ref.value, ref.low, ref.high) if ref else None,
                    reference_label=behaviour_label,
                    estimators=[
                        estimator_label(e)
                        for e in estimators
                        if any(family_of.get((p, e)) == f for p in policies)
                    ],
                    scale=_scale(f),
                    styles=styles,
                    key=f"forest-{k}",
                )
            )

    per_objective = [
        {
            "objective": o,
            "behaviour": row.get((behaviour, estimator, o)),
            "cells": [row.get((p, estimator, o)) for p in candidates],
        }
        for o in objectives
    ]
    objectives_plot = (
        plots.objective_panels(
            [
                (
                    o,
                    [
                        plots.LiftEntry(p, r.rel_lift, r.rel_lift_low, r.rel_lift_high)
                        for p in candidates
                        if (r := row.get((p, estimator, o))) is not None
                    ],
                )
                for o in objectives
            ],
            colours=colours,
            estimator=estimator_label(estimator),
        )
        if candidates
        else None
    )

    checks = {c.policy: c for c in v.checks}
    diagnostics = []
    for p in candidates:
        weighted = [
            row[(p, e, objective)]
            for e in [estimator, *estimators]
            if (p, e, objective) in row and row[(p, e, objective)].ess is not None
        ]
        diagnostics.append(
            {
                "policy": p,
                "check": checks.get(p),
                "row": weighted[0] if weighted else None,
                "lifts": [row.get((p, e, objective)) for e in estimators],
            }
        )
    hists = [
        plots.Histogram(p, h.bin_edges, h.counts)
        for p in candidates
        if (h := s.weight_histograms.get(p)) is not None
    ]
    weights_plot = (
        plots.weight_histograms(hists, colours=colours, max_weight=v.rules.get("max_weight"))
        if hists
        else None
    )
    bm = s.behaviour_model
    calibration_plot = (
        plots.calibration_plot(
            [plots.CalibrationPoint(b.predicted, b.observed, b.count) for b in bm.calibration]
        )
        if bm is not None
        else None
    )
    return {
        "summary": s,
        "verdict": v,
        "checks": v.checks,
        "level": level,
        "behaviour": behaviour,
        "objective": objective,
        "estimator": estimator,
        "policies": policies,
        "candidates": candidates,
        "estimators": estimators,
        "objectives": objectives,
        "colours": colours,
        "comparison": comparison,
        "per_objective": per_objective,
        "diagnostics": diagnostics,
        "top_items": [(p, s.top_items[p]) for p in policies if p in s.top_items],
        "changes": _changes_context(inp, candidates),
        "explanation": inp.explanation,
        "segments": _segments_context(inp, summary, candidates, colours),
        "policy_info": s.policies,
        "first_row": inp.results[0],
        "forests": forests,
        "show_scale": len(families) > 1,
        "eval_plots": {
            "objectives": objectives_plot,
            "weights": weights_plot,
            "calibration": calibration_plot,
        },
    }


def _context(inp: ReportInput, config: ReportConfig) -> dict[str, Any]:
    ev = _evaluation_context(inp, inp.summary) if inp.summary is not None else None
    objective = ev["objective"] if ev else config.primary_objective
    estimator = ev["estimator"] if ev else config.primary_estimator
    behaviour = ev["behaviour"] if ev else None
    policies = ev["policies"] if ev else []
    trend = load_trend(inp, limit=config.history_runs, estimator=estimator, objective=objective)

    model_colours = plots.palette(sorted(m.name for m in inp.models))
    if ev:
        model_colours.update({k: c for k, c in ev["colours"].items() if k in model_colours})
    curves = [
        plots.Curve(
            m.name, metric, [e.epoch for e in m.epochs], [getattr(e, metric) for e in m.epochs]
        )
        for metric in ("loss", "td_error", "initial_value", "agreement", "ips")
        for m in inp.models
        if any(getattr(e, metric) is not None for e in m.epochs)
    ]
    training_plot = plots.training_curves(curves, colours=model_colours) if curves else None

    trend_runs = list(trend.run_ids)
    trend_policies = list(dict.fromkeys(pt.policy for pt in trend.points))
    behaviours = {pt.policy for pt in trend.points if pt.behaviour}
    trend_policies.sort(
        key=lambda p: (
            p not in behaviours,
            policies.index(p) if p in policies else len(policies),
            p,
        )
    )
    trend_colours = plots.palette(
        sorted((set(policies) | set(trend_policies)) - behaviours - {behaviour})
    )
    trend_colours.update({b: plots.BEHAVIOUR_COLOUR for b in behaviours | {behaviour}})
    by_run_policy = {(pt.run_id, pt.policy): pt for pt in trend.points}
    run_time = {pt.run_id: pt.created_at for pt in trend.points}
    series = []
    for p in trend_policies:
        pts = [by_run_policy.get((r, p)) for r in trend_runs]
        series.append(
            plots.TrendSeries(
                policy=p,
                times=[run_time[r] for r in trend_runs],
                values=[pt.value if pt else None for pt in pts],
                lows=[pt.low if pt else None for pt in pts],
                highs=[pt.high if pt else None for pt in pts],
                truths=[pt.ground_truth if pt else None for pt in pts],
                behaviour=p in behaviours,
            )
        )
    # a trend needs two runs; a run without results of its own still shows the earlier ones
    show_trend = len(trend_runs) >= (2 if ev else 1)
    trend_plot = (
        plots.trend_plot(
            series,
            colours=trend_colours,
            objective=objective,
            estimator=estimator_label(estimator),
        )
        if show_trend
        else None
    )
    trend_rows = [
        {
            "run_id": r,
            "created_at": run_time[r],
            "current": r == inp.run_id,
            "cells": [by_run_policy.get((r, p)) for p in trend_policies],
        }
        for r in reversed(trend_runs)
    ]
    plots_ = dict(ev["eval_plots"]) if ev else {}
    plots_.update({"training": training_plot, "trend": trend_plot})
    failed_stages = [
        (k, st)
        for k, st in inp.manifest.stages.items()
        if st.status in ("failed", "skipped") and st.error
    ]
    return {
        **(ev or {}),
        "inp": inp,
        "run": inp.manifest,
        "data": inp.data,
        "evaluated": ev is not None,
        "objective": objective,
        "estimator": estimator,
        "simulated": inp.simulated,
        "models": inp.models,
        "failed_stages": failed_stages,
        "trend": trend,
        "trend_policies": trend_policies,
        "trend_rows": trend_rows,
        "show_trend": show_trend,
        "plots": plots_,
        "svg": lambda p: Markup(p.svg),
        **_page_assets(),
    }


def report_html(run_dir: Path | str, config: ReportConfig | None = None) -> str:
    """The HTML of ``run_dir``'s report (nothing is written)."""
    config = config or ReportConfig()
    inp = ReportInput.load(run_dir)
    return _environment().get_template("report.html.j2").render(_context(inp, config))


def render_run(run_dir: Path | str, config: ReportConfig | None = None) -> Path:
    """Render ``<run_dir>/report.html`` and write it atomically; return its path."""
    run_dir = Path(run_dir)
    html = report_html(run_dir, config)
    return write_text_atomic(run_dir / REPORT_NAME, html)


def index_html(runs_dir: Path | str) -> str:
    """The HTML of the index of every run under ``runs_dir``, newest first."""
    entries = discover_runs(runs_dir)
    return (
        _environment()
        .get_template("index.html.j2")
        .render(entries=entries, runs_dir=Path(runs_dir), report_name=REPORT_NAME, **_page_assets())
    )


def render_index(runs_dir: Path | str) -> Path:
    """Render ``<runs_dir>/index.html`` and write it atomically; return its path."""
    runs_dir = Path(runs_dir)
    return write_text_atomic(runs_dir / INDEX_NAME, index_html(runs_dir))


# --------------------------------------------------------------------------------------------
# writing


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path`` and rename it into place.

    On any OS error the temporary file is removed, ``path`` keeps its previous content and
    :class:`ReportWriteError` names the path.
    """
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ReportWriteError(
            f"{path}: cannot write the report ({reason}); check that {path.parent} exists, is "
            "writable and has free space. Earlier files were left unchanged."
        ) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return path


@dataclass(frozen=True)
class ReportOutputs:
    """What :func:`generate_reports` wrote, and the runs it could not render (with why)."""

    reports: tuple[Path, ...]
    index: Path
    failures: tuple[tuple[str, str], ...] = ()


def generate_reports(
    runs_dir: Path | str,
    config: ReportConfig | None = None,
    *,
    run_id: str | None = None,
    all_runs: bool = False,
) -> ReportOutputs:
    """Write the report of one run (``run_id``, default: the newest) or of every run, then the
    index. With ``all_runs``, runs that cannot be rendered are listed in ``failures`` and the
    others are still written; otherwise the first problem raises :class:`ReportError`."""
    runs_dir = Path(runs_dir)
    if run_id is not None and all_runs:
        raise ReportError("--run and --all: give one of them, not both")
    entries = discover_runs(runs_dir)
    if not entries:
        raise ReportError(
            f"{runs_dir}: no runs yet; run `offrec nightly` (or `offrec evaluate`) first"
        )
    selected: list[RunEntry]
    if run_id is not None:
        if not _RUN_ID.match(run_id) or run_id in (".", ".."):
            raise ReportError(
                f"--run {run_id!r}: must be a run id (a directory name in {runs_dir}), not a path"
            )
        selected = [e for e in entries if e.run_id == run_id]
        if not selected:
            known = ", ".join(e.run_id for e in entries[:10])
            more = f" (and {len(entries) - 10} more)" if len(entries) > 10 else ""
            raise ReportError(
                f"--run {run_id!r}: no such run in {runs_dir}; runs, newest first: {known}{more}"
            )
    elif all_runs:
        selected = entries
    else:
        readable = [e for e in entries if e.manifest is not None]
        if not readable:
            raise ReportError(f"{runs_dir}: no readable run: {entries[0].problem}")
        selected = readable[:1]
    written: list[Path] = []
    failures: list[tuple[str, str]] = []
    for entry in selected:
        try:
            written.append(render_run(entry.path, config))
        except ReportWriteError:
            raise
        except ReportError as exc:
            if not all_runs:
                raise
            failures.append((entry.run_id, str(exc)))
    index = render_index(runs_dir)
    return ReportOutputs(tuple(written), index, tuple(failures))
