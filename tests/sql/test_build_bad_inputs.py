"""Bad configs, bad warehouse contents and broken datasets: each fails with a clear error."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from sql.build import FUSED_CHECKS, build_dataset, run_gates
from sql.config import BuildConfig, RewardConfig
from sql.dataset import load_action_space, load_feature_spec, load_transitions
from sql.errors import BuildError, GateFailed
from sql.loader import read_sql, sql_params

GOOD = [
    dict(t=0, session="s1", type="impression", item="A", position=0, propensity=0.5, request="a"),
    dict(t=2, session="s1", type="click", item="A", request="a"),
    dict(t=9, session="s1", type="impression", item="B", position=0, propensity=0.5, request="b"),
    dict(
        t=50,
        session="s2",
        user="u2",
        type="impression",
        item="A",
        position=0,
        propensity=0.4,
        request="c",
    ),
]

# --------------------------------------------------------------------------------------------
# config


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "bandit"}, r"mode = 'bandit': must be 'logged' or 'organic'"),
        ({"item_encoding": "bag"}, r"item_encoding = 'bag'"),
        ({"top_n": 0}, r"top_n = 0: must be a whole number >= 1"),
        ({"last_k": 0}, r"last_k = 0"),
        ({"max_episode_len": -1}, r"max_episode_len = -1"),
        ({"attribution_window_s": 0.0}, r"attribution_window_s = 0.0: must be a number > 0"),
        ({"session_gap_s": float("nan")}, r"session_gap_s = nan"),
        ({"lookback_days": -1.0}, r"lookback_days = -1.0: must be >= 0"),
        ({"train_frac": 0.5}, r"must sum to 1 \(got 0.5 \+ 0.1 \+ 0.1\)"),
        ({"train_frac": 0.0, "validation_frac": 0.5, "test_frac": 0.5}, r"train_frac > 0"),
        ({"validation_start": "2024-01-02"}, r"validation_start and test_start go together"),
        (
            {"validation_start": "2024-01-05", "test_start": "2024-01-02"},
            r"test_start = '2024-01-02' is before validation_start",
        ),
        ({"start_date": "2024-02-30"}, r"start_date = '2024-02-30': not an ISO date"),
        (
            {"start_date": "2024-03-01", "end_date": "2024-03-01"},
            r"end_date = '2024-03-01' must be after start_date",
        ),
        ({"memory_limit": " "}, r"memory_limit must be a size"),
    ],
)
def test_bad_build_config(kwargs, message):
    with pytest.raises(BuildError, match=message):
        BuildConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"click": 0, "add_to_cart": 0, "purchase": 0, "revenue": 0}, r"are all 0"),
        ({"purchase": float("inf")}, r"purchase = inf: must be finite"),
        ({"click": "1"}, r"click = '1': must be a number"),
    ],
)
def test_bad_reward_config(kwargs, message):
    with pytest.raises(BuildError, match=message):
        RewardConfig(**kwargs)


def test_toml_errors_name_the_file_and_section(tmp_path):
    from offrec.config import load_config
    from offrec.errors import ConfigError

    path = tmp_path / "offrec.toml"
    path.write_text('[build]\nmode = "organic"\ntrain_frac = 0.9\n')
    with pytest.raises(ConfigError, match=r"offrec.toml: \[build\]: .*must sum to 1"):
        load_config(path)
    path.write_text("[build.reward]\nclick = 1\nlikes = 2\n")
    with pytest.raises(ConfigError, match=r"unknown key \[build.reward\] likes"):
        load_config(path)
    path.write_text("[build]\ntop_n = 0\n")
    with pytest.raises(ConfigError, match=r"\[build\] top_n = 0: must be >= 1"):
        load_config(path)


# --------------------------------------------------------------------------------------------
# warehouse contents


def _events_with(con, events, rows=GOOD):
    events(rows)
    return con


def _drop_column(con, events):
    events(GOOD)
    con.execute("ALTER TABLE events DROP COLUMN request_id")


def _ts_as_text(con, events):
    con.execute(
        "CREATE TABLE events AS SELECT 'e1' AS event_id, '2024-01-01' AS ts, 'u' AS "
        "user_id, 's' AS session_id, 'impression' AS event_type, 'A' AS item_id, "
        "0 AS position, 0.5 AS propensity, 1.0 AS price, 'r' AS request_id"
    )


def _empty(con, events):
    events([])


def _null_session(con, events):
    events(GOOD)
    con.execute("ALTER TABLE events ALTER session_id DROP NOT NULL")
    con.execute("UPDATE events SET session_id = NULL WHERE event_id = 'e0001'")


def _blank_session(con, events):
    events(GOOD)
    con.execute("UPDATE events SET session_id = '  ' WHERE event_id = 'e0001'")


def _unknown_type(con, events):
    events([*GOOD, dict(t=3, session="s1", type="like", item="A", id="odd")])


def _shared_session(con, events):
    events([*GOOD, dict(t=4, session="s1", user="intruder", type="click", item="B")])


def _no_impressions(con, events):
    events([dict(t=0, type="view", item="A"), dict(t=1, type="click", item="A")])


@pytest.mark.parametrize(
    ("setup", "cfg", "message"),
    [
        (lambda con, events: None, {}, r"no `events` table; load raw logs with `offrec ingest`"),
        (_drop_column, {}, r"table events lacks column\(s\) request_id"),
        (_ts_as_text, {}, r"column ts has type VARCHAR, expected TIMESTAMP"),
        (_empty, {}, r"table events is empty"),
        (_null_session, {}, r"rows with an empty event_id, ts, user_id, session_id"),
        (_blank_session, {}, r"every decision needs a session"),
        (_unknown_type, {}, r"unknown event_type 'like' \(1 rows, e.g. event_id 'odd'\)"),
        (
            _shared_session,
            {},
            r"session_id 's1' has events of several users \(e.g. 'intruder' "
            r"and 'u1'\)",
        ),
        (_no_impressions, {}, r"mode = 'logged' needs impression events but there are none"),
        (_events_with, {"mode": "organic"}, None),  # sanity: organic works on GOOD
        (
            lambda con, events: events([GOOD[0], GOOD[2]]),
            {"mode": "organic"},
            r"mode = 'organic' needs view/click/add_to_cart/purchase events",
        ),
        (
            _events_with,
            {"start_date": "2030-01-01"},
            r"no sessions start in the build window "
            r"in \[start_date=2030-01-01",
        ),
        (
            _events_with,
            {"validation_start": "2020-01-01", "test_start": "2020-01-02"},
            r"train split is empty: validation_start = '2020-01-01' is not after the first "
            r"session start \(2024-03-04 10:00:00\)",
        ),
    ],
)
def test_bad_warehouse_contents(con, events, tmp_path, setup, cfg, message):
    setup(con, events)
    config = BuildConfig(**{"train_frac": 1.0, "validation_frac": 0.0, "test_frac": 0.0, **cfg})
    if message is None:
        build_dataset(con, config, datasets_dir=tmp_path)
        return
    with pytest.raises(BuildError, match=message):
        build_dataset(con, config, datasets_dir=tmp_path)
    tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
    assert not tables & {"int_events", "int_features"}, "temp tables are dropped after errors"


def test_bad_arguments(con, events, tmp_path):
    events(GOOD)
    with pytest.raises(BuildError, match=r"cfg must be a sql.config.BuildConfig, got dict"):
        build_dataset(con, {"mode": "logged"}, datasets_dir=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(BuildError, match=r"needs a DuckDB connection or a warehouse path, got int"):
        build_dataset(42, BuildConfig(), datasets_dir=tmp_path)  # type: ignore[arg-type]
    missing = tmp_path / "nope.duckdb"
    with pytest.raises(
        BuildError,
        match=r"warehouse .*nope.duckdb does not exist; run `offrec "
        r"ingest` first",
    ):
        build_dataset(missing, BuildConfig(), datasets_dir=tmp_path)
    assert not missing.exists()


def test_incompatible_existing_table(con, events, tmp_path):
    events(GOOD)
    con.execute("CREATE TABLE episodes (dataset_version VARCHAR, episode_id VARCHAR)")
    with pytest.raises(
        BuildError,
        match=r"table episodes in the warehouse has columns "
        r"\['dataset_version', 'episode_id'\], expected",
    ):
        build_dataset(
            con, BuildConfig(train_frac=1, validation_frac=0, test_frac=0), datasets_dir=tmp_path
        )


def test_locked_warehouse(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "wh.duckdb"
    duckdb.connect(str(path)).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
            "print('ready', flush=True); time.sleep(30)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        from sql.errors import WarehouseBusy

        with pytest.raises(WarehouseBusy, match=r"is in use by another process"):
            build_dataset(path, BuildConfig(), datasets_dir=tmp_path)
    finally:
        holder.kill()
        holder.wait()


# --------------------------------------------------------------------------------------------
# loaders


def test_loader_errors(con, events, tmp_path):
    events(GOOD)
    with pytest.raises(BuildError, match=r"no datasets yet; run `offrec build` first"):
        load_transitions(con)
    res = build_dataset(
        con, BuildConfig(train_frac=1, validation_frac=0, test_frac=0), datasets_dir=tmp_path
    )
    with pytest.raises(
        BuildError,
        match=rf"version 'ds-000' is not in the warehouse; recent "
        rf"versions: {res.version}",
    ):
        load_feature_spec(con, "ds-000")
    with pytest.raises(
        BuildError,
        match=r"split must be one of train, validation, test or None, "
        r"got 'dev'",
    ):
        load_transitions(con, split="dev")
    with pytest.raises(BuildError, match=r"version must be a string"):
        load_action_space(con, 3)  # type: ignore[arg-type]
    with pytest.raises(BuildError, match=r"warehouse .*absent.duckdb does not exist"):
        load_transitions(tmp_path / "absent.duckdb")
    with pytest.raises(BuildError, match=r"expected a DuckDB connection or a warehouse path"):
        load_transitions(None)  # type: ignore[arg-type]
    con.execute("DELETE FROM feature_spec WHERE name = 'step'")
    with pytest.raises(BuildError, match=r"feature_spec has 21 rows for a state of 22 values"):
        load_feature_spec(con)


# --------------------------------------------------------------------------------------------
# data-quality gates


@pytest.fixture
def built(con, events, tmp_path):
    events(GOOD)
    res = build_dataset(
        con, BuildConfig(train_frac=1, validation_frac=0, test_frac=0), datasets_dir=tmp_path
    )
    assert all(g.passed for g in res.gates) and len(res.gates) == 7
    # passing gates name the columns their rows would have, fused or not
    assert all(g.columns and not g.sample for g in res.gates)
    return res.version


GATE_CORRUPTIONS = [
    ("UPDATE transitions SET propensity = 1.5 WHERE step = 1", "dq_propensity_range"),
    ("UPDATE transitions SET propensity = 0 WHERE step = 1", "dq_propensity_range"),
    (
        "UPDATE transitions SET state = list_transform(state, lambda x: x / 0.0) "
        "WHERE episode_id = 's2'",
        "dq_finite_features",
    ),
    (
        "UPDATE transitions SET next_state = [1.0, 2.0] WHERE step = 0 AND episode_id = 's1'",
        "dq_finite_features",
    ),
    (
        "UPDATE transitions SET terminal = true, timeout = true WHERE episode_id = 's2'",
        "dq_terminal_xor_timeout",
    ),
    (
        "UPDATE transitions SET timeout = true WHERE step = 0 AND episode_id = 's1'",
        "dq_terminal_xor_timeout",
    ),
    (
        "UPDATE transitions SET next_state = state WHERE step = 0 AND episode_id = 's1'",
        "dq_next_state",
    ),
    ("UPDATE transitions SET next_state = state WHERE episode_id = 's2'", "dq_next_state"),
    ("UPDATE transitions SET step = 5 WHERE step = 1", "dq_next_state"),
    ("DELETE FROM episodes WHERE episode_id = 's2'", "dq_decision_session"),
    ("UPDATE transitions SET episode_id = '' WHERE episode_id = 's2'", "dq_decision_session"),
    ("UPDATE episodes SET n_steps = 3 WHERE episode_id = 's1'", "dq_decision_session"),
    ("UPDATE transitions SET action = 7 WHERE step = 1", "dq_action_range"),
    ("UPDATE transitions SET action = 0 WHERE item_id = 'B'", "dq_action_range"),
    ("UPDATE transitions SET event_id = 'e0000'", "dq_unique_decisions"),
    ("UPDATE transitions SET action = -1 WHERE step = 0", "dq_action_range"),
    ("DELETE FROM item_actions WHERE item_id = 'B'", "dq_action_range"),
    (
        "UPDATE transitions SET next_state = NULL WHERE step = 0 AND episode_id = 's1'",
        "dq_next_state",
    ),
]


@pytest.mark.parametrize(("corruption", "check"), GATE_CORRUPTIONS)
def test_gates_catch_corruption(con, built, corruption, check):
    assert all(g.passed for g in run_gates(con, built, raise_on_failure=False))
    con.execute(corruption)
    results = {g.check: g for g in run_gates(con, built, raise_on_failure=False)}
    assert not results[check].passed and results[check].sample
    with pytest.raises(
        GateFailed,
        match=rf"data-quality gate {check} \(.+\) failed for dataset "
        rf"{built}: \d+ offending row",
    ) as info:
        run_gates(con, built)
    assert info.value.check == check or not results[info.value.check].passed
    assert info.value.rows and info.value.columns


@pytest.mark.parametrize(("corruption", "check"), GATE_CORRUPTIONS)
def test_fused_counts_equal_each_gates_own_count(con, built, corruption, check):
    # run_gates skips a row-level gate's own file when its fused count is 0, so the fused
    # pass must count exactly the rows each gate's file returns
    con.execute(corruption)
    state_dim = con.execute("SELECT state_dim FROM dataset_versions").fetchone()[0]
    values = {"dataset_version": built, "state_dim": state_dim}
    fused = con.execute(read_sql("checks/fused_row_checks.sql"), values).fetchone()
    own = []
    for name in FUSED_CHECKS:
        text = read_sql(f"checks/{name}.sql")
        params = {k: values[k] for k in sql_params(text)}
        own.append(con.execute(f"SELECT count(*) FROM ({text}) AS o", params).fetchone()[0])
    assert dict(zip(FUSED_CHECKS, fused, strict=True)) == dict(zip(FUSED_CHECKS, own, strict=True))
    assert check not in FUSED_CHECKS or own[FUSED_CHECKS.index(check)] > 0


def test_failing_gate_rolls_the_build_back(con, events, tmp_path):
    # a propensity outside (0, 1] passes the input checks but not dq_propensity_range
    events(
        [
            *GOOD,
            dict(
                t=60,
                session="s3",
                user="u3",
                type="impression",
                item="B",
                position=0,
                propensity=1.5,
                request="z",
            ),
        ]
    )
    with pytest.raises(
        GateFailed, match=r"dq_propensity_range .* 1 offending row.*rolled back"
    ) as info:
        build_dataset(
            con, BuildConfig(train_frac=1, validation_frac=0, test_frac=0), datasets_dir=tmp_path
        )
    assert info.value.check == "dq_propensity_range" and info.value.n_offending == 1
    assert "1.5" in str(info.value)
    tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
    assert "transitions" not in tables or con.execute(
        "SELECT count(*) FROM transitions"
    ).fetchone() == (0,)
    assert not list(Path(tmp_path).glob("ds-*")), "no Parquet for a failed build"


def test_duplicate_event_ids_fail_a_gate(con, events, tmp_path):
    rows = [
        dict(r, id="same" if r["type"] == "impression" and r["t"] < 10 else f"x{i}")
        for i, r in enumerate(GOOD)
    ]
    events(rows[:3] + [dict(rows[3], id="same")])
    with pytest.raises(
        GateFailed, match=r"dq_unique_decisions .*\n.*event_id .*\n  same \| 3 \| s1 \| s2"
    ):
        build_dataset(
            con, BuildConfig(train_frac=1, validation_frac=0, test_frac=0), datasets_dir=tmp_path
        )


def test_run_gates_unknown_version(con, built):
    with pytest.raises(BuildError, match=r"dataset version 'ds-x' is not in dataset_versions"):
        run_gates(con, "ds-x")
