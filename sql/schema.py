"""The warehouse tables a build writes: columns, SQL types and what each column means.

One source for the DDL the build runs (``create_tables``), the Parquet copies and the table
documentation in docs/datasets.md (a test checks that every column here is documented there).
Every table is keyed by ``dataset_version`` so several versions coexist.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

__all__ = ["Column", "TABLES", "DATASET_TABLES", "create_tables", "ddl"]


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    doc: str


def _c(name: str, sql_type: str, doc: str) -> Column:
    return Column(name, sql_type, doc)


_VERSION = _c("dataset_version", "VARCHAR NOT NULL", "dataset version id (see dataset_versions)")

TABLES: dict[str, tuple[Column, ...]] = {
    "transitions": (
        _VERSION,
        _c("split", "VARCHAR NOT NULL", "'train', 'validation' or 'test' (by session start)"),
        _c("episode_id", "VARCHAR NOT NULL", "the session id; one episode per session"),
        _c("user_id", "VARCHAR NOT NULL", "user of the session"),
        _c("step", "BIGINT NOT NULL", "0-based rank of the decision in its session"),
        _c("decision_ts", "TIMESTAMP NOT NULL", "time of the decision (UTC)"),
        _c("event_id", "VARCHAR NOT NULL", "the decision's event in the warehouse"),
        _c("item_id", "VARCHAR NOT NULL", "item shown (logged) or acted on (organic)"),
        _c("action", "INTEGER NOT NULL", "action id of item_id (see actions)"),
        _c("position", "INTEGER", "slot of the impression (NULL in organic mode)"),
        _c(
            "propensity",
            "DOUBLE",
            "logging policy's probability of this impression; NULL "
            "when unknown and always NULL in organic mode",
        ),
        _c("reward", "DOUBLE NOT NULL", "weighted sum of the four components"),
        _c("r_click", "BIGINT NOT NULL", "attributed click and view events"),
        _c("r_cart", "BIGINT NOT NULL", "attributed add_to_cart events"),
        _c("r_purchase", "BIGINT NOT NULL", "attributed purchase events"),
        _c("r_revenue", "DOUBLE NOT NULL", "summed price of the attributed purchases"),
        _c("terminal", "BOOLEAN NOT NULL", "last decision of a session that truly ended"),
        _c(
            "timeout",
            "BOOLEAN NOT NULL",
            "last kept decision of a session cut by the episode cap or the data window",
        ),
        _c("state", "FLOAT[] NOT NULL", "raw state vector, layout in feature_spec"),
        _c(
            "next_state",
            "FLOAT[]",
            "state of the next decision in the episode; NULL on the last row",
        ),
    ),
    "episodes": (
        _VERSION,
        _c("episode_id", "VARCHAR NOT NULL", "the session id"),
        _c("user_id", "VARCHAR NOT NULL", "user of the session"),
        _c("split", "VARCHAR NOT NULL", "'train', 'validation' or 'test'"),
        _c("start_ts", "TIMESTAMP NOT NULL", "first event of the session (any type)"),
        _c("n_steps", "INTEGER NOT NULL", "decisions kept (rows in transitions)"),
        _c("n_dropped", "INTEGER NOT NULL", "decisions dropped by max_episode_len"),
        _c("return", "DOUBLE NOT NULL", "undiscounted sum of the episode's rewards"),
        _c("ended", "VARCHAR NOT NULL", "'terminal' or 'timeout' (its last row's flag)"),
        _c(
            "is_new_user",
            "BOOLEAN NOT NULL",
            "no other session of this user in the lookback "
            "window before this one (hist_sessions = 0)",
        ),
    ),
    "actions": (
        _VERSION,
        _c("action", "INTEGER NOT NULL", "action id 0 .. A-1; A-1 is 'other'"),
        _c("item_id", "VARCHAR", "the item of a named action; NULL for 'other'"),
        _c("is_other", "BOOLEAN NOT NULL", "true only for the 'other' action"),
        _c("train_count", "BIGINT NOT NULL", "decisions on the action's item(s) in train"),
        _c(
            "n_items",
            "INTEGER NOT NULL",
            "items in the action: 1, or for 'other' the distinct items seen that fall in it",
        ),
    ),
    "item_actions": (
        _VERSION,
        _c("item_id", "VARCHAR NOT NULL", "every item seen in the version's sessions"),
        _c("action", "INTEGER NOT NULL", "its action id (the 'other' id for non-top items)"),
        _c("is_other", "BOOLEAN NOT NULL", "the item falls in the 'other' action"),
        _c("train_count", "BIGINT NOT NULL", "decisions on the item in train"),
    ),
    "feature_spec": (
        _VERSION,
        _c("name", "VARCHAR NOT NULL", "feature name (docs/design.md section 3)"),
        _c("offset", "INTEGER NOT NULL", "0-based position in state / next_state"),
        _c("kind", "VARCHAR NOT NULL", "'count', 'numeric', 'index' or 'onehot'"),
        _c("mean", "DOUBLE NOT NULL", "train mean (0 for index/onehot)"),
        _c("std", "DOUBLE NOT NULL", "train population std; 1 when 0 and for index/onehot"),
    ),
    "dataset_versions": (
        _c(
            "dataset_version",
            "VARCHAR NOT NULL",
            "version id: hash of config, input fingerprint and code version",
        ),
        _c("created_at", "TIMESTAMP NOT NULL", "when this version was (last) built (UTC)"),
        _c("mode", "VARCHAR NOT NULL", "'logged' or 'organic'"),
        _c("n_actions", "INTEGER NOT NULL", "A = named actions + 1 ('other')"),
        _c("state_dim", "INTEGER NOT NULL", "length of state vectors"),
        _c("last_k", "INTEGER NOT NULL", "k of prev_action_* / last_item_*"),
        _c("item_encoding", "VARCHAR NOT NULL", "'onehot' or 'index'"),
        _c("n_episodes", "BIGINT NOT NULL", "episodes in all splits"),
        _c("n_transitions", "BIGINT NOT NULL", "decisions in all splits"),
        _c("window_start", "TIMESTAMP", "start_date of the build (NULL = unbounded)"),
        _c("window_end", "TIMESTAMP", "end_date of the build (NULL = unbounded)"),
        _c("watermark", "TIMESTAMP", "latest event time used (capped at window_end)"),
        _c("input_events", "BIGINT NOT NULL", "rows of the events table at build time"),
        _c("input_fingerprint", "BIGINT NOT NULL", "order-independent hash of those rows"),
        _c("code_version", "VARCHAR NOT NULL", "hash of the build's SQL and Python code"),
        _c("config_json", "VARCHAR NOT NULL", "the [build] config used (JSON)"),
        _c("summary_json", "VARCHAR NOT NULL", "the build summary (JSON)"),
    ),
}

#: The tables keyed by dataset_version that a build fills (and replaces on a rebuild).
DATASET_TABLES: tuple[str, ...] = tuple(TABLES)


def ddl(table: str) -> str:
    """``CREATE TABLE IF NOT EXISTS`` statement of one build table."""
    cols = ",\n    ".join(f'"{c.name}" {c.sql_type}' for c in TABLES[table])
    return f'CREATE TABLE IF NOT EXISTS "{table}" (\n    {cols}\n)'


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create every build table that does not exist yet (existing ones are left as they are)."""
    for table in TABLES:
        con.execute(ddl(table))
