"""Mappings: how one raw log source becomes canonical events, as data (TOML), not code.

A mapping names the source column of each canonical field (docs/design.md §1), how to read
timestamps, which source values mean which event type, and optional *response* columns (a row
that is an impression plus flags such as ``click = 1`` becomes the impression event and one
event per set flag). A new source needs a new mapping file, never new code. The full reference
is docs/ingest.md; the three built-in mappings live in ``ingest/mappings/``.

Column specs in ``[columns]`` (canonical name on the left)::

    user_id = "visitorid"                                 # a source column
    session_id = { column = "session_id", optional = true }  # absent from a file: treated unmapped
    event_type = { value = "impression" }                 # a constant
    user_id = { per_row = true }                          # every row its own id (its event_id)

Source column names are never formatted into SQL: they reach DuckDB as bound values (session
variables read by ``COLUMNS(getvariable('c_ts'))`` in sql/stg_events.sql), so any header text
is safe; names are still checked for emptiness and control characters to catch typos early.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from ingest.config import BUILTIN_MAPPINGS
from ingest.errors import MappingError

__all__ = [
    "CANONICAL_COLUMNS",
    "EVENT_TYPES",
    "REQUIRED_COLUMNS",
    "ColumnSpec",
    "SourceOptions",
    "Mapping",
    "load_mapping",
    "builtin_mapping_path",
    "parse_mapping",
    "RESERVED_PREFIX",
]

#: Canonical event types (docs/design.md §1).
EVENT_TYPES: tuple[str, ...] = ("impression", "view", "click", "add_to_cart", "purchase")

#: Canonical raw fields a mapping may fill, in warehouse order.
CANONICAL_COLUMNS: tuple[str, ...] = (
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
#: Fields every mapping must fill.
REQUIRED_COLUMNS: tuple[str, ...] = ("ts", "user_id", "event_type", "item_id")

#: Source columns may not start with this prefix (ingest's own helper columns do).
RESERVED_PREFIX = "__offrec_"

# Which spec kinds each canonical field accepts.
_ALLOWED_KINDS: dict[str, tuple[str, ...]] = {
    "event_id": ("column",),
    "ts": ("column",),
    "user_id": ("column", "value", "per_row"),
    "session_id": ("column", "value", "per_row"),
    "event_type": ("column", "value"),
    "item_id": ("column", "value"),
    "position": ("column",),
    "propensity": ("column",),
    "price": ("column",),
    "request_id": ("column", "per_row"),
}

_FORMATS = ("auto", "csv", "parquet", "json")
_TS_UNITS = ("auto", "iso", "s", "ms", "us")
_ENCODINGS = ("utf-8", "utf-16", "latin-1")
_TOP_KEYS = ("mapping", "source", "columns", "values", "event_types", "responses")


@dataclass(frozen=True)
class ColumnSpec:
    """Where one canonical field comes from.

    ``kind``: ``column`` (``name`` is a source column; ``optional`` columns may be missing from
    a file), ``value`` (the constant ``value``) or ``per_row`` (the row's own event id).
    """

    kind: Literal["column", "value", "per_row"]
    name: str | None = None
    value: str | None = None
    optional: bool = False


@dataclass(frozen=True)
class SourceOptions:
    """How to read the files (``[source]``). CSV options are ignored for other formats."""

    format: str = "auto"
    delimiter: str = ""
    header: bool = True
    quote: str = ""
    encoding: str = "utf-8"


@dataclass(frozen=True)
class Mapping:
    """A validated mapping (see module docstring and docs/ingest.md)."""

    name: str
    columns: dict[str, ColumnSpec]
    source: SourceOptions = field(default_factory=SourceOptions)
    description: str = ""
    ts_unit: str = "auto"
    ts_timezone: str = "UTC"
    ts_format: str = ""
    position_base: int = 0
    #: lower-cased source value -> canonical event type; empty means identity on EVENT_TYPES
    event_types: dict[str, str] = field(default_factory=dict)
    #: canonical event type -> source column holding a 0/1 flag
    responses: dict[str, str] = field(default_factory=dict)
    origin: str = "<mapping>"

    def event_type_pairs(self) -> tuple[list[str], list[str]]:
        """(source values, canonical types) for SQL binding; identity when none are given."""
        if not self.event_types:
            return list(EVENT_TYPES), list(EVENT_TYPES)
        pairs = sorted(self.event_types.items())
        return [k for k, _ in pairs], [v for _, v in pairs]

    def fingerprint(self) -> str:
        """A short hash of everything that changes the loaded rows (not name, description or
        origin: renaming or moving a mapping file does not reload the files it loaded)."""
        data = asdict(self)
        for key in ("name", "origin", "description"):
            data.pop(key, None)
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def builtin_mapping_path(name: str) -> Path:
    """The packaged TOML of a built-in mapping."""
    if name not in BUILTIN_MAPPINGS:
        raise MappingError(
            f"mapping {name!r}: not a built-in mapping; use one of {', '.join(BUILTIN_MAPPINGS)}"
            " or pass a mapping file"
        )
    path = resources.files("ingest").joinpath("mappings", f"{name}.toml")
    return Path(str(path))


def load_mapping(name_or_path: str | Path) -> Mapping:
    """A built-in mapping by name, or a mapping TOML file by path."""
    text_name = str(name_or_path)
    if isinstance(name_or_path, str) and text_name in BUILTIN_MAPPINGS:
        path = builtin_mapping_path(text_name)
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise MappingError(
                f"mapping file {path} not found; built-in mappings are "
                f"{', '.join(BUILTIN_MAPPINGS)}"
            )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"mapping {path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise MappingError(f"mapping {path}: not UTF-8 text") from None
    return parse_mapping(data, origin=str(path))


def parse_mapping(data: dict[str, Any], *, origin: str = "<mapping>") -> Mapping:
    """Validate mapping data (as read from TOML) into a :class:`Mapping`."""
    if not isinstance(data, dict):
        raise MappingError(f"mapping {origin}: must be a TOML table")
    _no_unknown(data, _TOP_KEYS, origin, "top level")
    meta = _table(data, "mapping", origin)
    _no_unknown(meta, ("name", "description"), origin, "[mapping]")
    name = _string(meta.get("name", Path(origin).stem), origin, "[mapping] name")
    description = _string(meta.get("description", ""), origin, "[mapping] description")

    source = _parse_source(_table(data, "source", origin), origin)
    columns = _parse_columns(_table(data, "columns", origin), origin)
    values = _table(data, "values", origin)
    _no_unknown(
        values, ("ts_unit", "ts_timezone", "ts_format", "position_base"), origin, "[values]"
    )
    ts_unit = _choice(values.get("ts_unit", "auto"), _TS_UNITS, origin, "[values] ts_unit")
    ts_timezone = _string(values.get("ts_timezone", "UTC"), origin, "[values] ts_timezone")
    if not ts_timezone.strip():
        raise MappingError(f'mapping {origin}: [values] ts_timezone is empty; use e.g. "UTC"')
    ts_format = _string(values.get("ts_format", ""), origin, "[values] ts_format")
    if ts_format and ts_unit not in ("auto", "iso"):
        raise MappingError(
            f"mapping {origin}: [values] ts_format is set but ts_unit = {ts_unit!r}; a format "
            'only applies to text timestamps (ts_unit "auto" or "iso")'
        )
    position_base = values.get("position_base", 0)
    if isinstance(position_base, bool) or position_base not in (0, 1):
        raise MappingError(
            f"mapping {origin}: [values] position_base = {position_base!r}: must be 0 (first "
            "slot is 0) or 1 (first slot is 1)"
        )

    event_types = _parse_event_types(_table(data, "event_types", origin), origin)
    responses = _parse_responses(_table(data, "responses", origin), origin)
    clash = set(responses.values()) & {s.name for s in columns.values() if s.kind == "column"}
    if clash:
        raise MappingError(
            f"mapping {origin}: column {sorted(clash)[0]!r} is used both in [columns] and "
            "[responses]; a response flag column cannot also be a canonical field"
        )
    return Mapping(
        name=name,
        columns=columns,
        source=source,
        description=description,
        ts_unit=ts_unit,
        ts_timezone=ts_timezone,
        ts_format=ts_format,
        position_base=int(position_base),
        event_types=event_types,
        responses=responses,
        origin=origin,
    )


# --------------------------------------------------------------------------------------------
# sections


def _parse_source(table: dict[str, Any], origin: str) -> SourceOptions:
    _no_unknown(table, ("format", "delimiter", "header", "quote", "encoding"), origin, "[source]")
    fmt = _choice(table.get("format", "auto"), _FORMATS, origin, "[source] format")
    delimiter = _string(table.get("delimiter", ""), origin, "[source] delimiter")
    if len(delimiter) > 1:
        raise MappingError(
            f"mapping {origin}: [source] delimiter = {delimiter!r}: must be one character "
            '(or "" to detect it)'
        )
    quote = _string(table.get("quote", ""), origin, "[source] quote")
    if len(quote) > 1:
        raise MappingError(
            f'mapping {origin}: [source] quote = {quote!r}: must be one character (or "" to '
            "detect it)"
        )
    header = table.get("header", True)
    if not isinstance(header, bool):
        raise MappingError(f"mapping {origin}: [source] header = {header!r}: must be true/false")
    encoding = _choice(table.get("encoding", "utf-8"), _ENCODINGS, origin, "[source] encoding")
    return SourceOptions(
        format=fmt, delimiter=delimiter, header=header, quote=quote, encoding=encoding
    )


def _parse_columns(table: dict[str, Any], origin: str) -> dict[str, ColumnSpec]:
    _no_unknown(table, CANONICAL_COLUMNS, origin, "[columns]")
    out: dict[str, ColumnSpec] = {}
    for canon, raw in table.items():
        key = f"[columns] {canon}"
        spec = _column_spec(raw, origin, key)
        allowed = _ALLOWED_KINDS[canon]
        if spec.kind not in allowed:
            forms = {
                "column": '"<source column>"',
                "value": '{ value = "..." }',
                "per_row": "{ per_row = true }",
            }
            raise MappingError(
                f"mapping {origin}: {key}: a {spec.kind.replace('_', '-')} spec is not allowed "
                f"here; use {' or '.join(forms[k] for k in allowed)}"
            )
        if spec.optional and canon in REQUIRED_COLUMNS:
            raise MappingError(
                f"mapping {origin}: {key}: {canon} is required, so it cannot be optional"
            )
        if canon == "event_type" and spec.kind == "value" and spec.value not in EVENT_TYPES:
            raise MappingError(
                f"mapping {origin}: {key}: value {spec.value!r} is not an event type; use one "
                f"of {', '.join(EVENT_TYPES)}"
            )
        out[canon] = spec
    missing = [c for c in REQUIRED_COLUMNS if c not in out]
    if missing:
        raise MappingError(
            f"mapping {origin}: [columns] lacks {', '.join(missing)}; every mapping must say "
            f"where {', '.join(REQUIRED_COLUMNS)} come from"
        )
    used: dict[str, str] = {}
    for canon, spec in out.items():
        if spec.kind != "column" or spec.name is None:
            continue
        if spec.name.lower() in used:
            raise MappingError(
                f"mapping {origin}: [columns] {canon} and {used[spec.name.lower()]} both read "
                f"source column {spec.name!r}; map each source column once"
            )
        used[spec.name.lower()] = canon
    return out


def _column_spec(raw: Any, origin: str, key: str) -> ColumnSpec:
    if isinstance(raw, str):
        return ColumnSpec("column", name=_source_name(raw, origin, key))
    if not isinstance(raw, dict):
        raise MappingError(
            f"mapping {origin}: {key} = {raw!r}: must be a source column name (a string) or a "
            'table such as { column = "...", optional = true }'
        )
    kinds = [k for k in ("column", "value", "per_row") if k in raw]
    _no_unknown(raw, ("column", "value", "per_row", "optional"), origin, key)
    if len(kinds) != 1:
        raise MappingError(f"mapping {origin}: {key}: give exactly one of column, value, per_row")
    optional = raw.get("optional", False)
    if not isinstance(optional, bool):
        raise MappingError(f"mapping {origin}: {key}: optional must be true or false")
    kind = kinds[0]
    if kind == "column":
        return ColumnSpec(
            "column", name=_source_name(raw["column"], origin, key), optional=optional
        )
    if optional:
        raise MappingError(f"mapping {origin}: {key}: optional only applies to a column")
    if kind == "value":
        value = raw["value"]
        if not isinstance(value, str) or not value.strip():
            raise MappingError(f"mapping {origin}: {key}: value must be a non-empty string")
        return ColumnSpec("value", value=value.strip())
    if raw["per_row"] is not True:
        raise MappingError(f"mapping {origin}: {key}: write per_row = true (or remove it)")
    return ColumnSpec("per_row")


def _source_name(raw: Any, origin: str, key: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise MappingError(f"mapping {origin}: {key}: the source column name must be non-empty")
    if any(ord(ch) < 32 for ch in raw) or len(raw) > 255:
        raise MappingError(
            f"mapping {origin}: {key} = {raw!r}: control characters or more than 255 "
            "characters; is this really a column name?"
        )
    if raw.lower().startswith(RESERVED_PREFIX):
        raise MappingError(
            f"mapping {origin}: {key} = {raw!r}: names starting with {RESERVED_PREFIX!r} are "
            "reserved for ingest"
        )
    return raw


def _parse_event_types(table: dict[str, Any], origin: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for source_value, canon in table.items():
        key = f"[event_types] {source_value!r}"
        if not source_value.strip():
            raise MappingError(f"mapping {origin}: [event_types]: empty source value")
        if canon not in EVENT_TYPES:
            raise MappingError(
                f"mapping {origin}: {key} = {canon!r}: must be one of {', '.join(EVENT_TYPES)}"
            )
        norm = source_value.strip().lower()
        if norm in out and out[norm] != canon:
            raise MappingError(
                f"mapping {origin}: {key}: source values are matched case-insensitively and "
                f"{norm!r} is already mapped to {out[norm]!r}"
            )
        out[norm] = canon
    return out


def _parse_responses(table: dict[str, Any], origin: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for canon, column in table.items():
        key = f"[responses] {canon}"
        if canon not in EVENT_TYPES or canon == "impression":
            raise MappingError(
                f"mapping {origin}: {key}: not a response event type; use one of "
                f"{', '.join(t for t in EVENT_TYPES if t != 'impression')}"
            )
        out[canon] = _source_name(column, origin, key)
    if len({c.lower() for c in out.values()}) != len(out):
        raise MappingError(f"mapping {origin}: [responses] reads one source column twice")
    return out


# --------------------------------------------------------------------------------------------
# small validators


def _table(data: dict[str, Any], name: str, origin: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise MappingError(f"mapping {origin}: [{name}] must be a table")
    return value


def _no_unknown(table: dict[str, Any], allowed: tuple[str, ...], origin: str, where: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise MappingError(
            f"mapping {origin}: {where}: unknown key {unknown[0]!r}; accepted: {', '.join(allowed)}"
        )


def _string(value: Any, origin: str, key: str) -> str:
    if not isinstance(value, str):
        raise MappingError(f"mapping {origin}: {key} = {value!r}: must be a string")
    return value


def _choice(value: Any, choices: tuple[str, ...], origin: str, key: str) -> str:
    if value not in choices:
        raise MappingError(
            f"mapping {origin}: {key} = {value!r}: must be one of {', '.join(choices)}"
        )
    return str(value)
