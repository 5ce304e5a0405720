"""``[ingest]`` section of offrec.toml."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ingest.errors import IngestError

__all__ = ["IngestConfig", "BUILTIN_MAPPINGS", "PSEUDONYM_FIELDS", "TYPED_FIELDS"]

#: Mapping names shipped with offrec (``ingest/mappings/<name>.toml``).
BUILTIN_MAPPINGS: tuple[str, ...] = ("simulator", "retailrocket", "open_bandit")

#: Canonical fields that may be pseudonymised (ids: text whose only use is equality).
PSEUDONYM_FIELDS: tuple[str, ...] = ("user_id", "session_id", "request_id", "event_id", "item_id")
#: Canonical fields that cannot be: the dataset needs their values (times, types, numbers).
TYPED_FIELDS: tuple[str, ...] = ("ts", "event_type", "position", "propensity", "price")

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
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
    pseudonymise: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "store these ids as keyed pseudonyms (HMAC-SHA256), replaced before anything "
            "is written: id fields (user_id, session_id, request_id, event_id, item_id) or "
            "unmapped source columns; also list ids that embed a user id (docs/ingest.md)"
        },
    )
    pseudonym_key_env: str = field(
        default="OFFREC_PSEUDONYM_KEY",
        metadata={
            "help": "environment variable holding the pseudonym key (used when "
            "pseudonym_key_file is not set)"
        },
    )
    pseudonym_key_file: Path | None = field(
        default=None,
        metadata={
            "help": "file holding the pseudonym key (outside the warehouse's directory, "
            "[paths] datasets and runs); takes precedence over pseudonym_key_env"
        },
    )

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
        self._check_pseudonymise()

    def _check_pseudonymise(self) -> None:
        if not isinstance(self.pseudonymise, tuple):
            raise IngestError(
                f'pseudonymise = {self.pseudonymise!r}: must be a list of names, e.g. ["user_id"]'
            )
        seen: set[str] = set()
        for i, name in enumerate(self.pseudonymise):
            key = f"pseudonymise[{i}] = {name!r}"
            if not isinstance(name, str) or not name.strip():
                raise IngestError(f"{key}: must be a non-empty column name")
            if any(ord(ch) < 32 for ch in name) or len(name) > 255:
                raise IngestError(
                    f"{key}: control characters or more than 255 characters; is this really "
                    "a column name?"
                )
            if name.lower() in TYPED_FIELDS:
                raise IngestError(
                    f"{key}: {name.lower()} cannot be pseudonymised (the dataset needs its "
                    f"value); pseudonymise id fields ({', '.join(PSEUDONYM_FIELDS)}) or "
                    "unmapped source columns"
                )
            if name.lower() in seen:
                raise IngestError(f"{key}: listed twice (names match case-insensitively)")
            seen.add(name.lower())
        if not _ENV_NAME.match(self.pseudonym_key_env):
            raise IngestError(
                f"pseudonym_key_env = {self.pseudonym_key_env!r}: not an environment variable "
                'name; use letters, digits and underscores, e.g. "OFFREC_PSEUDONYM_KEY"'
            )
