"""Benchmark harness behind ``offrec bench <stage>``.

A stage module ``offrec/benches/<stage>.py`` exposes ``suite(opts: BenchOptions) -> BenchSuite``.
A suite holds comparisons; each comparison runs *ours* and one or more *baselines* on the same
input in this one process, ``opts.repeat`` times each (interleaved, so drift hits both alike),
and reports the median wall time, throughput, peak resident memory and the ratio
``baseline_time / our_time`` (> 1 means we are faster).

Peak memory is sampled from ``/proc/self/statm`` by a background thread while a contender runs;
``peak_rss_mb`` is the process's peak RSS during that run and ``rss_growth_mb`` the growth over
the RSS just before it started. Before every run the memory earlier runs freed is handed back
to the OS (:func:`release_freed_memory`), so one contender's leftovers do not inflate the next
one's peak.
"""

from __future__ import annotations

import ctypes
import gc
import json
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from offrec.jsonsafe import json_safe

__all__ = [
    "BenchOptions",
    "Contender",
    "Comparison",
    "BenchSuite",
    "ContenderResult",
    "ComparisonResult",
    "run_suite",
    "format_results",
    "current_rss_mb",
    "available_memory_mb",
    "PeakRSS",
]


@dataclass(frozen=True)
class BenchOptions:
    """What the user asked for on the command line."""

    repeat: int = 3
    scale: float = 1.0
    seed: int = 0
    workdir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "offrec-bench")


@dataclass(frozen=True)
class Contender:
    """One implementation: ``run()`` does the whole measured work once.

    ``setup()`` (optional) runs before every repetition, untimed (e.g. drop the output table).
    ``run()`` may return a dict of extra facts (rows written …) that are reported as-is.
    ``skip_reason()`` (optional, baselines only) is asked once before the first repetition: a
    string means this machine cannot run the contender at this size (e.g. it would need more
    memory than is available, and the kernel would kill the whole bench), so it is reported
    as skipped with that reason instead of being run.
    """

    name: str
    run: Callable[[], dict[str, Any] | None]
    setup: Callable[[], None] | None = None
    skip_reason: Callable[[], str | None] | None = None


@dataclass(frozen=True)
class Comparison:
    """Ours against baselines on one input of ``n_items`` units (rows, sessions, updates …)."""

    name: str
    ours: Contender
    baselines: tuple[Contender, ...]
    n_items: float
    unit: str = "items"
    goal: str = ""


@dataclass(frozen=True)
class BenchSuite:
    stage: str
    comparisons: tuple[Comparison, ...]
    notes: str = ""
    cleanup: Callable[[], None] | None = None


@dataclass
class ContenderResult:
    name: str
    times_s: list[float]
    median_s: float
    throughput: float
    peak_rss_mb: float
    rss_growth_mb: float
    extra: dict[str, Any]
    skipped: str | None = None  # why it was not run (then times_s is empty, the rest NaN)


@dataclass
class ComparisonResult:
    name: str
    unit: str
    n_items: float
    goal: str
    ours: ContenderResult
    baselines: list[ContenderResult]
    ratios: dict[str, float]  # baseline name -> baseline_median / our_median (run ones only)


def available_memory_mb() -> float:
    """MemAvailable from /proc/meminfo in MiB (inf where unknown, so nothing is skipped)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return float("inf")


def current_rss_mb() -> float:
    """Resident set size of this process in MiB (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


class PeakRSS:
    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.peak = current_rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, current_rss_mb())
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, current_rss_mb())


def release_freed_memory() -> None:
    """Give memory earlier contenders freed back to the OS, so it is not counted again.

    pyarrow's allocator (mimalloc) keeps freed pages for reuse: after the pandas build of
    ``bench build`` the process held ~1.8 GB per million events it no longer used, and the
    next contender's peak RSS included it. glibc's ``malloc_trim`` does the same for malloc.
    """
    gc.collect()
    if "pyarrow" in sys.modules:
        sys.modules["pyarrow"].default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def _run_once(c: Contender) -> tuple[float, float, float, dict[str, Any]]:
    if c.setup is not None:
        c.setup()
    release_freed_memory()
    before = current_rss_mb()
    with PeakRSS() as sampler:
        t0 = time.perf_counter()
        extra = c.run() or {}
        elapsed = time.perf_counter() - t0
    return elapsed, sampler.peak, sampler.peak - before, extra


def run_suite(
    suite: BenchSuite, opts: BenchOptions, progress: Callable[[str], None] | None = None
) -> list[ComparisonResult]:
    """Run every comparison, interleaving contenders in each repetition."""
    results: list[ComparisonResult] = []
    try:
        for comp in suite.comparisons:
            if comp.ours.skip_reason is not None:
                raise ValueError(f"{comp.name}: our contender cannot be skipped")
            skipped = {
                b.name: reason
                for b in comp.baselines
                if b.skip_reason is not None and (reason := b.skip_reason())
            }
            contenders = [c for c in (comp.ours, *comp.baselines) if c.name not in skipped]
            times: dict[str, list[float]] = {c.name: [] for c in contenders}
            peaks: dict[str, float] = {c.name: 0.0 for c in contenders}
            growth: dict[str, float] = {c.name: 0.0 for c in contenders}
            extras: dict[str, dict[str, Any]] = {c.name: {} for c in contenders}
            for rep in range(opts.repeat):
                for c in contenders:
                    if progress:
                        progress(f"{suite.stage}/{comp.name}: {c.name} (rep {rep + 1})")
                    t, peak, grow, extra = _run_once(c)
                    times[c.name].append(t)
                    peaks[c.name] = max(peaks[c.name], peak)
                    growth[c.name] = max(growth[c.name], grow)
                    extras[c.name] = extra

            summary = {
                name: ContenderResult(
                    name, [], math.nan, math.nan, math.nan, math.nan, {}, skipped=reason
                )
                for name, reason in skipped.items()
            }
            summary |= {
                c.name: ContenderResult(
                    name=c.name,
                    times_s=times[c.name],
                    median_s=statistics.median(times[c.name]),
                    throughput=comp.n_items / max(statistics.median(times[c.name]), 1e-12),
                    peak_rss_mb=peaks[c.name],
                    rss_growth_mb=growth[c.name],
                    extra=extras[c.name],
                )
                for c in contenders
            }
            ours = summary[comp.ours.name]
            bases = [summary[b.name] for b in comp.baselines]
            ratios = {b.name: b.median_s / ours.median_s for b in bases if b.skipped is None}
            results.append(
                ComparisonResult(comp.name, comp.unit, comp.n_items, comp.goal, ours, bases, ratios)
            )
    finally:
        if suite.cleanup is not None:
            suite.cleanup()
    return results


def format_results(stage: str, results: list[ComparisonResult], notes: str = "") -> str:
    """A plain-text table: one line per contender, ratio = baseline time / our time."""
    lines = [f"offrec bench {stage}"]
    if notes:
        lines.append(notes)
    header = f"{'comparison':<28} {'contender':<30} {'median s':>10} {'per s':>14} " \
             f"{'peak RSS MB':>12} {'its own MB':>11} {'ratio':>8}"
    lines.append(header)
    lines.append("-" * len(header))
    for r in results:
        rows = [(r.ours, "ours")] + [
            (b, f"{r.ratios[b.name]:.2f}x") for b in r.baselines if b.skipped is None
        ]
        for c, ratio in rows:
            lines.append(
                f"{r.name:<28} {c.name:<30} {c.median_s:>10.3f} {c.throughput:>14,.0f} "
                f"{c.peak_rss_mb:>12.0f} {c.rss_growth_mb:>11.0f} {ratio:>8}"
            )
        for b in r.baselines:
            if b.skipped is not None:
                lines.append(f"{r.name:<28} {b.name:<30} skipped: {b.skipped}")
        if r.goal:
            lines.append(f"{'':<28} goal: {r.goal}")
    lines.append("ratio = baseline median time / our median time (> 1: ours is faster)")
    lines.append(
        "peak RSS = the process's peak during the contender's runs; its own = the most it grew "
        "the process by (the rest is Python, libraries and what earlier runs kept)"
    )
    return "\n".join(lines)


def results_to_json(stage: str, opts: BenchOptions, results: list[ComparisonResult]) -> str:
    payload = {
        "stage": stage,
        "options": {**asdict(opts), "workdir": str(opts.workdir)},
        "comparisons": [asdict(r) for r in results],
    }
    return json.dumps(json_safe(payload), indent=2, default=str, allow_nan=False)

