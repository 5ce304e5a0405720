"""Figures of the report: matplotlib rendered to inline, deterministic, accessible SVG.

Every function takes already-computed numbers and returns a :class:`Plot` whose ``svg`` is an
``<svg>`` element ready to inline into the page: no XML prolog, no metadata, ``width=100%``
with the original ``viewBox`` (responsive), ``role="img"`` and an escaped ``<title>`` and
``<desc>`` for screen readers. Rendering is deterministic: ``svg.hashsalt`` is fixed per figure
(so element ids are stable and unique across the figures of one page), there is no date
metadata, and text is kept as text (``svg.fonttype = "none"``) with mathtext parsing off, so
data strings such as ``$x$`` are drawn literally. matplotlib escapes text for XML itself.
"""

from __future__ import annotations

import contextlib
import html
import io
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import matplotlib
import matplotlib.axis
import matplotlib.dates as mdates
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import (
    FuncFormatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
    NullLocator,
)

__all__ = [
    "Plot",
    "ForestEntry",
    "LiftEntry",
    "Histogram",
    "CalibrationPoint",
    "Curve",
    "TrendSeries",
    "BEHAVIOUR_COLOUR",
    "palette",
    "estimator_styles",
    "forest_plot",
    "objective_panels",
    "weight_histograms",
    "calibration_plot",
    "training_curves",
    "trend_plot",
]

# Okabe-Ito colours (distinguishable with colour-vision deficiencies), yellow left out.
_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h")
BEHAVIOUR_COLOUR = "#6B7280"
_TEXT = "#1F2937"
_MUTED = "#6B7280"
_GOOD, _BAD = "#15803D", "#B91C1C"

_BASE_RC = {
    "svg.fonttype": "none",
    "text.parse_math": False,
    "text.usetex": False,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 9.0,
    "axes.edgecolor": "#9CA3AF",
    "axes.labelcolor": _TEXT,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#E5E7EB",
    "grid.linewidth": 0.8,
    "xtick.color": "#4B5563",
    "ytick.color": "#4B5563",
    "legend.frameon": False,
    "legend.fontsize": 8.5,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "lines.linewidth": 1.6,
}


@dataclass(frozen=True)
class Plot:
    """An inline SVG figure with its accessible title and description."""

    key: str
    title: str
    description: str
    svg: str


def estimator_styles(names: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Stable (colour, marker) per estimator name, in the given order."""
    return {
        n: (_COLOURS[i % len(_COLOURS)], _MARKERS[i % len(_MARKERS)])
        for i, n in enumerate(dict.fromkeys(names))
    }


def palette(names: Sequence[str], behaviour: str | None = None) -> dict[str, str]:
    """Stable colour per name (the behaviour policy is grey)."""
    out: dict[str, str] = {}
    k = 0
    for name in names:
        if name == behaviour:
            out[name] = BEHAVIOUR_COLOUR
        elif name not in out:
            out[name] = _COLOURS[k % len(_COLOURS)]
            k += 1
    return out


@contextlib.contextmanager
def _figure(key: str, width: float, height: float) -> Iterator[Figure]:
    rc = dict(_BASE_RC)
    rc["svg.hashsalt"] = f"offrec-{key}"
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasSVG(fig)
        yield fig


_SVG_OPEN = re.compile(r"<svg\b([^>]*)>", re.S)


def _to_plot(fig: Figure, key: str, title: str, description: str) -> Plot:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    raw = buf.getvalue()
    raw = raw[raw.index("<svg") :]
    raw = re.sub(r"<metadata>.*?</metadata>\s*", "", raw, flags=re.S)
    match = _SVG_OPEN.match(raw)
    if match is None:  # pragma: no cover - matplotlib always writes <svg ...>
        raise RuntimeError("matplotlib produced no <svg> element")
    attrs = match.group(1)
    viewbox = re.search(r'viewBox="([^"]*)"', attrs)
    box = viewbox.group(1) if viewbox else "0 0 576 288"
    natural_px = float(box.split()[2]) * 4 / 3  # viewBox is in points
    ident = f"fig-{re.sub(r'[^a-z0-9-]', '-', key.lower())}"
    opening = (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'version="1.1" viewBox="{box}" width="100%" style="max-width: {natural_px:.0f}px" '
        f'class="plot" role="img" aria-labelledby="{ident}-t {ident}-d">'
        f'<title id="{ident}-t">{html.escape(title)}</title>'
        f'<desc id="{ident}-d">{html.escape(description)}</desc>'
    )
    svg = opening + raw[match.end() :]
    return Plot(key=key, title=title, description=description, svg=svg.strip())


def _plain_log_ticks(axis: matplotlib.axis.Axis) -> None:
    """Tick labels like 0.01, 1, 100 on a log axis (the default ones need mathtext)."""
    axis.set_major_locator(LogLocator(base=10, numticks=8))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())


def _behaviour_label(name: str) -> str:
    return name if name == "behaviour" else f"{name} (behaviour)"


def _finite(*xs: float | None) -> bool:
    return all(x is not None and math.isfinite(x) for x in xs)


# --------------------------------------------------------------------------------------------
# policy comparison


@dataclass(frozen=True)
class ForestEntry:
    """One estimate: value with interval (and the simulator's true value, if known)."""

    policy: str
    estimator: str
    value: float | None
    low: float | None
    high: float | None
    truth: float | None = None


def forest_plot(
    entries: Sequence[ForestEntry],
    *,
    objective: str,
    reference: tuple[float | None, float | None, float | None] | None,
    reference_label: str,
    estimators: Sequence[str],
    scale: str = "per decision",
    styles: Mapping[str, tuple[str, str]] | None = None,
    key: str = "forest",
) -> Plot:
    """Value of each policy under each estimator with its interval; the vertical line and band
    mark the behaviour policy's value; open diamonds mark the ground truth when simulated.
    ``scale`` names what a value is (all entries must share it); ``styles`` maps an estimator
    to its (colour, marker), so that several forest plots of one page agree."""
    policies = list(dict.fromkeys(e.policy for e in entries))
    styles = styles or estimator_styles(estimators)
    est_colour = {e: styles[e][0] for e in estimators if e in styles}
    est_marker = {e: styles[e][1] for e in estimators if e in styles}
    n_rows = len(entries) + max(0, len(policies) - 1)
    height = max(2.0, 0.24 * n_rows + 1.0)
    has_truth = any(_finite(e.truth) for e in entries)
    with _figure(key, 9.0, height) as fig:
        ax = fig.add_subplot()
        y, ticks, labels = 0.0, [], []
        # one collection / one marker line per estimator (fast to draw, small SVG)
        segs: dict[str, list[tuple[float, float, float]]] = {}
        dots: dict[str, list[tuple[float, float]]] = {}
        truth: list[tuple[float, float]] = []
        for p in policies:
            for e in (e for e in entries if e.policy == p):
                if _finite(e.low, e.high):
                    segs.setdefault(e.estimator, []).append((y, e.low, e.high))  # type: ignore[arg-type]
                if _finite(e.value):
                    dots.setdefault(e.estimator, []).append((e.value, y))  # type: ignore[arg-type]
                if _finite(e.truth):
                    truth.append((e.truth, y))  # type: ignore[arg-type]
                ticks.append(y)
                labels.append(f"{p} \u00b7 {e.estimator}")
                y -= 1
            y -= 1
        for est, rows in segs.items():
            ys_, lo_, hi_ = zip(*rows, strict=True)
            ax.hlines(ys_, lo_, hi_, colors=est_colour.get(est, _MUTED), lw=2.0)
        for est, pts in dots.items():
            xs_, ys_ = zip(*pts, strict=True)
            ax.plot(
                xs_,
                ys_,
                marker=est_marker.get(est, "o"),
                color=est_colour.get(est, _MUTED),
                ms=5.5,
                ls="none",
            )
        if truth:
            xs_, ys_ = zip(*truth, strict=True)
            ax.plot(xs_, ys_, marker="D", mfc="none", mec=_TEXT, ms=6.5, ls="none", mew=1.1)
        if reference is not None and _finite(reference[0]):
            ref, lo, hi = reference
            ax.axvline(ref, color=BEHAVIOUR_COLOUR, lw=1.2, ls="--", zorder=1)
            if _finite(lo, hi):
                ax.axvspan(lo, hi, color=BEHAVIOUR_COLOUR, alpha=0.12, lw=0, zorder=0)
        ax.set_yticks(ticks, labels)
        ax.set_ylim(y + 0.5, 0.8)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel(f"estimated value of {objective} {scale}")
        handles = [
            Line2D([], [], color=est_colour[e], marker=est_marker[e], lw=2, label=e)
            for e in estimators
            if e in est_colour
        ]
        handles.append(Line2D([], [], color=BEHAVIOUR_COLOUR, ls="--", label=reference_label))
        if has_truth:
            handles.append(
                Line2D([], [], marker="D", mfc="none", mec=_TEXT, ls="none", label="ground truth")
            )
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return _to_plot(
            fig,
            key,
            f"Estimated {objective} {scale} by policy and estimator",
            f"Forest plot: for each policy and estimator, the estimated value of {objective} "
            f"with its interval; the dashed line is {reference_label}."
            + (" Open diamonds are the simulator's ground truth." if has_truth else ""),
        )


@dataclass(frozen=True)
class LiftEntry:
    """A relative lift with interval for one policy."""

    policy: str
    rel_lift: float | None
    rel_low: float | None
    rel_high: float | None


def objective_panels(
    panels: Sequence[tuple[str, Sequence[LiftEntry]]],
    *,
    colours: Mapping[str, str],
    estimator: str,
    key: str = "objectives",
    what: str = "objective",
) -> Plot:
    """One panel per objective (or per ``what``, e.g. user segment): each policy's relative
    lift over behaviour, with interval."""
    n = len(panels)
    ncols = min(3, max(1, n))
    nrows = math.ceil(n / ncols) if n else 1
    n_pol = max((len(e) for _, e in panels), default=1)
    with _figure(key, 9.0, nrows * (0.28 * n_pol + 1.1)) as fig:
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for idx, ax in enumerate(axes.flat):
            if idx >= n:
                ax.set_visible(False)
                continue
            objective, entries = panels[idx]
            ys = list(range(len(entries)))[::-1]
            bars = [
                (y, e) for y, e in zip(ys, entries, strict=True) if _finite(e.rel_low, e.rel_high)
            ]
            if bars:
                ax.hlines(
                    [y for y, _ in bars],
                    [e.rel_low * 100 for _, e in bars],  # type: ignore[operator]
                    [e.rel_high * 100 for _, e in bars],  # type: ignore[operator]
                    colors=[colours.get(e.policy, _MUTED) for _, e in bars],
                    lw=2.0,
                )
            pts = [(y, e) for y, e in zip(ys, entries, strict=True) if _finite(e.rel_lift)]
            if pts:
                ax.scatter(
                    [e.rel_lift * 100 for _, e in pts],
                    [y for y, _ in pts],
                    s=26,  # type: ignore[operator]
                    c=[colours.get(e.policy, _MUTED) for _, e in pts],
                    zorder=3,
                )
            ax.axvline(0, color=BEHAVIOUR_COLOUR, lw=1.0, ls="--")
            ax.set_yticks(ys, [e.policy for e in entries])
            ax.set_ylim(-0.7, len(entries) - 0.3)
            ax.grid(axis="y", visible=False)
            ax.set_title(objective)
            ax.xaxis.set_major_formatter(FuncFormatter(_pct_tick))
            if idx % ncols:
                ax.tick_params(axis="y", labelleft=False)
        fig.supxlabel(f"lift over the behaviour policy, relative ({estimator})", fontsize=9)
        names = ", ".join(o for o, _ in panels)
        return _to_plot(
            fig,
            key,
            f"Relative lift over behaviour per {what}",
            f"Small multiples, one per {what} ({names}): each policy's relative lift over "
            f"the behaviour policy under {estimator}, with its interval; the dashed line is no "
            "change.",
        )


def _pct_tick(x: float, _pos: int | None = None) -> str:
    return f"{x:+.0f}%" if x else "0"


# --------------------------------------------------------------------------------------------
# diagnostics


@dataclass(frozen=True)
class Histogram:
    """Counts of importance weights per bin for one policy."""

    policy: str
    bin_edges: Sequence[float]
    counts: Sequence[int]


def weight_histograms(
    hists: Sequence[Histogram],
    *,
    colours: Mapping[str, str],
    max_weight: float | None,
    key: str = "weights",
) -> Plot:
    """Small multiples: the distribution of importance weights per policy (log axis when the
    weights span more than two decades). Dashed line: w = 1; red dotted line: the verdict's
    largest allowed weight."""
    n = len(hists)
    ncols = min(3, max(1, n))
    nrows = math.ceil(n / ncols) if n else 1
    with _figure(key, 9.0, 1.9 * nrows + 0.5) as fig:
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for idx, ax in enumerate(axes.flat):
            if idx >= n:
                ax.set_visible(False)
                continue
            h = hists[idx]
            edges = list(h.bin_edges)
            ax.stairs(
                list(h.counts), edges, fill=True, color=colours.get(h.policy, _MUTED), alpha=0.8
            )
            if edges[0] > 0 and edges[-1] / edges[0] > 100:
                ax.set_xscale("log")
                _plain_log_ticks(ax.xaxis)
            ax.axvline(1.0, color=_TEXT, lw=0.9, ls="--")
            if max_weight is not None and edges[0] <= max_weight <= edges[-1] * 10:
                ax.axvline(max_weight, color=_BAD, lw=1.1, ls=":")
            ax.set_title(h.policy)
            ax.grid(axis="x", visible=False)
            if idx % ncols == 0:
                ax.set_ylabel("decisions")
        fig.supxlabel("importance weight  \u03c0(a|s) / \u03bc(a|s)", fontsize=9)
        return _to_plot(
            fig,
            key,
            "Distribution of importance weights per policy",
            "Histograms of the importance weights of each policy over the logged decisions "
            "(decisions with weight zero excluded). The dashed line marks weight 1; the dotted "
            "red line marks the largest weight the verdict allows.",
        )


@dataclass(frozen=True)
class CalibrationPoint:
    """One bin of the behaviour model's reliability diagram."""

    predicted: float
    observed: float
    count: int


def calibration_plot(points: Sequence[CalibrationPoint], *, key: str = "calibration") -> Plot:
    """Reliability diagram of the estimated propensities (perfect calibration = diagonal)."""
    with _figure(key, 4.2, 3.4) as fig:
        ax = fig.add_subplot()
        top = max([p.predicted for p in points] + [p.observed for p in points] + [0.05]) * 1.08
        top = min(1.0, top)
        ax.plot(
            [0, top], [0, top], color=BEHAVIOUR_COLOUR, ls="--", lw=1.0, label="perfect calibration"
        )
        total = sum(p.count for p in points) or 1
        sizes = [20 + 300 * p.count / total for p in points]
        ax.plot(
            [p.predicted for p in points], [p.observed for p in points], color=_COLOURS[0], lw=1.2
        )
        ax.scatter(
            [p.predicted for p in points],
            [p.observed for p in points],
            s=sizes,
            color=_COLOURS[0],
            alpha=0.75,
            zorder=3,
            label="bins (area = pairs)",
        )
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_xlabel("estimated propensity")
        ax.set_ylabel("observed frequency")
        ax.legend(loc="upper left")
        return _to_plot(
            fig,
            key,
            "Calibration of the behaviour model",
            "Reliability diagram: mean estimated propensity per bin against how often the "
            "action was actually the logged one. Points on the diagonal are well calibrated; "
            "marker area is proportional to the number of decision-action pairs in the bin.",
        )


# --------------------------------------------------------------------------------------------
# training


@dataclass(frozen=True)
class Curve:
    """One metric of one model over epochs (``None`` values are skipped)."""

    model: str
    metric: str
    epochs: Sequence[int]
    values: Sequence[float | None]


_METRIC_LABELS = {
    "loss": "training loss",
    "td_error": "TD error",
    "initial_value": "initial-state value",
    "agreement": "agreement with logged actions",
    "ips": "IPS estimate (validation)",
}


def training_curves(
    curves: Sequence[Curve], *, colours: Mapping[str, str], key: str = "training"
) -> Plot:
    """One panel per metric, one line per model."""
    metrics = list(dict.fromkeys(c.metric for c in curves))
    n = len(metrics)
    ncols = min(3, max(1, n))
    nrows = math.ceil(n / ncols) if n else 1
    models = list(dict.fromkeys(c.model for c in curves))
    with _figure(key, 9.0, 2.0 * nrows + 0.6) as fig:
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for idx, ax in enumerate(axes.flat):
            if idx >= n:
                ax.set_visible(False)
                continue
            metric = metrics[idx]
            for c in (c for c in curves if c.metric == metric):
                pts = [(e, v) for e, v in zip(c.epochs, c.values, strict=True) if _finite(v)]
                if not pts:
                    continue
                xs, ys = zip(*pts, strict=True)
                ax.plot(
                    xs, ys, color=colours.get(c.model, _MUTED), marker="o", ms=2.5, label=c.model
                )
            if metric == "loss":
                ys_all = [v for c in curves if c.metric == metric for v in c.values if _finite(v)]
                if ys_all and min(ys_all) > 0 and max(ys_all) / min(ys_all) > 50:
                    ax.set_yscale("log")
                    _plain_log_ticks(ax.yaxis)
            ax.set_title(_METRIC_LABELS.get(metric, metric))
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        handles = [Line2D([], [], color=colours.get(m, _MUTED), label=m) for m in models]
        fig.legend(handles=handles, loc="outside upper center", ncols=min(6, len(models)))
        fig.supxlabel("epoch", fontsize=9)
        return _to_plot(
            fig,
            key,
            "Training curves per algorithm",
            f"Per-epoch training metrics ({', '.join(_METRIC_LABELS.get(m, m) for m in metrics)})"
            f" for each trained model: {', '.join(models)}.",
        )


# --------------------------------------------------------------------------------------------
# trend


@dataclass(frozen=True)
class TrendSeries:
    """One policy's estimate over runs."""

    policy: str
    times: Sequence[datetime]
    values: Sequence[float | None]
    lows: Sequence[float | None]
    highs: Sequence[float | None]
    truths: Sequence[float | None]
    behaviour: bool = False


def trend_plot(
    series: Sequence[TrendSeries],
    *,
    colours: Mapping[str, str],
    objective: str,
    estimator: str,
    key: str = "trend",
) -> Plot:
    """Behaviour value and each policy's estimate over runs (bars: intervals; dotted: truth)."""
    has_truth = False
    with _figure(key, 9.0, 3.2) as fig:
        ax = fig.add_subplot()
        for s in series:
            c = colours.get(s.policy, _MUTED)
            pts = [
                (t.astimezone(UTC).replace(tzinfo=None), v, lo, hi)
                for t, v, lo, hi in zip(s.times, s.values, s.lows, s.highs, strict=True)
                if _finite(v)
            ]
            if pts:
                xs = [p[0] for p in pts]
                ys = [p[1] for p in pts]
                ax.plot(
                    xs,
                    ys,
                    color=c,
                    marker="o",
                    ms=4,
                    lw=2.4 if s.behaviour else 1.6,
                    label=_behaviour_label(s.policy) if s.behaviour else s.policy,
                )
                bars = [(x, lo, hi) for x, _, lo, hi in pts if _finite(lo, hi)]
                if bars:
                    xs_, lo_, hi_ = zip(*bars, strict=True)
                    ax.vlines(xs_, lo_, hi_, colors=c, lw=1.0, alpha=0.6)
            tpts = [
                (t.astimezone(UTC).replace(tzinfo=None), v)
                for t, v in zip(s.times, s.truths, strict=True)
                if _finite(v)
            ]
            if tpts:
                has_truth = True
                ax.plot(
                    [p[0] for p in tpts],
                    [p[1] for p in tpts],
                    color=c,
                    ls=":",
                    lw=1.1,
                    marker="D",
                    mfc="none",
                    ms=4,
                )
        loc = mdates.AutoDateLocator(minticks=3, maxticks=8)
        ax.xaxis.set_major_locator(loc)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
        ax.set_ylabel(f"{objective} per decision ({estimator})")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return _to_plot(
            fig,
            key,
            f"Trend of {objective} across runs",
            f"The behaviour policy's value and each policy's {estimator} estimate of {objective} "
            "per decision for each run, oldest to newest, with interval bars"
            + (
                "; dotted lines with open diamonds are the simulator's ground truth."
                if has_truth
                else "."
            ),
        )
