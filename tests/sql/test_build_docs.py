"""docs/datasets.md documents every build table, column, gate and state feature."""

from __future__ import annotations

import re
from pathlib import Path

from sql.features import state_layout
from sql.loader import list_sql
from sql.schema import TABLES

DOC = Path(__file__).resolve().parents[2] / "docs" / "datasets.md"


def _section(text: str, table: str) -> str:
    match = re.search(rf"^### {table} .*?(?=^### |^## |\Z)", text, flags=re.M | re.S)
    assert match, f"docs/datasets.md has no '### {table}' section"
    return match.group(0)


def test_every_table_and_column_is_documented():
    text = DOC.read_text()
    for table, columns in TABLES.items():
        section = _section(text, table)
        for col in columns:
            row = re.search(rf"^\| `{col.name}` \| (\S+)", section, flags=re.M)
            assert row, f"{table}.{col.name} is not documented"
            assert col.sql_type.startswith(row.group(1)), f"{table}.{col.name} type differs"


def test_every_gate_and_feature_is_documented():
    text = DOC.read_text()
    for name in list_sql("checks"):
        if "/dq_" in name:
            assert f"`{Path(name).stem}`" in text, name
    names, _ = state_layout(3, 4, "onehot")
    for name in names:
        base = re.sub(r"_\d+$", "", name)
        assert base in text, name
