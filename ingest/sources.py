"""Finding raw log files and opening one of them as a DuckDB view.

Inputs may be a file, a directory (walked recursively), a glob (``raw/**/*.csv.gz``) or a
hive-partitioned tree (``raw/dt=2024-03-01/part-0.parquet``); ``date`` keeps only the files
under a ``dt=<date>`` directory. Files are read by DuckDB itself (streamed, never through
pandas): CSV, Parquet or JSON (lines or array), plain, gzip or zstd, told apart by name.
"""

from __future__ import annotations

import datetime as dt
import glob
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ingest.errors import IngestError
from ingest.mapping import RESERVED_PREFIX, Mapping

__all__ = [
    "SourceFile",
    "discover",
    "file_sha256",
    "open_source",
    "SourceSchema",
    "RAW_VIEW",
    "CSV_ERRORS_TABLE",
    "CSV_SCANS_TABLE",
    "parse_date",
    "detect_format",
    "ts_kind",
]

RAW_VIEW = "_offrec_raw"
CSV_ERRORS_TABLE = "_offrec_csv_errors"
CSV_SCANS_TABLE = "_offrec_csv_scans"

_COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd"}
_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
}
_GLOB_CHARS = re.compile(r"[*?\[]")
_NUMERIC = re.compile(
    r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|"
    r"FLOAT|DOUBLE|DECIMAL.*)$"
)


@dataclass(frozen=True)
class SourceFile:
    """One raw log file: absolute path, format (csv/parquet/json), compression, size."""

    path: Path
    format: str
    compression: str
    size: int


@dataclass(frozen=True)
class SourceSchema:
    """Columns of an opened file, in file order, with their DuckDB types."""

    columns: tuple[str, ...]
    types: tuple[str, ...]

    def resolve(self, name: str) -> str | None:
        """The file's spelling of ``name`` (matched case-insensitively), or None."""
        for col in self.columns:
            if col == name:
                return col
        lowered = name.lower()
        for col in self.columns:
            if col.lower() == lowered:
                return col
        return None

    def type_of(self, column: str) -> str:
        return self.types[self.columns.index(column)]


def parse_date(date: str) -> str:
    """Validate a ``YYYY-MM-DD`` partition date."""
    try:
        if len(date) != 10:
            raise ValueError
        dt.date.fromisoformat(date)
    except (TypeError, ValueError):
        raise IngestError(f"--date {date!r}: write the partition date as YYYY-MM-DD") from None
    return date


def _data_suffix(path: Path) -> str:
    """The extension that names the format: ``.csv`` for ``x.csv.gz``; '' when none."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSIONS:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def detect_format(
    path: Path, forced: str = "auto", explicit: bool = False
) -> tuple[str | None, str]:
    """(format or None when the file is not to be read, compression) from the file name.

    With a ``forced`` format (``[source] format``), files named for that format, files without
    an extension (``part-00000``) and, when given explicitly, any file are read in it.
    """
    compression = _COMPRESSIONS.get(path.suffix.lower(), "none")
    suffix = _data_suffix(path)
    named = _FORMATS.get(suffix)
    if forced == "auto":
        return named, compression
    if named == forced or suffix == "" or explicit:
        return forced, compression
    return None, compression


def _hidden(part: str) -> bool:
    return part.startswith(".") or part.startswith("_")


def discover(
    inputs: Path | str, mapping: Mapping, date: str | None = None
) -> tuple[list[SourceFile], list[Path]]:
    """The files to ingest (sorted by path) and the files skipped for an unknown extension.

    Hidden entries (``.name``, ``_name``: ``_SUCCESS``, staging directories) are ignored.
    """
    text = str(inputs)
    forced = mapping.source.format
    if date is not None:
        parse_date(date)
    if _GLOB_CHARS.search(text):
        matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
        candidates = [p for p in matches if p.is_file()]
        if not candidates:
            raise IngestError(f"input {text!r}: no files match this pattern; check the path")
        explicit = False
    else:
        root = Path(inputs)
        if not root.exists():
            raise IngestError(
                f"input {root}: no such file or directory; check [paths] inputs or --input"
            )
        if root.is_file():
            candidates, explicit = [root], True
        else:
            candidates, explicit = _walk(root), False
    if date is not None:
        part = f"dt={date}"
        kept = [p for p in candidates if part in p.parts]
        if not kept:
            seen = sorted({q for p in candidates for q in p.parts if q.startswith("dt=")})
            hint = (
                f"; partitions found: {', '.join(seen[:3])}{' …' if len(seen) > 3 else ''}"
                if seen
                else "; the input has no dt=YYYY-MM-DD directories"
            )
            raise IngestError(f"input {text}: no files under a {part}/ directory{hint}")
        candidates = kept
    files: list[SourceFile] = []
    skipped: list[Path] = []
    for path in candidates:
        fmt, compression = detect_format(path, forced, explicit)
        if fmt is None:
            if explicit:
                raise IngestError(
                    f"{path}: cannot tell the format from the file name; name it .csv, "
                    ".parquet or .jsonl (optionally + .gz/.zst), or set [source] format in the "
                    "mapping"
                )
            skipped.append(path)
            continue
        resolved = path.resolve()
        files.append(SourceFile(resolved, fmt, compression, resolved.stat().st_size))
    return files, skipped


def _walk(root: Path) -> list[Path]:
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not _hidden(d))
        out.extend(Path(dirpath) / f for f in sorted(filenames) if not _hidden(f))
    return sorted(out)


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of the file's bytes (streamed)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def open_source(
    con: duckdb.DuckDBPyConnection, src: SourceFile, mapping: Mapping, view: str = RAW_VIEW
) -> SourceSchema:
    """Create temp view ``view`` (``_offrec_raw``) over ``src`` and return its columns.

    ``view`` is one of ingest's own names (never user input); the view lives in the
    connection only, so the warehouse keeps no reference to the raw file.

    CSV is read with every column as text so that a bad value rejects one row instead of
    failing the file; lines the parser cannot split are kept in ``_offrec_csv_errors``.
    Hive partition values in the path (``dt=...``) are not added as columns: a row's content
    (and so its hash id) must not depend on where the file sits.
    """
    opts = mapping.source
    path = str(src.path)
    if src.format == "csv":
        con.execute(f"DROP TABLE IF EXISTS {CSV_ERRORS_TABLE}")
        con.execute(f"DROP TABLE IF EXISTS {CSV_SCANS_TABLE}")
        kwargs: dict[str, object] = {
            "header": opts.header,
            "all_varchar": True,
            "compression": src.compression if src.compression != "none" else "auto",
            "encoding": opts.encoding,
            "store_rejects": True,
            "ignore_errors": True,
            "rejects_table": CSV_ERRORS_TABLE,
            "rejects_scan": CSV_SCANS_TABLE,
            "hive_partitioning": False,
        }
        if opts.delimiter:
            kwargs["sep"] = opts.delimiter
        elif _data_suffix(src.path) == ".tsv":
            kwargs["sep"] = "\t"
        if opts.quote:
            kwargs["quotechar"] = opts.quote
        rel = con.read_csv(path, **kwargs)
    elif src.format == "parquet":
        rel = con.read_parquet(path, hive_partitioning=False, file_row_number=True)
    elif src.format == "json":
        rel = con.read_json(
            path,
            format="auto",
            sample_size=-1,
            compression=src.compression if src.compression != "none" else "auto",
            hive_partitioning=False,
        )
    else:  # discover() only yields the three formats; a forced format is validated earlier
        raise IngestError(f"{path}: unsupported format {src.format!r}")
    # a TEMP view: the relation's own create_view() would store it in the warehouse file
    con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS {rel.sql_query()}")
    names, types = list(rel.columns), [str(t) for t in rel.types]
    if src.format == "parquet":  # the reader's row number, not a source column
        i = len(names) - 1 - names[::-1].index("file_row_number")
        del names[i], types[i]
        if "file_row_number" in names:
            raise IngestError(
                f"{path}: a column is named 'file_row_number', which DuckDB's Parquet reader "
                "uses for row numbers; rename it in the file"
            )
    schema = SourceSchema(tuple(names), tuple(types))
    reserved = [c for c in schema.columns if c.lower().startswith(RESERVED_PREFIX)]
    if reserved:
        raise IngestError(
            f"{path}: column {reserved[0]!r} starts with {RESERVED_PREFIX!r}, which ingest "
            "reserves for itself; rename it in the file"
        )
    return schema


def ts_kind(duck_type: str) -> str | None:
    """'text', 'number', 'native' or 'native_tz' for a DuckDB type; None when unusable as ts."""
    t = duck_type.upper()
    if t == "VARCHAR" or t == "JSON":
        return "text"
    if t in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        return "native_tz"
    if t.startswith("TIMESTAMP") or t == "DATE":
        return "native"
    if _NUMERIC.match(t):
        return "number"
    return None
