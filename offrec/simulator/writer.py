"""Stream event tables to Parquet, CSV or JSON-lines files, optionally gzip and partitioned.

Layout under the output directory: ``events.<ext>``, or with date partitioning one
``dt=YYYY-MM-DD/part-0.<ext>`` per UTC event date. Every file is opened once and appended to
chunk by chunk, so memory stays bounded by one chunk whatever the total size. Output is
deterministic: Parquet files carry no timestamps, gzip members are written with ``mtime=0``
and no file name.

In CSV and JSON lines ``ts`` is an ISO-8601 UTC string (``2024-01-01T08:15:02.123Z``), numbers
are written in their shortest round-trip form, missing values are empty (CSV) or ``null``.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from offrec.simulator.errors import SimulatorError

__all__ = ["EventWriter", "file_extension", "MANIFEST_NAME"]

MANIFEST_NAME = "offrec-simulation.toml"
_US_PER_DAY = 86_400_000_000
_JSON_SAFE = r'^[^"\\\x00-\x1f]*$'


def file_extension(fmt: str, compress: str) -> str:
    """``.parquet`` (gzip is a codec inside Parquet), ``.csv[.gz]`` or ``.jsonl[.gz]``."""
    if fmt == "parquet":
        return ".parquet"
    return f".{fmt}" + (".gz" if compress == "gzip" else "")


def _iso_ts(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    ms = col.cast(pa.timestamp("ms", tz="UTC"))
    return pc.strftime(ms, format="%Y-%m-%dT%H:%M:%SZ")


class _Sink:
    def write(self, table: pa.Table) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _ParquetSink(_Sink):
    def __init__(self, path: Path, schema: pa.Schema, compress: str) -> None:
        codec = "gzip" if compress == "gzip" else "snappy"
        self.writer = pq.ParquetWriter(path, schema, compression=codec)

    def write(self, table: pa.Table) -> None:
        self.writer.write_table(table, row_group_size=1 << 20)

    def close(self) -> None:
        self.writer.close()


def _open_binary(path: Path, compress: str) -> tuple[BinaryIO, BinaryIO | None]:
    raw = path.open("wb")
    if compress == "gzip":
        return gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6), raw
    return raw, None


class _CsvSink(_Sink):
    def __init__(self, path: Path, schema: pa.Schema, compress: str) -> None:
        self.stream, self.raw = _open_binary(path, compress)
        self.schema = pa.schema(
            [pa.field(f.name, pa.string()) if f.name == "ts" else f for f in schema]
        )
        self.writer = pacsv.CSVWriter(self.stream, self.schema)

    def write(self, table: pa.Table) -> None:
        ts = table.schema.get_field_index("ts")
        table = table.set_column(ts, "ts", _iso_ts(table.column("ts")))
        self.writer.write_table(table.cast(self.schema))

    def close(self) -> None:
        self.writer.close()
        self.stream.close()
        if self.raw is not None:
            self.raw.close()


class _JsonlSink(_Sink):
    """One JSON object per line, keys in schema order; built with vectorised string kernels."""

    def __init__(self, path: Path, schema: pa.Schema, compress: str) -> None:
        self.stream, self.raw = _open_binary(path, compress)
        self.schema = schema

    def write(self, table: pa.Table) -> None:
        parts: list[pa.Array | str] = []
        for k, f in enumerate(self.schema):
            col = table.column(f.name).combine_chunks()
            if f.name == "ts":
                col = _iso_ts(col)
            if pa.types.is_string(col.type):
                bad = pc.invert(pc.match_substring_regex(col, _JSON_SAFE))
                if pc.any(pc.fill_null(bad, False)).as_py():
                    raise SimulatorError(
                        f"column {f.name} holds characters that need JSON escaping; "
                        "write CSV or Parquet instead"
                    )
                text = pc.binary_join_element_wise('"', col, '"', "")
            else:
                text = col.cast(pa.string())
            text = pc.fill_null(text, "null")
            parts += [("{" if k == 0 else ",") + f'"{f.name}":', text]
        parts.append("}\n")
        lines = pc.binary_join_element_wise(*parts, "")
        if not isinstance(lines, pa.Array):
            lines = lines.combine_chunks()
        if len(lines) == 0:
            return
        offsets = np.frombuffer(
            lines.buffers()[1], dtype=np.int32, count=len(lines) + 1 + lines.offset
        )[lines.offset :]
        data = lines.buffers()[2]
        self.stream.write(memoryview(data)[offsets[0] : offsets[-1]])

    def close(self) -> None:
        self.stream.close()
        if self.raw is not None:
            self.raw.close()


_SINKS: dict[str, type[_Sink]] = {"parquet": _ParquetSink, "csv": _CsvSink, "jsonl": _JsonlSink}


class EventWriter:
    """Append event tables (canonical schema, sorted by ts within a chunk) to files in ``root``.

    ``drop`` names columns to leave out. ``files`` lists the paths written so far.
    """

    def __init__(
        self,
        root: Path,
        *,
        fmt: str,
        compress: str,
        partition_by_date: bool,
        schema: pa.Schema,
        drop: tuple[str, ...] = (),
    ) -> None:
        if fmt not in _SINKS:
            raise SimulatorError(f"format {fmt!r}: must be one of {', '.join(_SINKS)}")
        self.root = root
        self.fmt = fmt
        self.compress = compress
        self.partition_by_date = partition_by_date
        self.keep = [f.name for f in schema if f.name not in drop]
        self.schema = pa.schema([schema.field(name) for name in self.keep])
        self.ext = file_extension(fmt, compress)
        self._sinks: dict[str, _Sink] = {}
        self.files: list[Path] = []

    def _sink(self, key: str) -> _Sink:
        sink = self._sinks.get(key)
        if sink is None:
            if key:
                path = self.root / f"dt={key}" / f"part-0{self.ext}"
                path.parent.mkdir(parents=True, exist_ok=True)
            else:
                path = self.root / f"events{self.ext}"
            sink = _SINKS[self.fmt](path, self.schema, self.compress)
            self._sinks[key] = sink
            self.files.append(path)
        return sink

    def write(self, table: pa.Table) -> None:
        table = table.select(self.keep)
        if not self.partition_by_date:
            self._sink("").write(table)
            return
        us = table.column("ts").cast(pa.int64()).to_numpy()
        day = us // _US_PER_DAY
        order = np.argsort(day, kind="stable")
        day_sorted = day[order]
        bounds = np.flatnonzero(np.diff(day_sorted)) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [day_sorted.shape[0]]])
        for lo, hi in zip(starts, ends, strict=True):
            if hi <= lo:
                continue
            key = str(np.datetime64(int(day_sorted[lo]), "D"))
            self._sink(key).write(table.take(pa.array(order[lo:hi])))

    def close(self) -> None:
        errors = []
        for sink in self._sinks.values():
            try:
                sink.close()
            except (OSError, ValueError) as exc:  # close every file, then report
                errors.append(exc)
        self._sinks.clear()
        if errors:
            raise errors[0]
