"""``offrec bench build`` runs all three contenders on the same decisions."""

from __future__ import annotations

import pytest

from offrec.bench import BenchOptions, run_suite


@pytest.mark.slow
def test_bench_contenders_agree_on_the_decisions(tmp_path):
    from offrec.benches.build import suite

    opts = BenchOptions(repeat=1, scale=0.002, seed=3, workdir=tmp_path)
    (result,) = run_suite(suite(opts), opts)
    ours = result.ours.extra
    plain, pandas_ = (b.extra for b in result.baselines)
    assert ours["decisions"] == plain["rows"] == pandas_["rows"] > 0
    assert ours["state_dim"] == pandas_["state_dim"] == 70
    assert set(result.ratios) == {"plain DuckDB window query", "pandas"}
    assert not (tmp_path / "datasets").exists(), "the suite cleans up its datasets"
