"""The build reports where its time goes and frees intermediate tables once they are read."""

from __future__ import annotations

import re

from sql.build import _FCT_STEPS, INT_STEPS, _last_use
from sql.loader import read_sql

GOOD = [
    dict(t=0, session="s1", type="impression", item="A", position=0, propensity=0.5, request="a"),
    dict(t=2, session="s1", type="click", item="A", request="a"),
    dict(t=9, session="s1", type="impression", item="B", position=0, propensity=0.5, request="b"),
    dict(t=50, session="s2", user="u2", type="impression", item="A", position=0, request="c"),
]


def test_build_result_names_every_phase_and_gate(events, build):
    events(GOOD)
    res = build()
    phases = list(res.timings)
    want = [f"step:{s}" for s in INT_STEPS] + [f"write:{t}" for _, t in _FCT_STEPS]
    want += ["write:feature_spec", "summary", "gates", "commit", "parquet"]
    assert [p for p in phases if p != "fingerprint"] == want
    assert all(v >= 0 for v in res.timings.values())
    assert sum(res.timings.values()) <= res.elapsed_s + 1e-6
    assert len(res.gates) == 7 and all(g.seconds >= 0 for g in res.gates)


def _reads(step: str, text: str) -> bool:
    return re.search(rf"\b{step}\b", text) is not None


def test_int_tables_are_kept_exactly_until_their_last_reader():
    last = _last_use()
    assert set(last) == set(INT_STEPS)
    final = " ".join(read_sql(f"{s}.sql") for s, _ in _FCT_STEPS) + read_sql(
        "fct_feature_stats.sql"
    )
    for i, step in enumerate(INT_STEPS):
        later = [(s, read_sql(f"{s}.sql")) for s in INT_STEPS[i + 1 :]]
        if _reads(step, final) or not any(_reads(step, t) for _, t in later):
            assert last[step] == "", step
            continue
        # dropped right after its last reader ran: nothing after that reader reads it
        reader = last[step]
        assert _reads(step, read_sql(f"{reader}.sql"))
        after = INT_STEPS[INT_STEPS.index(reader) + 1 :]
        assert not any(_reads(step, read_sql(f"{s}.sql")) for s in after), step
    # the big per-event tables are freed before the final steps run
    assert last["int_events"] and last["int_session_state"] == "int_features"


def test_intermediate_tables_are_gone_after_a_build(con, events, build):
    events(GOOD)
    build()
    rows = con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
    temp = {r[0] for r in rows}
    assert not temp & set(INT_STEPS)


def test_file_warehouse_builds_int_tables_in_a_scratch_file_it_removes(con, events, tmp_path):
    """On a warehouse file the int_ tables live in an attached scratch database (compressed,
    outside the memory budget); the result equals the in-memory build, and afterwards nothing
    is attached, the search path is as it was and no scratch file is left."""
    import duckdb

    from sql.build import build_dataset
    from sql.config import BuildConfig

    events(GOOD)
    con.execute(f"ATTACH '{tmp_path / 'w-1.duckdb'}' AS w")
    con.execute("CREATE TABLE w.main.events AS FROM memory.main.events")
    con.execute("DETACH w")
    cfg = BuildConfig(train_frac=1.0, validation_frac=0.0, test_frac=0.0)
    results = []
    for c in (con, duckdb.connect(str(tmp_path / "w-1.duckdb"))):
        before = c.execute("SELECT current_setting('search_path')").fetchall()
        res = build_dataset(c, cfg, datasets_dir=tmp_path / "ds")
        assert c.execute("SELECT current_setting('search_path')").fetchall() == before
        names = {r[0] for r in c.sql("SELECT database_name FROM duckdb_databases()").fetchall()}
        assert not any("scratch" in n for n in names), names
        rows = c.execute(
            "SELECT episode_id, step, state, next_state, reward FROM transitions "
            "WHERE dataset_version = $v ORDER BY ALL",
            {"v": res.version},
        ).fetchall()
        results.append((res.version, rows))
    c.close()
    assert results[0] == results[1] and len(results[0][1]) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "w-1.duckdb"]
