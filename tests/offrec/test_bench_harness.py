"""The bench harness: interleaved runs, ratios, and baselines this machine cannot run."""

from __future__ import annotations

import json
import math

import pytest

from offrec.bench import (
    BenchOptions,
    BenchSuite,
    Comparison,
    Contender,
    format_results,
    results_to_json,
    run_suite,
)


def _suite(calls: list[str], skip: str | None) -> BenchSuite:
    def runner(name: str):
        def run() -> dict[str, int]:
            calls.append(name)
            return {"rows": 3}

        return run

    return BenchSuite(
        stage="toy",
        comparisons=(
            Comparison(
                name="toy",
                ours=Contender("ours", runner("ours")),
                baselines=(
                    Contender("fast", runner("fast")),
                    Contender("huge", runner("huge"), skip_reason=lambda: skip),
                ),
                n_items=3,
            ),
        ),
    )


def test_a_baseline_with_a_skip_reason_is_reported_not_run(tmp_path):
    calls: list[str] = []
    opts = BenchOptions(repeat=2, workdir=tmp_path)
    (result,) = run_suite(_suite(calls, "needs 40 GB, 20 GB available"), opts)
    assert calls == ["ours", "fast", "ours", "fast"]
    huge = result.baselines[1]
    assert huge.skipped == "needs 40 GB, 20 GB available"
    assert huge.times_s == [] and math.isnan(huge.median_s)
    assert set(result.ratios) == {"fast"}
    text = format_results("toy", [result])
    assert "huge" in text and "skipped: needs 40 GB, 20 GB available" in text
    payload = json.loads(results_to_json("toy", opts, [result]))  # strict JSON: no NaN
    skipped = payload["comparisons"][0]["baselines"][1]
    assert skipped["skipped"].startswith("needs 40 GB") and skipped["median_s"] is None


def test_a_baseline_without_a_reason_runs(tmp_path):
    calls: list[str] = []
    (result,) = run_suite(_suite(calls, None), BenchOptions(repeat=1, workdir=tmp_path))
    assert calls == ["ours", "fast", "huge"]
    assert set(result.ratios) == {"fast", "huge"}
    assert all(b.skipped is None for b in result.baselines)


def test_our_contender_cannot_be_skipped(tmp_path):
    suite = BenchSuite(
        stage="toy",
        comparisons=(
            Comparison(
                "toy",
                Contender("ours", lambda: None, skip_reason=lambda: "no"),
                (Contender("b", lambda: None),),
                n_items=1,
            ),
        ),
    )
    with pytest.raises(ValueError, match="cannot be skipped"):
        run_suite(suite, BenchOptions(repeat=1, workdir=tmp_path))


def test_build_bench_skips_pandas_only_when_it_would_not_fit():
    from offrec.benches.build import PANDAS_MB_PER_MILLION_EVENTS, pandas_skip_reason

    n = 10_000_000
    need = PANDAS_MB_PER_MILLION_EVENTS * n / 1e6
    assert pandas_skip_reason(n, need + 1) is None
    reason = pandas_skip_reason(n, need / 2)
    assert reason is not None
    assert "10,000,000 events" in reason and "--scale 0.50 or less" in reason


def test_memory_a_contender_freed_is_not_counted_in_the_next_ones_peak(tmp_path):
    pa = pytest.importorskip("pyarrow")
    from offrec.bench import current_rss_mb

    def hog() -> None:
        # many small Arrow buffers: freed, they stay in pyarrow's pool unless released
        chunks = [pa.array(range(i, i + 100_000)) for i in range(0, 20_000_000, 100_000)]
        assert sum(len(c) for c in chunks) == 20_000_000

    start = current_rss_mb()
    suite = BenchSuite(
        "toy",
        (
            Comparison(
                "toy",
                Contender("ours", lambda: None),
                (Contender("hog", hog),),
                n_items=1,
            ),
        ),
    )
    (result,) = run_suite(suite, BenchOptions(repeat=2, workdir=tmp_path))
    hog_growth = result.baselines[0].rss_growth_mb
    assert hog_growth > 100, "the hog must allocate enough to see"
    # rep 2's "ours" runs right after rep 1's hog: the hog's freed pages are not in its peak
    assert result.ours.peak_rss_mb < start + hog_growth / 2


def test_the_table_shows_each_contenders_own_memory(tmp_path):
    calls: list[str] = []
    (result,) = run_suite(_suite(calls, None), BenchOptions(repeat=1, workdir=tmp_path))
    result.ours.rss_growth_mb = 1234.0
    text = format_results("toy", [result])
    header, _, ours_line = text.splitlines()[1:4]
    assert "its own MB" in header
    assert ours_line.split()[-2] == "1234"
