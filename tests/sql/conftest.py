"""Fixtures for the dataset-build tests: a warehouse ``events`` table from hand-written rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import duckdb
import pytest

EVENTS_DDL = """
CREATE TABLE events (
    event_id VARCHAR NOT NULL, ts TIMESTAMP NOT NULL, user_id VARCHAR NOT NULL,
    session_id VARCHAR NOT NULL, event_type VARCHAR NOT NULL, item_id VARCHAR NOT NULL,
    position INTEGER, propensity DOUBLE, price DOUBLE, request_id VARCHAR, extra JSON,
    source_file VARCHAR, source_row BIGINT, ingested_at TIMESTAMP
)
"""

T0 = datetime(2024, 3, 4, 10, 0, 0)  # a Monday


def at(seconds: float) -> datetime:
    """T0 + seconds."""
    return T0 + timedelta(seconds=seconds)


def make_events(con: duckdb.DuckDBPyConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Create ``events`` from dicts with keys id, t (seconds after T0 or a datetime), user,
    session, type, item and optional position, propensity, price, request."""
    con.execute(EVENTS_DDL)
    values = []
    for i, r in enumerate(rows):
        t = r["t"]
        ts = t if isinstance(t, datetime) else at(t)
        values.append(
            (
                r.get("id", f"e{i:04d}"),
                ts,
                r.get("user", "u1"),
                r.get("session", "s1"),
                r["type"],
                r["item"],
                r.get("position"),
                r.get("propensity"),
                r.get("price"),
                r.get("request"),
                None,
                "test",
                i,
                ts,
            )
        )
    if values:
        con.executemany(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values
        )


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("SET threads = 1")
    yield c
    c.close()


@pytest.fixture
def events(con: duckdb.DuckDBPyConnection) -> Callable[[Sequence[dict[str, Any]]], None]:
    return lambda rows: make_events(con, rows)


def named_states(con: duckdb.DuckDBPyConnection, version: str) -> dict[tuple[str, int], dict]:
    """(episode_id, step) -> {the row's columns, then each state feature by name}.

    Feature names win over column names (``position`` is the feature: 0 where NULL).
    """
    from sql.dataset import load_feature_spec

    names = load_feature_spec(con, version).names
    cur = con.execute(
        "SELECT * FROM transitions WHERE dataset_version = $v ORDER BY episode_id, step",
        {"v": version},
    )
    cols = [d[0] for d in cur.description]
    out = {}
    for row in cur.fetchall():
        rec = dict(zip(cols, row, strict=True))
        rec.update(zip(names, rec["state"], strict=True))
        out[(rec["episode_id"], rec["step"])] = rec
    return out


@pytest.fixture
def named(con: duckdb.DuckDBPyConnection) -> Callable[[str], dict[tuple[str, int], dict]]:
    """named(version) -> named_states(con, version)."""
    return lambda version: named_states(con, version)


@pytest.fixture
def build(con: duckdb.DuckDBPyConnection, tmp_path):
    """build(**BuildConfig fields) -> BuildResult on the ``con`` warehouse."""
    from sql.build import build_dataset
    from sql.config import BuildConfig

    defaults = {"train_frac": 1.0, "validation_frac": 0.0, "test_frac": 0.0}

    def run(**overrides: Any):
        cfg = BuildConfig(**{**defaults, **overrides})
        return build_dataset(con, cfg, datasets_dir=tmp_path / "datasets")

    return run


@pytest.fixture
def make_events_fn() -> Callable[[duckdb.DuckDBPyConnection, Sequence[dict[str, Any]]], None]:
    return make_events
