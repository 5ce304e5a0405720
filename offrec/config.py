"""The ``offrec.toml`` file: parsed into typed, frozen dataclasses, validated with clear errors.

Each stage package owns the dataclass for its section (``ingest.config.IngestConfig`` …); this
module composes them into :class:`OffrecConfig` and implements one generic, strict parser:

* unknown keys, wrong types and out-of-range values raise :class:`ConfigError` naming the file,
  the ``[section] key``, the value and what is accepted;
* field ``metadata`` may carry ``help`` (documentation), ``min``/``max`` (inclusive bounds),
  ``gt``/``lt`` (exclusive bounds) and ``choices``;
* ``Path`` fields are resolved relative to the directory of the config file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from ingest.config import IngestConfig
from offline_rl.config import TrainConfig
from offrec.errors import ConfigError
from offrec.simulator.config import SimulatorConfig
from ope.config import EvaluateConfig
from reports.config import ReportConfig
from sql.config import BuildConfig

__all__ = [
    "PathsConfig",
    "NightlyConfig",
    "OffrecConfig",
    "load_config",
    "parse_config",
    "config_to_dict",
    "config_to_toml",
    "config_hash",
    "DEFAULT_CONFIG_NAME",
]

DEFAULT_CONFIG_NAME = "offrec.toml"


@dataclass(frozen=True)
class PathsConfig:
    """Where offrec reads and writes. Relative paths are relative to the config file."""

    inputs: Path = field(
        default=Path("raw"),
        metadata={"help": "raw event logs: a file, a directory, a glob or a dt=YYYY-MM-DD/ tree"},
    )
    warehouse: Path = field(
        default=Path("warehouse.duckdb"), metadata={"help": "the DuckDB warehouse file"}
    )
    datasets: Path = field(
        default=Path("datasets"), metadata={"help": "Parquet copies of each dataset version"}
    )
    runs: Path = field(
        default=Path("runs"), metadata={"help": "one directory per run: models, results, report"}
    )


@dataclass(frozen=True)
class NightlyConfig:
    """The nightly batch job."""

    keep_runs: int = field(
        default=14, metadata={"help": "keep the artifacts of the last N runs", "min": 1}
    )
    window_days: int = field(
        default=28, metadata={"help": "rolling window of data the dataset is built over", "min": 1}
    )
    lock_timeout_s: float = field(
        default=0.0,
        metadata={"help": "seconds to wait for another run's lock before giving up", "min": 0},
    )


@dataclass(frozen=True)
class OffrecConfig:
    """The whole configuration: one section per stage."""

    paths: PathsConfig = field(default_factory=PathsConfig)
    simulate: SimulatorConfig = field(default_factory=SimulatorConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    build: BuildConfig = field(default_factory=BuildConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    nightly: NightlyConfig = field(default_factory=NightlyConfig)
    source: Path | None = field(
        default=None, metadata={"help": "the file this config was read from", "internal": True}
    )


def load_config(path: Path | str | None = None) -> OffrecConfig:
    """Read ``path`` (or ``./offrec.toml`` when it exists, else defaults) into an OffrecConfig."""
    if path is None:
        candidate = Path(DEFAULT_CONFIG_NAME)
        if not candidate.exists():
            return parse_config({}, base_dir=Path.cwd(), source=None)
        path = candidate
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found; create one with `offrec config init`")
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, base_dir=path.resolve().parent, source=path)


def parse_config(
    data: dict[str, Any], *, base_dir: Path, source: Path | None = None
) -> OffrecConfig:
    """Validate a dict (as read from TOML) into an :class:`OffrecConfig`."""
    where = str(source) if source is not None else "<config>"
    cfg = _build(OffrecConfig, data, where=where, section="", base_dir=base_dir.resolve())
    return dataclasses.replace(cfg, source=source)


# --------------------------------------------------------------------------------------------
# generic strict parsing


def _build(cls: type, data: Any, *, where: str, section: str, base_dir: Path) -> Any:
    label = f"[{section}]" if section else "top level"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: {label} must be a table, got {type(data).__name__}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {_key(section, unknown[0])}; "
            f"accepted keys in {label}: {', '.join(sorted(fields))}"
        )
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        f = fields[name]
        key = _key(section, name)
        kwargs[name] = _coerce(
            hints[name], value, where=where, key=key, meta=f.metadata, base_dir=base_dir,
            section=f"{section}.{name}" if section else name,
        )
    # Defaults are resolved too: nested sections are parsed from {} and relative Path
    # defaults become absolute, so every path in a parsed config is absolute.
    for name, f in fields.items():
        if name not in kwargs and dataclasses.is_dataclass(hints[name]):
            sub = f"{section}.{name}" if section else name
            kwargs[name] = _build(hints[name], {}, where=where, section=sub, base_dir=base_dir)
        elif name not in kwargs and hints[name] in (Path, Path | None):
            default = f.default if f.default is not dataclasses.MISSING else None
            if isinstance(default, Path) and not default.is_absolute():
                kwargs[name] = base_dir / default
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where}: {label}: {exc}") from None


def _key(section: str, name: str) -> str:
    return f"[{section}] {name}" if section else name


def _fmt(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else repr(value)


def _coerce(
    tp: Any, value: Any, *, where: str, key: str, meta: Any, base_dir: Path, section: str
) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where=where, section=section, base_dir=base_dir)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _coerce(
                args[0], value, where=where, key=key, meta=meta, base_dir=base_dir,
                section=section,
            )
    bad = f"{where}: {key} = {_fmt(value)}"
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(f"{bad}: must be one of {', '.join(_fmt(c) for c in choices)}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{bad}: must be true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{bad}: must be a whole number")
        _check_range(value, meta, bad)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{bad}: must be a number")
        value = float(value)
        if not math.isfinite(value) and not meta.get("allow_inf"):
            raise ConfigError(f"{bad}: must be a finite number")
        _check_range(value, meta, bad)
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{bad}: must be a string")
        choices = meta.get("choices")
        if choices and value not in choices:
            raise ConfigError(f"{bad}: must be one of {', '.join(_fmt(c) for c in choices)}")
        return value
    if tp is Path:
        if not isinstance(value, str):
            raise ConfigError(f"{bad}: must be a path string")
        p = Path(value).expanduser()
        return p if p.is_absolute() else base_dir / p
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{bad}: must be a list")
        item_tp = args[0]
        items = tuple(
            _coerce(item_tp, v, where=where, key=f"{key}[{i}]", meta=meta, base_dir=base_dir,
                    section=section)
            for i, v in enumerate(value)
        )
        return items
    if origin is dict:
        k_tp, v_tp = get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"{bad}: must be a table")
        return {
            _coerce(k_tp, k, where=where, key=key, meta={}, base_dir=base_dir, section=section):
            _coerce(v_tp, v, where=where, key=f"{key}.{k}", meta=meta, base_dir=base_dir,
                    section=section)
            for k, v in value.items()
        }
    if tp is Any:
        return value
    raise ConfigError(f"{bad}: unsupported config type {tp!r} (this is a bug in offrec)")


def _check_range(value: float, meta: Any, bad: str) -> None:
    lo, hi = meta.get("min"), meta.get("max")
    gt, lt = meta.get("gt"), meta.get("lt")
    parts = []
    if lo is not None:
        parts.append(f">= {lo}")
    if gt is not None:
        parts.append(f"> {gt}")
    if hi is not None:
        parts.append(f"<= {hi}")
    if lt is not None:
        parts.append(f"< {lt}")
    ok = (
        (lo is None or value >= lo)
        and (gt is None or value > gt)
        and (hi is None or value <= hi)
        and (lt is None or value < lt)
    )
    if not ok:
        raise ConfigError(f"{bad}: must be {' and '.join(parts)}")


# --------------------------------------------------------------------------------------------
# output


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """The effective config as plain TOML-able data (paths as strings)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        if f.metadata.get("internal"):
            continue
        out[f.name] = _plain(getattr(cfg, f.name))
    return out


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return config_to_dict(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def config_hash(cfg: OffrecConfig) -> str:
    """A short, stable hash of the effective config (paths excluded: moving a project keeps it)."""
    data = config_to_dict(cfg)
    data.pop("paths", None)
    blob = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def config_to_toml(cfg: Any, *, with_help: bool = False) -> str:
    """Render a config as TOML; ``with_help`` adds each field's help text as a comment."""
    lines: list[str] = []
    _emit_table(cfg, "", lines, with_help)
    return "\n".join(lines).strip() + "\n"


def _emit_table(obj: Any, prefix: str, lines: list[str], with_help: bool) -> None:
    scalars, tables, dict_tables = [], [], []
    for f in dataclasses.fields(obj):
        if f.metadata.get("internal"):
            continue
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            tables.append((f, value))
        elif isinstance(value, dict):  # a dict field is a sub-table, e.g. [train.cql]
            dict_tables.append((f, value))
        else:
            scalars.append((f, value))
    if prefix and (scalars or not tables):
        lines.append("")
        lines.append(f"[{prefix}]")
        doc = (type(obj).__doc__ or "").strip().splitlines()
        if with_help and doc:
            lines.insert(len(lines) - 1, f"# {doc[0]}")
    for f, value in scalars:
        if with_help and f.metadata.get("help"):
            extra = ""
            if f.metadata.get("choices"):
                extra = f" (one of: {', '.join(map(str, f.metadata['choices']))})"
            lines.append(f"# {f.metadata['help']}{extra}")
        if value is None:
            lines.append(f"# {f.name} = (not set)")
            continue
        lines.append(f"{f.name} = {_toml_value(_plain(value))}")
    for f, value in dict_tables:
        lines.append("")
        if with_help and f.metadata.get("help"):
            lines.append(f"# {f.metadata['help']}")
        lines.append(f"[{prefix}.{f.name}]" if prefix else f"[{f.name}]")
        lines.extend(f"{k} = {_toml_value(_plain(v))}" for k, v in value.items())
    for f, value in tables:
        _emit_table(value, f"{prefix}.{f.name}" if prefix else f.name, lines, with_help)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if isinstance(value, float) and math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }"
    raise TypeError(f"cannot render {value!r} as TOML")
