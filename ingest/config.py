"""``[ingest]`` section of offrec.toml."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ingest.errors import IngestError

__all__ = ["IngestConfig", "BUILTIN_MAPPINGS"]

#: Mapping names shipped with offrec (``ingest/mappings/<name>.toml``).
BUILTIN_MAPPINGS: tuple[str, ...] = ("simulator", "retailrocket", "open_bandit")

_MEMORY = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class IngestConfig:
    """Loading raw event logs into the warehouse."""

    mapping: str = field(
        default="simulator",
        metadata={
            "help": "built-in column/value mapping of the raw logs (ignored when mapping_file "
            "is set)",
            "choices": BUILTIN_MAPPINGS,
        },
    )
    mapping_file: Path | None = field(
        default=None,
        metadata={
            "help": "a mapping TOML for another source (relative to this config file); "
            "see docs/ingest.md and examples/mappings/"
        },
    )
    session_gap_s: float = field(
        default=1800.0,
        metadata={
            "help": "inactivity gap that starts a new session when session_id is absent",
            "gt": 0,
        },
    )
    max_rejected_share: float = field(
        default=0.5,
        metadata={
            "help": "refuse a file (load none of it) when more than this share of its "
            "rows is rejected: usually a wrong mapping",
            "min": 0,
            "max": 1,
        },
    )
    memory_limit: str = field(
        default="1280MB",
        metadata={
            "help": "DuckDB memory_limit for loading; beyond it DuckDB spills to "
            "<warehouse>.tmp/ (the default keeps the process under 2 GB)"
        },
    )
    threads: int = field(default=2, metadata={"help": "DuckDB threads", "min": 1, "max": 256})

    def __post_init__(self) -> None:
        if self.mapping not in BUILTIN_MAPPINGS:
            raise IngestError(
                f"mapping = {self.mapping!r}: not a built-in mapping; use one of "
                f"{', '.join(BUILTIN_MAPPINGS)} or set mapping_file to your own mapping TOML"
            )
        if not _MEMORY.match(self.memory_limit):
            raise IngestError(
                f'memory_limit = {self.memory_limit!r}: write a size like "2GB" or "512MB"'
            )
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise IngestError(f"threads = {self.threads!r}: must be a whole number >= 1")
        if not 0 <= self.max_rejected_share <= 1:
            raise IngestError(
                f"max_rejected_share = {self.max_rejected_share!r}: must be between 0 and 1"
            )
        if not self.session_gap_s > 0:
            raise IngestError(f"session_gap_s = {self.session_gap_s!r}: must be > 0")
