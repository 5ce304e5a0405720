"""``[ingest]`` section of offrec.toml."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["IngestConfig"]


@dataclass(frozen=True)
class IngestConfig:
    """Loading raw event logs into the warehouse."""

    mapping: str = field(
        default="simulator",
        metadata={"help": "column/value mapping: a built-in name or a path to a mapping TOML"},
    )
    session_gap_s: float = field(
        default=1800.0,
        metadata={"help": "inactivity gap that starts a new session when session_id is absent",
                  "gt": 0},
    )
    memory_limit: str = field(default="2GB", metadata={"help": "DuckDB memory_limit"})
    threads: int = field(default=2, metadata={"help": "DuckDB threads", "min": 1})
