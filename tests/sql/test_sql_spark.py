"""The build's SQL runs on Spark: transpiled with sqlglot, executed on local[2], same dataset.

Every ``int_`` step and the ``fct_`` steps that write rows are transpiled from DuckDB to Spark
SQL (the only hand mapping: DuckDB's ``epoch_us`` is Spark's ``unix_micros``), run on a tiny
hand-made events table with the build's own parameters, each step a temporary view, and the
resulting transitions, episodes, actions and item_actions must equal what the DuckDB build
wrote. Needs pyspark (dev extra) and a Java runtime; skipped with the reason when either is
missing.
"""

from __future__ import annotations

import math
import shutil
from datetime import datetime
from typing import Any

import duckdb
import pytest

from sql.build import INT_STEPS, _fingerprint, _step_params, build_dataset
from sql.config import BuildConfig
from sql.loader import read_sql, sql_params
from sql.schema import TABLES

sqlglot = pytest.importorskip("sqlglot")

pytestmark = pytest.mark.slow

_EVENT_COLUMNS = (
    "event_id",
    "ts",
    "user_id",
    "session_id",
    "event_type",
    "item_id",
    "position",
    "propensity",
    "price",
    "request_id",
)


def _imp(t, session, item, pos, request, *, user="u1", prop=0.5):
    return dict(
        t=t,
        session=session,
        user=user,
        type="impression",
        item=item,
        position=pos,
        propensity=prop,
        request=request,
    )


def _resp(t, session, kind, item, request=None, *, user="u1", price=None):
    return dict(t=t, session=session, user=user, type=kind, item=item, request=request, price=price)


# Five sessions of two users covering: a slate shown at once (ties broken by position),
# responses by request id (click, add_to_cart, purchase with price), an impression without
# request id (session attribution up to the next impression), a response outside the
# attribution window, a NULL position, a user's earlier session with a purchase (history
# features), items outside top_n (the `other` action) and all three splits.
ROWS: list[dict[str, Any]] = [
    _imp(0, "s1", "A", 0, "r1"),
    _imp(0, "s1", "B", 1, "r2"),
    _resp(5, "s1", "click", "A", "r1"),
    _resp(20, "s1", "add_to_cart", "A", "r1"),
    _resp(40, "s1", "purchase", "A", "r1", price=12.5),
    _imp(60, "s1", "C", 0, "r3"),
    _resp(4000, "s1", "click", "C", "r3"),
    _imp(100_000, "s2", "A", 0, None),
    _resp(100_010, "s2", "view", "A"),
    _imp(100_020, "s2", "B", None, None, prop=0.25),
    _resp(100_030, "s2", "click", "B"),
    _resp(100_031, "s2", "purchase", "B", price=3.0),
    _imp(200_000, "s3", "D", 0, "r4", user="u2"),
    _resp(200_001, "s3", "click", "D", "r4", user="u2"),
    _imp(200_002, "s3", "A", 1, "r5", user="u2"),
    _imp(300_000, "s4", "B", 0, "r6"),
    _resp(300_003, "s4", "view", "E"),
    _imp(300_004, "s4", "A", 0, "r7"),
    _resp(300_005, "s4", "purchase", "A", "r7", price=7.25),
    _imp(400_000, "s5", "E", 2, "r8", user="u2"),
    _imp(400_009, "s5", "B", 0, "r9", user="u2"),
]

CFG = BuildConfig(top_n=2, train_frac=0.6, validation_frac=0.2, test_frac=0.2, lookback_days=30)


@pytest.fixture(scope="module")
def spark():
    if shutil.which("java") is None:
        pytest.skip("no Java runtime on PATH (Spark needs Java 17+)")
    pyspark_sql = pytest.importorskip("pyspark.sql", reason="pyspark is not installed (dev extra)")
    session = (
        pyspark_sql.SparkSession.builder.master("local[2]")
        .appName("offrec-sql-on-spark")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.sql.codegen.wholeStage", "false")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "512m")
        .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def to_spark(text: str) -> str:
    """DuckDB SQL -> Spark SQL (``$name`` parameters become ``:name`` markers)."""
    out = sqlglot.transpile(text, read="duckdb", write="spark", comments=False)
    assert len(out) == 1
    return out[0].replace("EPOCH_US(", "UNIX_MICROS(")


def _run_step(spark, name: str, values: dict[str, Any]):
    text = read_sql(f"{name}.sql")
    df = spark.sql(to_spark(text), args={k: values[k] for k in sql_params(text)})
    # materialise each step so that later plans stay small (Spark re-plans views inline)
    df = df.localCheckpoint()
    df.createOrReplaceTempView(name)
    return df


def _rows(df_or_rows, columns: tuple[str, ...], key: tuple[str, ...]) -> list[dict[str, Any]]:
    recs = [{c: r[c] for c in columns} for r in df_or_rows]
    return sorted(recs, key=lambda r: tuple(str(r[k]) for k in key))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list | tuple) or isinstance(b, list | tuple):
        if a is None or b is None:
            return a is b
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-6)
    return a == b


def test_build_steps_on_spark_equal_duckdb(spark, make_events_fn, tmp_path):
    con = duckdb.connect()
    con.execute("SET threads = 1")
    make_events_fn(con, ROWS)
    res = build_dataset(con, CFG, datasets_dir=tmp_path / "datasets")
    assert res.summary["decisions"]["total"] == 11

    events = con.execute(f"SELECT {', '.join(_EVENT_COLUMNS)} FROM events").fetchall()
    schema = (
        "event_id STRING, ts TIMESTAMP, user_id STRING, session_id STRING, event_type STRING, "
        "item_id STRING, position INT, propensity DOUBLE, price DOUBLE, request_id STRING"
    )
    spark.createDataFrame(events, schema).createOrReplaceTempView("events")

    params = _step_params(CFG, res.version, _fingerprint(con))
    assert isinstance(params["window_end"], datetime)
    for step in INT_STEPS:
        _run_step(spark, step, params)
    n_actions = spark.sql("SELECT count(*) FROM int_item_actions WHERE NOT is_other").first()[0]
    n_actions += 1
    values = {
        **params,
        "none": n_actions,
        "bag_len": n_actions,
        "sid_lo": 0,
        "sid_hi": 1 << 40,
    }
    keys = {
        "transitions": ("episode_id", "step"),
        "episodes": ("episode_id",),
        "actions": ("action",),
        "item_actions": ("item_id",),
    }
    steps = {
        "transitions": "fct_transitions",
        "episodes": "fct_episodes",
        "actions": "fct_actions",
        "item_actions": "fct_item_actions",
    }
    for table, step in steps.items():
        columns = tuple(c.name for c in TABLES[table])
        got = _rows(_run_step(spark, step, values).collect(), columns, keys[table])
        cur = con.execute(
            f"SELECT {', '.join(columns)} FROM {table} WHERE dataset_version = $v",
            {"v": res.version},
        )
        want = _rows(
            [dict(zip(columns, r, strict=True)) for r in cur.fetchall()], columns, keys[table]
        )
        assert len(got) == len(want) > 0, table
        for g, w in zip(got, want, strict=True):
            diff = {c: (g[c], w[c]) for c in columns if not _same(g[c], w[c])}
            assert not diff, f"{table} row {tuple(w[k] for k in keys[table])}: spark, duckdb {diff}"
