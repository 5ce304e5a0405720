"""Every SQL file parses and transpiles from DuckDB to Spark SQL; build steps document params.

The transpiled text uses Spark's ``:name`` parameter markers, ``COLLECT_LIST`` windows,
``TRANSFORM``/``FILTER`` lambdas and numeric ``RANGE`` frames. DuckDB's ``epoch_us`` has no
sqlglot mapping and is passed through (Spark spells it ``unix_micros``). List subscripts with a
computed index are cast to INTEGER so that sqlglot shifts them from DuckDB's 1-based to Spark's
0-based indexing. test_sql_spark.py runs the transpiled steps on Spark.
"""

from __future__ import annotations

import re

import pytest
import sqlglot

from sql.loader import list_sql, read_sql, sql_params

FILES = list_sql() + list_sql("checks")
BUILD_FILES = [f for f in FILES if re.match(r"^(checks/dq_|checks/fused_|int_|fct_)", f)]


def test_there_are_sql_files():
    assert {"int_events.sql", "fct_transitions.sql", "checks/dq_next_state.sql"} <= set(FILES)


@pytest.mark.parametrize("name", FILES)
def test_transpiles_to_spark(name):
    text = read_sql(name)
    statements = sqlglot.transpile(
        text, read="duckdb", write="spark", unsupported_level=sqlglot.ErrorLevel.RAISE
    )
    assert len([s for s in statements if s.strip()]) == 1, "one statement per file"


@pytest.mark.parametrize("name", BUILD_FILES)
def test_build_step_is_a_select_with_documented_parameters(name):
    text = read_sql(name)
    tree = sqlglot.parse_one(text, read="duckdb")
    assert isinstance(tree, sqlglot.exp.Query), "build steps and checks are plain queries"
    header = "\n".join(line for line in text.splitlines() if line.startswith("--"))
    assert header.startswith(f"-- {name.split('/')[-1][:-4]}:"), "header names the step"
    for param in sql_params(text):
        assert f"${param}" in header, f"${param} is not listed in the header comment"


@pytest.mark.parametrize("name", [f for f in BUILD_FILES if f.startswith(("int_", "fct_"))])
def test_window_steps_keep_windows_portable(name):
    spark = sqlglot.transpile(read_sql(name), read="duckdb", write="spark", comments=False)[0]
    # DuckDB-only spellings that have a portable form must not appear
    for banned in ("QUALIFY", "ASOF", "LIST_RESIZE", "LIST_REVERSE", "ISODOW", "->>"):
        assert banned not in spark.upper(), banned
