"""Raw event logs into the DuckDB warehouse ``events`` table.

Public API (docs/ingest.md)::

    from ingest import ingest_paths, open_warehouse, IngestConfig

    report = ingest_paths("warehouse.duckdb", "raw/", IngestConfig(mapping="retailrocket"))
    print(report.format_table())
    con = open_warehouse("warehouse.duckdb", read_only=True)

* :func:`ingest_paths` loads a file, directory, glob or ``dt=YYYY-MM-DD/`` tree, one
  transaction per file, and returns an :class:`IngestReport` (per-file counts and status);
* :func:`open_warehouse` connects with a clear message when another process holds the file;
* :func:`check_warehouse` runs the whole-warehouse consistency checks;
* :func:`load_mapping` / :func:`parse_mapping` read mapping TOML (built-ins:
  ``simulator``, ``retailrocket``, ``open_bandit``);
* with ``IngestConfig(pseudonymise=("user_id", ...))`` ids are stored as keyed pseudonyms
  (HMAC-SHA256); :func:`pseudonymise_ids` gives the pseudonyms of given raw ids and
  :func:`load_pseudonym_key` the key a config points at.
"""

from ingest.config import BUILTIN_MAPPINGS, IngestConfig
from ingest.errors import IngestError, MappingError, WarehouseLockedError
from ingest.load import ingest_paths, resolve_mapping
from ingest.mapping import (
    CANONICAL_COLUMNS,
    EVENT_TYPES,
    ColumnSpec,
    Mapping,
    SourceOptions,
    builtin_mapping_path,
    load_mapping,
    parse_mapping,
)
from ingest.pseudonymise import PseudonymKey, load_pseudonym_key, pseudonymise_ids
from ingest.report import FileReport, IngestReport
from ingest.warehouse import check_warehouse, open_warehouse

__all__ = [
    "BUILTIN_MAPPINGS",
    "CANONICAL_COLUMNS",
    "EVENT_TYPES",
    "ColumnSpec",
    "FileReport",
    "IngestConfig",
    "IngestError",
    "IngestReport",
    "Mapping",
    "MappingError",
    "PseudonymKey",
    "SourceOptions",
    "WarehouseLockedError",
    "builtin_mapping_path",
    "check_warehouse",
    "ingest_paths",
    "load_mapping",
    "load_pseudonym_key",
    "open_warehouse",
    "parse_mapping",
    "pseudonymise_ids",
    "resolve_mapping",
]
