"""``offrec bench train`` runs all three contenders on the same data (sizes only, no timings)."""

from __future__ import annotations

from offrec.bench import BenchOptions, run_suite
from offrec.benches.train import suite


def test_bench_suite_runs_every_contender(tmp_path):
    results = run_suite(
        suite(BenchOptions(repeat=1, scale=0.01, seed=0, workdir=tmp_path)),
        BenchOptions(repeat=1, scale=0.01, seed=0, workdir=tmp_path),
    )
    assert [r.name for r in results] == ["dqn updates", "cql updates", "sac updates"]
    for r in results:
        assert r.unit == "updates" and r.n_items == 20
        assert r.ours.extra["updates"] == 20
        names = [b.name for b in r.baselines]
        assert names == ["plain torch loop", "d3rlpy fit (stock)"]
        assert [b.extra["updates"] for b in r.baselines] == [20, 20]
        assert set(r.ratios) == set(names) and all(v > 0 for v in r.ratios.values())
    assert not (tmp_path / "d3rlpy_logs").exists()
