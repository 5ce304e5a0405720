"""``offrec bench ingest`` at a tiny scale: both contenders load the same simulated files."""

from __future__ import annotations

from pathlib import Path

import duckdb

from offrec.bench import BenchOptions, run_suite
from offrec.benches import ingest as bench


def test_bench_suite_runs_ours_and_plain_on_the_same_rows(tmp_path: Path) -> None:
    opts = BenchOptions(repeat=1, scale=0.0003, seed=1, workdir=tmp_path)
    suite = bench.suite(opts)
    assert [c.name for c in suite.comparisons] == [
        "3,000 events, parquet",
        "3,000 events, csv",
        "3,000 events, parquet, pseudonymise user_id",
    ]
    results = run_suite(suite, opts)
    loaded = {"rows_read": 3000, "rows_loaded": 3000, "rows_rejected": 0, "rows_duplicate": 0}
    for r in results:
        assert r.ours.extra == loaded
        plain = r.name != "3,000 events, parquet, pseudonymise user_id"
        assert r.baselines[0].extra == ({"rows": 3000} if plain else loaded)
        assert r.ratios[r.baselines[0].name] > 0
    files = sorted(p.name for p in (tmp_path / "ingest-inputs").iterdir())
    assert files == ["events-3000-1.csv", "events-3000-1.parquet"]
    con = duckdb.connect()
    ids = con.execute(
        "SELECT count(DISTINCT event_id), count(*) FROM read_csv($p)",
        {"p": str(tmp_path / "ingest-inputs" / "events-3000-1.csv")},
    ).fetchall()
    con.close()
    assert ids == [(3000, 3000)]
    # inputs are reused, not regenerated, for the same size and seed
    stamp = (tmp_path / "ingest-inputs" / "events-3000-1.parquet").stat().st_mtime_ns
    bench.make_inputs(tmp_path / "ingest-inputs", 3000, 1)
    assert (tmp_path / "ingest-inputs" / "events-3000-1.parquet").stat().st_mtime_ns == stamp
