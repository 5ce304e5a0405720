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
    assert pandas_["parquet_bytes"] > 0, "the pandas baseline writes its transitions"
    assert not (tmp_path / "datasets").exists(), "the suite cleans up its datasets"
    assert not (tmp_path / "pandas").exists(), "the suite cleans up the pandas Parquet"


@pytest.mark.slow
def test_pandas_reference_computes_the_same_states(tmp_path):
    """The bench's pandas baseline is an independent implementation: states must agree."""
    import duckdb
    import numpy as np

    from offrec.benches.build import pandas_build, prepare_warehouse
    from sql.build import build_dataset
    from sql.config import BuildConfig

    prepare_warehouse(tmp_path / "w.duckdb", 20_000, 11)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    res = build_dataset(con, BuildConfig(), datasets_dir=tmp_path / "ds")
    out = tmp_path / "pd" / "transitions.parquet"
    ref = pandas_build(con, 30.0, return_arrays=True, out_path=out)
    rows = con.execute(
        "SELECT event_id, state, next_state FROM transitions WHERE dataset_version = $v",
        {"v": res.version},
    ).fetchall()
    got = {e: (state, nxt or [0.0] * len(state)) for e, state, nxt in rows}
    assert len(got) == ref["rows"] > 1000
    states = np.array([got[e][0] for e in ref["event_ids"]], dtype=np.float32)
    np.testing.assert_allclose(states, ref["states"], rtol=1e-5, atol=1e-4)
    nexts = np.array([got[e][1] for e in ref["event_ids"]], dtype=np.float32)
    np.testing.assert_allclose(nexts, ref["next_states"], rtol=1e-5, atol=1e-4)
    # the Parquet it writes holds the same rows, states and next states (NULL on last rows)
    import pyarrow.parquet as pq

    written = pq.read_table(out).to_pydict()
    assert written["event_id"] == list(ref["event_ids"])
    assert np.array(written["state"], dtype=np.float32).tolist() == ref["states"].tolist()
    last = [n is None for n in written["next_state"]]
    assert sum(last) == len(set(written["episode_id"])) > 0
    filled = [n if n is not None else [0.0] * 70 for n in written["next_state"]]
    np.testing.assert_array_equal(np.array(filled, dtype=np.float32), ref["next_states"])
    assert set(written["split"]) == {"train", "validation", "test"}
