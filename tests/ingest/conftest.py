"""Fixtures for the ingest tests: tiny raw files written by hand and warehouse snapshots."""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

HEADER = (
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


def canon(i: int, **over: Any) -> dict[str, Any]:
    """A valid canonical raw row number ``i`` (an impression unless overridden)."""
    row = {
        "event_id": f"e{i:05d}",
        "ts": f"2024-03-04T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
        "user_id": f"u{i % 3}",
        "session_id": f"s{i % 3}",
        "event_type": "impression",
        "item_id": f"i{i % 7}",
        "position": str(i % 3),
        "propensity": "0.25",
        "price": "9.5",
        "request_id": f"r{i:05d}",
    }
    row.update(over)
    return row


def csv_text(
    rows: Sequence[dict[str, Any]], header: Sequence[str] = HEADER, newline: str = "\n"
) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=newline)
    writer.writerow(header)
    for r in rows:
        writer.writerow(["" if r.get(h) is None else r.get(h) for h in header])
    return buf.getvalue()


def write_csv(
    path: Path,
    rows: Sequence[dict[str, Any]],
    header: Sequence[str] = HEADER,
    *,
    newline: str = "\n",
    bom: bool = False,
    gz: bool = False,
) -> Path:
    """Write rows (dicts) as CSV; ``None`` is an empty field."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = csv_text(rows, header, newline).encode("utf-8")
    if bom:
        data = b"\xef\xbb\xbf" + data
    if gz:
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path


def snapshot(warehouse: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every ingest table (sorted), to compare a warehouse before and after."""
    if not warehouse.exists():
        return {}
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables ORDER BY 1"
            ).fetchall()
        ]
        return {t: sorted(con.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}
    finally:
        con.close()


def query(warehouse: Path, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, params or {}).fetchall()
    finally:
        con.close()


@dataclass(frozen=True)
class Helpers:
    canon: Callable[..., dict[str, Any]]
    csv_text: Callable[..., str]
    write_csv: Callable[..., Path]
    snapshot: Callable[[Path], dict[str, list[tuple[Any, ...]]]]
    query: Callable[..., list[tuple]]
    header: tuple[str, ...]


@pytest.fixture(scope="session")
def h() -> Helpers:
    return Helpers(canon, csv_text, write_csv, snapshot, query, HEADER)


@pytest.fixture
def wh(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.duckdb"


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
