"""What a report reads: the files of one run directory, as typed, validated dataclasses.

A run directory ``runs/<run_id>/`` holds (schemas in docs/reports.md)::

    manifest.json                    Manifest        run metadata
    data_summary.json                DataSummary     the data the run used
    evaluation/ope_results.parquet   ResultRow       one row per policy x estimator x objective
    evaluation/summary.json          EvaluationSummary  diagnostics and the stored verdict
    evaluation/explain.json          Explanation     what changes if a policy ships (optional)
    evaluation/segments.parquet      SegmentRow      new vs returning users (optional)
    models/<name>/metrics.json       ModelCurves     per-epoch training curves (optional)

:meth:`ReportInput.load` reads and validates all of them and raises :class:`ReportError`
naming the file, the key (or row) and the command that writes it. Every schema class also has
``to_dict()`` so that the stages producing these files write exactly this shape; unknown keys
are ignored on reading (newer writers stay readable), missing or mistyped ones are errors.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar

import pandas as pd

from ope.errors import OPEError
from ope.verdict import Verdict
from reports.errors import ReportError

__all__ = [
    "SCHEMA_VERSION",
    "MANIFEST",
    "DATA_SUMMARY",
    "RESULTS",
    "SUMMARY",
    "METRICS",
    "PRODUCED_BY",
    "RUN_STATUSES",
    "STAGE_STATUSES",
    "OBJECTIVES",
    "RESULT_COLUMNS",
    "SEGMENT_COLUMNS",
    "EXPLAIN",
    "SEGMENTS",
    "StageInfo",
    "Manifest",
    "DateRange",
    "EventCounts",
    "ActionCoverage",
    "ColdStart",
    "DataSummary",
    "ResultRow",
    "WeightHistogram",
    "CalibrationBin",
    "BehaviourModel",
    "TopItem",
    "PolicyInfo",
    "SegmentCount",
    "SegmentInfo",
    "EvaluationSummary",
    "ConcentrationStats",
    "ShareMove",
    "RankedChoice",
    "ExampleDecision",
    "PolicyChanges",
    "Explanation",
    "SegmentRow",
    "EpochMetrics",
    "ModelCurves",
    "ReportInput",
    "load_manifest",
    "load_data_summary",
    "data_summary_from_build",
    "load_summary",
    "load_results",
    "load_explanation",
    "load_segments",
    "load_models",
    "write_json",
]

SCHEMA_VERSION = 1

MANIFEST = "manifest.json"
DATA_SUMMARY = "data_summary.json"
RESULTS = "evaluation/ope_results.parquet"
SUMMARY = "evaluation/summary.json"
EXPLAIN = "evaluation/explain.json"
SEGMENTS = "evaluation/segments.parquet"
METRICS = "models/<name>/metrics.json"

PRODUCED_BY: dict[str, str] = {
    MANIFEST: "`offrec nightly` (or `offrec demo`)",
    DATA_SUMMARY: "the build stage of `offrec nightly` (or `offrec build`)",
    RESULTS: "`offrec evaluate` (or `offrec nightly`)",
    SUMMARY: "`offrec evaluate` (or `offrec nightly`)",
    EXPLAIN: "`offrec evaluate` (or `offrec nightly`)",
    SEGMENTS: "`offrec evaluate` (or `offrec nightly`)",
    METRICS: "`offrec train` (or `offrec nightly`)",
}

RUN_STATUSES: tuple[str, ...] = ("running", "ok", "failed", "gate_failed")
STAGE_STATUSES: tuple[str, ...] = ("pending", "running", "done", "failed", "skipped")
#: Canonical objectives, in display order (others are shown after these).
OBJECTIVES: tuple[str, ...] = ("reward", "click", "cart", "purchase", "revenue")

#: ``ope_results`` columns (docs/design.md section 6), all required.
RESULT_COLUMNS: tuple[str, ...] = (
    "run_id",
    "policy",
    "estimator",
    "objective",
    "value",
    "low",
    "high",
    "lift",
    "lift_low",
    "lift_high",
    "rel_lift",
    "rel_lift_low",
    "rel_lift_high",
    "alpha",
    "interval_method",
    "ess",
    "max_weight",
    "p99_weight",
    "zero_support_share",
    "unsupported_mass",
    "n_decisions",
    "n_episodes",
    "propensity_source",
    "ground_truth",
)
_RESULT_FLOATS = (
    "value",
    "low",
    "high",
    "lift",
    "lift_low",
    "lift_high",
    "rel_lift",
    "rel_lift_low",
    "rel_lift_high",
    "alpha",
    "ess",
    "max_weight",
    "p99_weight",
    "zero_support_share",
    "unsupported_mass",
    "ground_truth",
)
_RESULT_INTS = ("n_decisions", "n_episodes")

#: ``evaluation/segments.parquet`` columns (docs/reports.md): the primary objective's estimates
#: on new-user sessions and on returning users' sessions, one row per
#: (segment, policy, estimator, objective); ``baseline_value`` is the logged behaviour's value
#: in that segment and the lifts are against it.
SEGMENT_COLUMNS: tuple[str, ...] = (
    "run_id",
    "segment",
    "policy",
    "estimator",
    "objective",
    "family",
    "value",
    "low",
    "high",
    "baseline_value",
    "lift",
    "lift_low",
    "lift_high",
    "rel_lift",
    "rel_lift_low",
    "rel_lift_high",
    "alpha",
    "interval_method",
    "ess",
    "max_weight",
    "p99_weight",
    "zero_support_share",
    "unsupported_mass",
    "n_decisions",
    "n_episodes",
    "propensity_source",
)

T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# a reader that knows where it is, for error messages


class _Doc:
    """Typed access to one JSON object, raising ReportError with file, key path and producer."""

    def __init__(self, data: Any, *, file: Path, producer: str, path: str = "") -> None:
        self.file, self.producer, self.path = file, producer, path
        if not isinstance(data, Mapping):
            self.fail("", f"must be a JSON object, got {_kind(data)}")
        self.data: Mapping[str, Any] = data

    def fail(self, key: str, problem: str) -> NoReturn:
        where = self._key(key)
        sep = " " if problem.startswith("= ") else ": "
        where = f" key {where!r}{sep}" if where else " "
        raise ReportError(f"{self.file}:{where}{problem} (written by {self.producer}; re-run it)")

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path and key else (key or self.path)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str) -> Any:
        if key not in self.data:
            self.fail(key, "missing")
        return self.data[key]

    def sub(self, key: str) -> _Doc:
        return _Doc(self.raw(key), file=self.file, producer=self.producer, path=self._key(key))

    def opt_sub(self, key: str) -> _Doc | None:
        return self.sub(key) if self.has(key) else None

    def str(self, key: str, *, choices: Sequence[str] | None = None) -> str:
        v = self.raw(key)
        if not isinstance(v, str) or not v:
            self.fail(key, f"must be a non-empty string, got {v!r}")
        if choices is not None and v not in choices:
            self.fail(key, f"= {v!r}: must be one of {', '.join(map(repr, choices))}")
        return v

    def opt_str(self, key: str) -> str | None:
        return self.str(key) if self.has(key) else None

    def int(self, key: str, *, min_value: int = 0) -> int:
        v = self.raw(key)
        if isinstance(v, bool) or not isinstance(v, int):
            self.fail(key, f"must be a whole number, got {v!r}")
        if v < min_value:
            self.fail(key, f"= {v}: must be >= {min_value}")
        return v

    def opt_int(self, key: str, *, min_value: int = 0) -> int | None:
        return self.int(key, min_value=min_value) if self.has(key) else None

    def float(self, key: str, *, lo: float = -math.inf, hi: float = math.inf) -> float:
        v = self.raw(key)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            self.fail(key, f"must be a finite number, got {v!r}")
        if not lo <= v <= hi:
            self.fail(key, f"= {v}: must be between {lo} and {hi}")
        return float(v)

    def opt_float(self, key: str, *, lo: float = -math.inf, hi: float = math.inf) -> float | None:
        return self.float(key, lo=lo, hi=hi) if self.has(key) else None

    def datetime(self, key: str) -> datetime:
        v = self.str(key)
        try:
            dt = datetime.fromisoformat(v)
        except ValueError:
            self.fail(key, f"= {v!r}: must be an ISO-8601 date-time like 2024-05-01T03:00:00Z")
        return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)

    def list(self, key: str) -> list[Any]:
        v = self.raw(key)
        if not isinstance(v, list):
            self.fail(key, f"must be a list, got {_kind(v)}")
        return v

    def opt_list(self, key: str) -> list[Any]:
        return self.list(key) if self.has(key) else []

    def items(self, key: str) -> list[_Doc]:
        """A list of objects."""
        return [
            _Doc(v, file=self.file, producer=self.producer, path=f"{self._key(key)}[{i}]")
            for i, v in enumerate(self.list(key))
        ]

    def mapping(self, key: str, value: Callable[[_Doc, str], T]) -> dict[str, T]:
        """An object whose values are read with ``value(sub_doc, name)``."""
        sub = self.sub(key)
        return {str(k): value(sub, str(k)) for k in sub.data}

    def opt_mapping(self, key: str, value: Callable[[_Doc, str], T]) -> dict[str, T]:
        return self.mapping(key, value) if self.has(key) else {}

    def per_policy(self, key: str, value: Callable[[_Doc, str], T]) -> dict[str, T]:
        """An optional object keyed by policy; a null entry means "not available"."""
        if not self.has(key):
            return {}
        sub = self.sub(key)
        return {str(k): value(sub, str(k)) for k, v in sub.data.items() if v is not None}

    def schema(self) -> None:
        version = self.opt_int("schema_version", min_value=1) or SCHEMA_VERSION
        if version > SCHEMA_VERSION:
            self.fail(
                "schema_version",
                f"= {version}: this offrec reads schema {SCHEMA_VERSION}; upgrade offrec",
            )


def _kind(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def _read_json(run_dir: Path, rel: str) -> _Doc:
    path = run_dir / rel
    producer = PRODUCED_BY[rel]
    if not path.is_file():
        raise ReportError(f"{path}: not found; it is written by {producer}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            f"re-run {producer}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: cannot be read ({exc})") from None
    doc = _Doc(data, file=path, producer=producer)
    doc.schema()
    return doc


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _clean(x: Any) -> Any:
    """JSON-safe: NaN/inf -> None, tuples -> lists, mappings -> dicts."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, Mapping):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, datetime):
        return _iso(x)
    return x


def write_json(path: Path | str, data: Mapping[str, Any] | Sequence[Any]) -> Path:
    """Write ``data`` as JSON to ``path`` atomically (temp file + rename); NaN becomes null."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(_clean(data), fh, indent=2, allow_nan=False)
            fh.write("\n")
        os.chmod(tmp, 0o644)  # like the report itself: readable, not tempfile's private 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# --------------------------------------------------------------------------------------------
# manifest.json


@dataclass(frozen=True)
class StageInfo:
    """One pipeline stage as the manifest records it."""

    status: str
    seconds: float | None = None
    peak_rss_mb: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class Manifest:
    """``manifest.json`` (written by ``offrec.manifest.Manifest``): the fields a report reads."""

    run_id: str
    created_at: datetime
    status: str
    config_hash: str | None
    dataset_version: str | None
    kind: str | None = None
    simulated: bool = False
    packages: Mapping[str, str] = field(default_factory=dict)
    stages: Mapping[str, StageInfo] = field(default_factory=dict)
    gates: tuple[str, ...] = ()

    @property
    def timings_s(self) -> dict[str, float]:
        """Seconds per stage, for the stages that recorded them."""
        return {k: v.seconds for k, v in self.stages.items() if v.seconds is not None}

    def stage_status(self, name: str) -> str | None:
        info = self.stages.get(name)
        return info.status if info else None

    @classmethod
    def _read(cls, d: _Doc) -> Manifest:
        gates = []
        for g in d.items("gates") if d.has("gates") else []:
            stage = g.opt_str("stage")
            gates.append(f"{stage}: {g.str('message')}" if stage else g.str("message"))
        simulated = d.data.get("simulated", False)
        if not isinstance(simulated, bool):
            d.fail("simulated", f"must be true or false, got {simulated!r}")
        config_hash = d.data.get("config_hash")
        if config_hash is not None and not isinstance(config_hash, str):
            d.fail("config_hash", f"must be a string, got {config_hash!r}")
        return cls(
            run_id=d.str("run_id"),
            created_at=d.datetime("created_at"),
            status=d.str("status", choices=RUN_STATUSES),
            config_hash=config_hash or None,
            dataset_version=d.opt_str("dataset_version"),
            kind=d.opt_str("kind"),
            simulated=simulated,
            packages=d.opt_mapping("package_versions", lambda s, k: s.str(k)),
            stages=d.opt_mapping("stages", _read_stage),
            gates=tuple(gates),
        )


def _read_stage(parent: _Doc, name: str) -> StageInfo:
    st = parent.sub(name)
    return StageInfo(
        status=st.str("status", choices=STAGE_STATUSES),
        seconds=st.opt_float("seconds", lo=0),
        peak_rss_mb=st.opt_float("peak_rss_mb", lo=0),
        error=st.opt_str("error"),
    )


def load_manifest(run_dir: Path | str) -> Manifest:
    """Read and validate ``<run_dir>/manifest.json``."""
    run_dir = Path(run_dir)
    m = Manifest._read(_read_json(run_dir, MANIFEST))
    if m.run_id != run_dir.name:
        raise ReportError(
            f"{run_dir / MANIFEST}: key 'run_id' = {m.run_id!r} but the directory is named "
            f"{run_dir.name!r}; a run directory must be named after its run_id"
        )
    return m


# --------------------------------------------------------------------------------------------
# data_summary.json


@dataclass(frozen=True)
class DateRange:
    """First and last event time of the data the run used (UTC)."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class EventCounts:
    """Raw events: loaded into the warehouse, rejected by validation, dropped as duplicates."""

    loaded: int
    rejected: int
    duplicate: int


@dataclass(frozen=True)
class ActionCoverage:
    """The action space: ``n_actions`` = top-N items + 'other'; ``other_share`` of decisions."""

    n_actions: int
    n_items: int
    actions_seen: int | None
    other_share: float


@dataclass(frozen=True)
class ColdStart:
    """The test split against the train split (``sql.summary.cold_start_summary``).

    ``other_share``: test decisions on the ``other`` bucket; ``new_items``: test items no train
    decision shows (``new_item_share`` of test decisions are on them); ``new_users``: test
    users without a train session; ``new_user_episodes``: test sessions of users with no
    earlier session in the lookback (``new_user_episode_share`` of test sessions).
    """

    test_decisions: int
    other_share: float | None
    test_items: int
    new_items: int
    new_item_share: float | None
    test_users: int
    new_users: int
    test_episodes: int
    new_user_episodes: int
    new_user_episode_share: float | None

    KEYS = (
        "test_decisions",
        "other_share",
        "test_items",
        "new_items",
        "new_item_share",
        "test_users",
        "new_users",
        "test_episodes",
        "new_user_episodes",
        "new_user_episode_share",
    )

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.KEYS}

    @classmethod
    def _read(cls, d: _Doc) -> ColdStart:
        out = cls(
            test_decisions=d.int("test_decisions"),
            other_share=d.opt_float("other_share", lo=0, hi=1),
            test_items=d.int("test_items"),
            new_items=d.int("new_items"),
            new_item_share=d.opt_float("new_item_share", lo=0, hi=1),
            test_users=d.int("test_users"),
            new_users=d.int("new_users"),
            test_episodes=d.int("test_episodes"),
            new_user_episodes=d.int("new_user_episodes"),
            new_user_episode_share=d.opt_float("new_user_episode_share", lo=0, hi=1),
        )
        for part, whole in (
            ("new_items", "test_items"),
            ("new_users", "test_users"),
            ("new_user_episodes", "test_episodes"),
        ):
            if getattr(out, part) > getattr(out, whole):
                d.fail(part, f"= {getattr(out, part)} exceeds {whole} = {getattr(out, whole)}")
        return out


@dataclass(frozen=True)
class DataSummary:
    """``data_summary.json``: the dataset behind the run."""

    dataset_version: str
    data_source: Literal["simulator", "logs"]
    mode: Literal["logged", "organic"]
    date_range: DateRange
    events: EventCounts
    sessions: int
    decisions: int
    action_coverage: ActionCoverage
    reward_rates: Mapping[str, float]
    users: int | None = None
    episodes: int | None = None
    rejected_reasons: Mapping[str, int] = field(default_factory=dict)
    splits: Mapping[str, int] = field(default_factory=dict)
    cold_start: ColdStart | None = None

    REWARD_RATE_KEYS = ("click", "cart", "purchase", "revenue")

    def to_dict(self) -> dict[str, Any]:
        return _clean(
            {
                "schema_version": SCHEMA_VERSION,
                "dataset_version": self.dataset_version,
                "data_source": self.data_source,
                "mode": self.mode,
                "date_range": {"start": self.date_range.start, "end": self.date_range.end},
                "events": {
                    "loaded": self.events.loaded,
                    "rejected": self.events.rejected,
                    "duplicate": self.events.duplicate,
                },
                "users": self.users,
                "sessions": self.sessions,
                "episodes": self.episodes,
                "decisions": self.decisions,
                "splits": dict(self.splits),
                "action_coverage": {
                    "n_actions": self.action_coverage.n_actions,
                    "n_items": self.action_coverage.n_items,
                    "actions_seen": self.action_coverage.actions_seen,
                    "other_share": self.action_coverage.other_share,
                },
                "reward_rates": dict(self.reward_rates),
                "rejected_reasons": dict(self.rejected_reasons),
                "cold_start": None if self.cold_start is None else self.cold_start.to_dict(),
            }
        )

    @classmethod
    def _read(cls, d: _Doc) -> DataSummary:
        dr, ev, ac, rr = (
            d.sub(k) for k in ("date_range", "events", "action_coverage", "reward_rates")
        )
        start, end = dr.datetime("start"), dr.datetime("end")
        if end < start:
            dr.fail("end", f"= {_iso(end)} is before start {_iso(start)}")
        for k in cls.REWARD_RATE_KEYS:
            rr.float(k, lo=0)
        n_actions = ac.int("n_actions", min_value=1)
        cs = d.opt_sub("cold_start")
        seen = ac.opt_int("actions_seen")
        if seen is not None and seen > n_actions:
            ac.fail("actions_seen", f"= {seen} exceeds n_actions = {n_actions}")
        return cls(
            dataset_version=d.str("dataset_version"),
            data_source=d.str("data_source", choices=("simulator", "logs")),  # type: ignore[arg-type]
            mode=d.str("mode", choices=("logged", "organic")),  # type: ignore[arg-type]
            date_range=DateRange(start, end),
            events=EventCounts(ev.int("loaded"), ev.int("rejected"), ev.int("duplicate")),
            sessions=d.int("sessions"),
            decisions=d.int("decisions"),
            action_coverage=ActionCoverage(
                n_actions=n_actions,
                n_items=ac.int("n_items"),
                actions_seen=seen,
                other_share=ac.float("other_share", lo=0, hi=1),
            ),
            reward_rates={str(k): rr.float(str(k), lo=0) for k in rr.data},
            users=d.opt_int("users"),
            episodes=d.opt_int("episodes"),
            rejected_reasons=d.opt_mapping("rejected_reasons", lambda s, k: s.int(k)),
            splits=d.opt_mapping("splits", lambda s, k: s.int(k)),
            cold_start=None if cs is None else ColdStart._read(cs),
        )


def data_summary_from_build(
    build: Mapping[str, Any],
    *,
    data_source: Literal["simulator", "logs"],
    date_range: tuple[datetime, datetime],
    events_loaded: int,
    events_rejected: int,
    events_duplicate: int,
    rejected_reasons: Mapping[str, int] | None = None,
) -> DataSummary:
    """A :class:`DataSummary` from ``sql.build``'s summary dict plus the ingest counts.

    ``build`` is ``BuildResult.summary`` (keys ``version, mode, episodes, decisions, users,
    actions, reward``); sessions = episodes (an episode is a session). Raises ReportError
    naming the missing key. Write it with ``write_json(run_dir / DATA_SUMMARY, ds.to_dict())``.
    """
    where = "build summary"
    try:
        actions = build["actions"]
        coverage = actions.get("coverage", {}).get("all")
        components = build["reward"]["components"]
        data = {
            "dataset_version": build["version"],
            "data_source": data_source,
            "mode": build["mode"],
            "date_range": {"start": date_range[0], "end": date_range[1]},
            "events": {
                "loaded": events_loaded,
                "rejected": events_rejected,
                "duplicate": events_duplicate,
            },
            "rejected_reasons": dict(rejected_reasons or {}),
            "users": build.get("users"),
            "sessions": build["episodes"]["total"],
            "episodes": build["episodes"]["total"],
            "decisions": build["decisions"]["total"],
            "splits": {
                k: v
                for k, v in build["decisions"].items()
                if k in ("train", "validation", "test") and isinstance(v, int)
            },
            "action_coverage": {
                "n_actions": actions["n_actions"],
                "n_items": actions["named"] + actions["other_items"],
                "actions_seen": None,
                "other_share": None if coverage is None else 1.0 - coverage,
            },
            "reward_rates": {
                "click": components["r_click"]["mean"],
                "cart": components["r_cart"]["mean"],
                "purchase": components["r_purchase"]["mean"],
                "revenue": components["r_revenue"]["mean"],
                "reward": build["reward"]["mean"],
            },
            "cold_start": build.get("cold_start"),
        }
    except (KeyError, TypeError, AttributeError) as exc:
        raise ReportError(
            f"{where}: missing or malformed key {exc}; pass sql.build's summary"
        ) from None
    return DataSummary._read(_Doc(_clean(data), file=Path(where), producer="sql.build"))


def load_data_summary(run_dir: Path | str) -> DataSummary:
    """Read and validate ``<run_dir>/data_summary.json``."""
    return DataSummary._read(_read_json(Path(run_dir), DATA_SUMMARY))


# --------------------------------------------------------------------------------------------
# evaluation/summary.json


@dataclass(frozen=True)
class WeightHistogram:
    """Histogram of the importance weights ``w = pi(a|s) / mu(a|s)`` over decisions with w > 0.

    ``bin_edges`` has ``len(counts) + 1`` increasing entries on the weight scale.
    """

    bin_edges: tuple[float, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True)
class CalibrationBin:
    """Decision-action pairs whose estimated propensity fell in one bin.

    ``predicted``: mean estimated propensity in the bin; ``observed``: share of those pairs
    where the action was the logged one; ``count``: number of pairs.
    """

    predicted: float
    observed: float
    count: int


@dataclass(frozen=True)
class BehaviourModel:
    """The model of the logging policy used when propensities were not logged."""

    kind: str
    calibration: tuple[CalibrationBin, ...]
    ece: float | None = None
    log_loss: float | None = None
    n_fit: int | None = None
    baseline_log_loss: float | None = None  # log loss of the marginal action frequencies
    share_floored: float | None = None  # logged actions whose propensity was floored
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class TopItem:
    """An item a policy recommends most: its share of the policy's choices (and the logs')."""

    item_id: str
    share: float
    logged_share: float | None = None


@dataclass(frozen=True)
class PolicyInfo:
    """What a policy is (``model`` names its ``models/<model>/`` directory, if trained)."""

    description: str | None = None
    model: str | None = None


@dataclass(frozen=True)
class SegmentCount:
    """How many test decisions and sessions one segment holds (and whether it was
    evaluated: a segment with too few sessions gets no estimates)."""

    segment: str
    n_decisions: int
    n_episodes: int
    decision_share: float
    episode_share: float
    evaluated: bool


@dataclass(frozen=True)
class SegmentInfo:
    """``summary.json`` ``segments``: how the segments are defined and their sizes."""

    definition: str
    objective: str
    counts: tuple[SegmentCount, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "definition": self.definition,
            "objective": self.objective,
            "counts": [
                {
                    "segment": c.segment,
                    "n_decisions": c.n_decisions,
                    "n_episodes": c.n_episodes,
                    "decision_share": c.decision_share,
                    "episode_share": c.episode_share,
                    "evaluated": c.evaluated,
                }
                for c in self.counts
            ],
        }


def _read_segment_info(d: _Doc) -> SegmentInfo:
    counts = []
    for c in d.items("counts"):
        ev = c.raw("evaluated")
        if not isinstance(ev, bool):
            c.fail("evaluated", f"must be true or false, got {ev!r}")
        counts.append(
            SegmentCount(
                segment=c.str("segment"),
                n_decisions=c.int("n_decisions"),
                n_episodes=c.int("n_episodes"),
                decision_share=c.float("decision_share", lo=0, hi=1),
                episode_share=c.float("episode_share", lo=0, hi=1),
                evaluated=ev,
            )
        )
    return SegmentInfo(d.str("definition"), d.str("objective"), tuple(counts))


@dataclass(frozen=True)
class EvaluationSummary:
    """``evaluation/summary.json``: diagnostics that do not fit the results table, and the
    verdict computed by ``ope.verdict.decide`` when the evaluation ran."""

    run_id: str
    behaviour_policy: str
    propensity_source: Literal["logged", "estimated"]
    verdict: Verdict
    behaviour_model: BehaviourModel | None = None
    weight_histograms: Mapping[str, WeightHistogram] = field(default_factory=dict)
    top_items: Mapping[str, tuple[TopItem, ...]] = field(default_factory=dict)
    policies: Mapping[str, PolicyInfo] = field(default_factory=dict)
    n_bootstrap: int | None = None
    notes: tuple[str, ...] = ()
    segments: SegmentInfo | None = None

    @property
    def primary_objective(self) -> str:
        return self.verdict.objective

    @property
    def primary_estimator(self) -> str:
        return self.verdict.estimator

    def to_dict(self) -> dict[str, Any]:
        bm = self.behaviour_model
        return _clean(
            {
                "schema_version": SCHEMA_VERSION,
                "run_id": self.run_id,
                "behaviour_policy": self.behaviour_policy,
                "propensity_source": self.propensity_source,
                "behaviour_model": None
                if bm is None
                else {
                    "kind": bm.kind,
                    "calibration": [
                        {"predicted": b.predicted, "observed": b.observed, "count": b.count}
                        for b in bm.calibration
                    ],
                    "ece": bm.ece,
                    "log_loss": bm.log_loss,
                    "n_fit": bm.n_fit,
                    "baseline_log_loss": bm.baseline_log_loss,
                    "share_floored": bm.share_floored,
                    "warnings": list(bm.warnings),
                },
                "weight_histograms": {
                    p: {"bin_edges": list(h.bin_edges), "counts": list(h.counts)}
                    for p, h in self.weight_histograms.items()
                },
                "top_items": {
                    p: [
                        {"item_id": t.item_id, "share": t.share, "logged_share": t.logged_share}
                        for t in items
                    ]
                    for p, items in self.top_items.items()
                },
                "policies": {
                    p: {"description": i.description, "model": i.model}
                    for p, i in self.policies.items()
                },
                "n_bootstrap": self.n_bootstrap,
                "notes": list(self.notes),
                "verdict": self.verdict.to_dict(),
                "segments": None if self.segments is None else self.segments.to_dict(),
            }
        )

    @classmethod
    def _read(cls, d: _Doc) -> EvaluationSummary:
        source = d.str("propensity_source", choices=("logged", "estimated"))
        bm_doc = d.opt_sub("behaviour_model")
        if source == "estimated" and bm_doc is None:
            d.fail(
                "behaviour_model",
                "missing: propensities were estimated, so the behaviour "
                "model and its calibration table must be stored",
            )
        try:
            verdict = Verdict.from_dict(d.raw("verdict"), where="verdict")
        except OPEError as exc:
            raise ReportError(f"{d.file}: {exc} (written by {d.producer}; re-run it)") from None
        notes = d.opt_list("notes")
        seg = d.opt_sub("segments")
        if not all(isinstance(n, str) for n in notes):
            d.fail("notes", "must be a list of strings")
        return cls(
            run_id=d.str("run_id"),
            behaviour_policy=d.str("behaviour_policy"),
            propensity_source=source,  # type: ignore[arg-type]
            verdict=verdict,
            behaviour_model=None if bm_doc is None else _read_behaviour_model(bm_doc),
            weight_histograms=d.per_policy("weight_histograms", _read_histogram),
            top_items=d.per_policy("top_items", _read_top_items),
            policies=d.opt_mapping(
                "policies",
                lambda s, k: PolicyInfo(s.sub(k).opt_str("description"), s.sub(k).opt_str("model")),
            ),
            n_bootstrap=d.opt_int("n_bootstrap", min_value=1),
            notes=tuple(notes),
            segments=None if seg is None else _read_segment_info(seg),
        )


def _read_behaviour_model(d: _Doc) -> BehaviourModel:
    bins = tuple(
        CalibrationBin(
            # ``mean_predicted`` is what ope's CalibrationTable.rows() calls it
            b.float("predicted" if b.has("predicted") else "mean_predicted", lo=0, hi=1),
            b.float("observed", lo=0, hi=1),
            b.int("count"),
        )
        for b in d.items("calibration")
    )
    if not bins:
        d.fail("calibration", "must hold at least one bin")
    warnings = d.opt_list("warnings")
    if not all(isinstance(w, str) for w in warnings):
        d.fail("warnings", "must be a list of strings")
    return BehaviourModel(
        kind=d.str("kind"),
        calibration=bins,
        ece=d.opt_float("ece", lo=0, hi=1),
        log_loss=d.opt_float("log_loss", lo=0),
        n_fit=d.opt_int("n_fit"),
        baseline_log_loss=d.opt_float("baseline_log_loss", lo=0),
        share_floored=d.opt_float("share_floored", lo=0, hi=1),
        warnings=tuple(warnings),
    )


def _read_histogram(parent: _Doc, policy: str) -> WeightHistogram:
    h = parent.sub(policy)
    edges, counts = h.list("bin_edges"), h.list("counts")
    if not all(
        isinstance(e, int | float) and not isinstance(e, bool) and math.isfinite(e) for e in edges
    ):
        h.fail("bin_edges", "must be a list of finite numbers")
    if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
        h.fail("counts", "must be a list of non-negative whole numbers")
    if len(counts) == 0 or len(edges) != len(counts) + 1:
        h.fail(
            "bin_edges",
            f"must have len(counts) + 1 entries, got {len(edges)} edges for {len(counts)} counts",
        )
    if any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
        h.fail("bin_edges", "must be strictly increasing")
    return WeightHistogram(tuple(float(e) for e in edges), tuple(counts))


def _read_top_items(parent: _Doc, policy: str) -> tuple[TopItem, ...]:
    return tuple(
        TopItem(
            t.str("item_id"), t.float("share", lo=0, hi=1), t.opt_float("logged_share", lo=0, hi=1)
        )
        for t in parent.items(policy)
    )


def load_summary(run_dir: Path | str) -> EvaluationSummary:
    """Read and validate ``<run_dir>/evaluation/summary.json``."""
    return EvaluationSummary._read(_read_json(Path(run_dir), SUMMARY))


# --------------------------------------------------------------------------------------------
# evaluation/explain.json


@dataclass(frozen=True)
class ConcentrationStats:
    """How concentrated recommendations are over the actions (``ope.explain.concentration``):
    share of the ``top_k`` most chosen actions, Gini (0 even .. 1 one action), entropy in nats,
    entropy / ln(A), and exp(entropy) = the effective number of actions."""

    top_k: int
    top_k_share: float
    gini: float
    entropy: float
    normalised_entropy: float
    effective_actions: float


@dataclass(frozen=True)
class ShareMove:
    """An item (or category) whose recommendation share moves from ``before`` (logged
    behaviour) to ``after`` (the policy)."""

    label: str
    before: float
    after: float

    @property
    def change(self) -> float:
        return self.after - self.before


@dataclass(frozen=True)
class RankedChoice:
    """One entry of a top-3 list: an item and its probability."""

    label: str
    prob: float


@dataclass(frozen=True)
class ExampleDecision:
    """One test decision: the history in plain words, the logged item, both top-3 lists."""

    row: int
    history: str
    logged: str
    behaviour_top: tuple[RankedChoice, ...]
    policy_top: tuple[RankedChoice, ...]
    agree: bool


@dataclass(frozen=True)
class PolicyChanges:
    """What changes if one policy ships (``ope.explain.PolicyExplanation.to_dict()``)."""

    concentration: ConcentrationStats
    behaviour_concentration: ConcentrationStats
    gains: tuple[ShareMove, ...]
    losses: tuple[ShareMove, ...]
    category_gains: tuple[ShareMove, ...]
    category_losses: tuple[ShareMove, ...]
    disagreement: float
    examples: tuple[ExampleDecision, ...]


@dataclass(frozen=True)
class Explanation:
    """``evaluation/explain.json``: per policy, how its recommendations differ from the logs."""

    run_id: str
    n_decisions: int
    categories_available: bool
    categories_note: str
    behaviour_top_source: str | None
    policies: Mapping[str, PolicyChanges]

    @classmethod
    def _read(cls, d: _Doc) -> Explanation:
        cat = d.sub("categories")
        available = cat.raw("available")
        if not isinstance(available, bool):
            cat.fail("available", f"must be true or false, got {available!r}")
        return cls(
            run_id=d.str("run_id"),
            n_decisions=d.int("n_decisions", min_value=1),
            categories_available=available,
            categories_note=cat.str("note"),
            behaviour_top_source=d.opt_str("behaviour_top_source"),
            policies=d.mapping("policies", _read_changes),
        )


def _read_concentration(d: _Doc) -> ConcentrationStats:
    return ConcentrationStats(
        top_k=d.int("top_k", min_value=1),
        top_k_share=d.float("top_k_share", lo=0, hi=1 + 1e-9),
        gini=d.float("gini", lo=0, hi=1),
        entropy=d.float("entropy", lo=0),
        normalised_entropy=d.float("normalised_entropy", lo=0, hi=1 + 1e-9),
        effective_actions=d.float("effective_actions", lo=1 - 1e-9),
    )


def _read_moves(d: _Doc, key: str) -> tuple[ShareMove, ...]:
    return tuple(
        ShareMove(m.str("label"), m.float("before", lo=0, hi=1), m.float("after", lo=0, hi=1))
        for m in (d.items(key) if d.has(key) else [])
    )


def _read_ranked(d: _Doc, key: str) -> tuple[RankedChoice, ...]:
    return tuple(RankedChoice(r.str("label"), r.float("prob", lo=0, hi=1)) for r in d.items(key))


def _read_changes(parent: _Doc, policy: str) -> PolicyChanges:
    d = parent.sub(policy)
    examples = []
    for e in d.items("examples"):
        agree = e.raw("agree")
        if not isinstance(agree, bool):
            e.fail("agree", f"must be true or false, got {agree!r}")
        examples.append(
            ExampleDecision(
                row=e.int("row"),
                history=e.str("history"),
                logged=e.str("logged"),
                behaviour_top=_read_ranked(e, "behaviour_top"),
                policy_top=_read_ranked(e, "policy_top"),
                agree=agree,
            )
        )
    return PolicyChanges(
        concentration=_read_concentration(d.sub("concentration")),
        behaviour_concentration=_read_concentration(d.sub("behaviour_concentration")),
        gains=_read_moves(d, "gains"),
        losses=_read_moves(d, "losses"),
        category_gains=_read_moves(d, "category_gains"),
        category_losses=_read_moves(d, "category_losses"),
        disagreement=d.float("disagreement", lo=0, hi=1),
        examples=tuple(examples),
    )


def load_explanation(run_dir: Path | str) -> Explanation | None:
    """Read and validate ``<run_dir>/evaluation/explain.json``; None when the run has none
    (runs evaluated before it existed)."""
    if not (Path(run_dir) / EXPLAIN).is_file():
        return None
    return Explanation._read(_read_json(Path(run_dir), EXPLAIN))


# --------------------------------------------------------------------------------------------
# evaluation/segments.parquet


@dataclass(frozen=True)
class SegmentRow:
    """One row of ``segments.parquet``: an estimate on one segment (``None`` = n/a)."""

    segment: str
    policy: str
    estimator: str
    objective: str
    family: str
    value: float | None
    low: float | None
    high: float | None
    baseline_value: float | None
    lift: float | None
    lift_low: float | None
    lift_high: float | None
    rel_lift: float | None
    rel_lift_low: float | None
    rel_lift_high: float | None
    ess: float | None
    n_decisions: int
    n_episodes: int


_SEGMENT_FLOATS = (
    "value",
    "low",
    "high",
    "baseline_value",
    "lift",
    "lift_low",
    "lift_high",
    "rel_lift",
    "rel_lift_low",
    "rel_lift_high",
    "ess",
)


def load_segments(run_dir: Path | str) -> tuple[SegmentRow, ...]:
    """Read and validate ``<run_dir>/evaluation/segments.parquet``; empty when absent."""
    path = Path(run_dir) / SEGMENTS
    producer = PRODUCED_BY[SEGMENTS]
    if not path.is_file():
        return ()
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
        raise ReportError(
            f"{path}: not a readable Parquet file ({exc}); re-run {producer}"
        ) from None
    missing = [c for c in SEGMENT_COLUMNS if c not in df.columns]
    if missing:
        raise ReportError(
            f"{path}: missing column(s) {', '.join(missing)} (see docs/reports.md); "
            f"re-run {producer}"
        )
    rows = []
    seen: dict[tuple[str, str, str, str], int] = {}
    for i, rec in enumerate(df.to_dict("records")):
        for col in ("segment", "policy", "estimator", "objective", "family"):
            if not isinstance(rec[col], str) or not rec[col]:
                raise ReportError(
                    f"{path}: row {i}: column {col!r} = {rec[col]!r}: must be a non-empty "
                    f"string; re-run {producer}"
                )
        key = (rec["segment"], rec["policy"], rec["estimator"], rec["objective"])
        if key in seen:
            raise ReportError(
                f"{path}: row {i}: (segment={key[0]!r}, policy={key[1]!r}, estimator="
                f"{key[2]!r}, objective={key[3]!r}) repeats row {seen[key]}"
            )
        seen[key] = i
        counts = {}
        for col in ("n_decisions", "n_episodes"):
            v = _float(rec[col])
            if v is None or v < 0 or v != int(v):
                raise ReportError(
                    f"{path}: row {i}: column {col!r} = {rec[col]!r}: must be a whole number "
                    f">= 0; re-run {producer}"
                )
            counts[col] = int(v)
        rows.append(
            SegmentRow(
                segment=rec["segment"],
                policy=rec["policy"],
                estimator=rec["estimator"],
                objective=rec["objective"],
                family=rec["family"],
                **{c: _float(rec[c]) for c in _SEGMENT_FLOATS},
                **counts,
            )
        )
    return tuple(rows)


# --------------------------------------------------------------------------------------------
# evaluation/ope_results.parquet


@dataclass(frozen=True)
class ResultRow:
    """One row of ``ope_results`` (docs/design.md section 6); ``None`` = not available."""

    run_id: str
    policy: str
    estimator: str
    objective: str
    value: float | None
    low: float | None
    high: float | None
    lift: float | None
    lift_low: float | None
    lift_high: float | None
    rel_lift: float | None
    rel_lift_low: float | None
    rel_lift_high: float | None
    alpha: float | None
    interval_method: str | None
    ess: float | None
    max_weight: float | None
    p99_weight: float | None
    zero_support_share: float | None
    unsupported_mass: float | None
    n_decisions: int | None
    n_episodes: int | None
    propensity_source: str | None
    ground_truth: float | None
    family: str | None = None  # optional column: "per_decision" | "per_session" (value scale)


def load_results(run_dir: Path | str) -> tuple[ResultRow, ...]:
    """Read and validate ``<run_dir>/evaluation/ope_results.parquet``."""
    path = Path(run_dir) / RESULTS
    producer = PRODUCED_BY[RESULTS]
    if not path.is_file():
        raise ReportError(f"{path}: not found; it is written by {producer}")
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
        raise ReportError(
            f"{path}: not a readable Parquet file ({exc}); re-run {producer}"
        ) from None
    missing = [c for c in RESULT_COLUMNS if c not in df.columns]
    if missing:
        raise ReportError(
            f"{path}: missing column(s) {', '.join(missing)} (the ope_results table of "
            f"docs/design.md section 6); re-run {producer}"
        )
    if df.empty:
        raise ReportError(f"{path}: has no rows; re-run {producer}")
    for col in _RESULT_FLOATS + _RESULT_INTS:
        s = df[col]
        if (
            not (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s))
            and s.notna().any()
        ):
            raise ReportError(
                f"{path}: column {col!r} must be numeric, got {s.dtype}; re-run {producer}"
            )
    rows: list[ResultRow] = []
    seen: dict[tuple[str, str, str], int] = {}
    for i, rec in enumerate(df.to_dict("records")):
        for col in ("run_id", "policy", "estimator", "objective"):
            v = rec[col]
            if not isinstance(v, str) or not v:
                shown = "null" if _float(v) is None and not isinstance(v, str) else repr(v)
                raise ReportError(
                    f"{path}: row {i}: column {col!r} = {shown}: must be a non-empty string; "
                    f"re-run {producer}"
                )
        key = (rec["policy"], rec["estimator"], rec["objective"])
        if key in seen:
            raise ReportError(
                f"{path}: row {i}: (policy={key[0]!r}, estimator={key[1]!r}, objective="
                f"{key[2]!r}) repeats row {seen[key]}; each combination must appear once"
            )
        seen[key] = i
        rows.append(
            ResultRow(
                run_id=rec["run_id"],
                policy=rec["policy"],
                estimator=rec["estimator"],
                objective=rec["objective"],
                **{c: _float(rec[c]) for c in _RESULT_FLOATS},
                **{c: None if _float(rec[c]) is None else int(rec[c]) for c in _RESULT_INTS},
                interval_method=_opt_text(rec["interval_method"]),
                propensity_source=_opt_text(rec["propensity_source"]),
                family=_opt_text(rec.get("family")),
            )
        )
    return tuple(rows)


def _float(x: Any) -> float | None:
    if x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _opt_text(x: Any) -> str | None:
    return x if isinstance(x, str) and x else None


# --------------------------------------------------------------------------------------------
# models/<name>/metrics.json


@dataclass(frozen=True)
class EpochMetrics:
    """One epoch of training; metric values are ``None`` when not measured."""

    epoch: int
    step: int
    loss: float | None = None
    td_error: float | None = None
    initial_value: float | None = None
    agreement: float | None = None
    ips: float | None = None

    METRICS = ("loss", "td_error", "initial_value", "agreement", "ips")

    def to_dict(self) -> dict[str, Any]:
        return _clean(
            {"epoch": self.epoch, "step": self.step, **{m: getattr(self, m) for m in self.METRICS}}
        )


@dataclass(frozen=True)
class ModelCurves:
    """The training curve of one model (``models/<name>/metrics.json``: a list of epochs)."""

    name: str
    epochs: tuple[EpochMetrics, ...]


def _epoch_from_training(item: Any) -> Any:
    """One epoch of offline_rl's metrics: its main loss is ``loss`` or ``loss_loss``."""
    if not isinstance(item, dict) or "loss" in item:
        return item
    losses = [k for k in item if k.startswith("loss_")]
    main = "loss_loss" if "loss_loss" in item else (losses[0] if losses else None)
    return {**item, "loss": item.get(main) if main else None}


def load_models(run_dir: Path | str) -> tuple[ModelCurves, ...]:
    """Every ``models/<name>/metrics.json`` of the run, by name; none is fine."""
    models_dir = Path(run_dir) / "models"
    if not models_dir.is_dir():
        return ()
    out = []
    for sub in sorted(p for p in models_dir.iterdir() if p.is_dir()):
        path = sub / "metrics.json"
        if not path.is_file():
            continue
        producer = PRODUCED_BY[METRICS]
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ReportError(f"{path}: not valid JSON ({exc}); re-run {producer}") from None
        if isinstance(data, dict) and isinstance(data.get("epochs"), list):
            # offline_rl's own format: {"n_updates": ..., "epochs": [...]}, losses as loss_<name>
            data = [_epoch_from_training(item) for item in data["epochs"]]
        if not isinstance(data, list):
            raise ReportError(
                f"{path}: must be a JSON list of per-epoch objects {{epoch, step, loss, ...}} "
                f"or an object with an 'epochs' list, got {_kind(data)}; re-run {producer}"
            )
        epochs = []
        for i, item in enumerate(data):
            e = _Doc(item, file=path, producer=producer, path=f"[{i}]")
            epochs.append(
                EpochMetrics(
                    epoch=e.int("epoch"),
                    step=e.int("step"),
                    **{m: e.opt_float(m) for m in EpochMetrics.METRICS},
                )
            )
        out.append(ModelCurves(sub.name, tuple(epochs)))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# everything together


@dataclass(frozen=True)
class ReportInput:
    """All stored results of one run, validated against each other.

    ``data`` and ``summary``/``results`` are ``None``/empty only when the manifest says the
    stage producing them did not complete (a data-quality gate stopped the run, say); then
    ``missing`` explains, in plain words, what is absent and why.
    """

    run_dir: Path
    manifest: Manifest
    data: DataSummary | None
    summary: EvaluationSummary | None
    results: tuple[ResultRow, ...]
    models: tuple[ModelCurves, ...]
    missing: tuple[str, ...] = ()
    explanation: Explanation | None = None
    segments: tuple[SegmentRow, ...] = ()

    @property
    def run_id(self) -> str:
        return self.manifest.run_id

    @property
    def evaluated(self) -> bool:
        return self.summary is not None

    @property
    def simulated(self) -> bool:
        """Ground truth is available (the data came from the simulator)."""
        return (
            self.manifest.simulated
            or (self.data is not None and self.data.data_source == "simulator")
            or any(r.ground_truth is not None for r in self.results)
        )

    @classmethod
    def load(cls, run_dir: Path | str) -> ReportInput:
        """Read every file of ``run_dir``; raise :class:`ReportError` on the first problem."""
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise ReportError(f"{run_dir}: run directory not found")
        manifest = load_manifest(run_dir)
        missing: list[str] = []
        data = None
        if _expected(run_dir, manifest, DATA_SUMMARY, "build", missing):
            data = load_data_summary(run_dir)
        summary, results = None, ()
        if _expected(run_dir, manifest, SUMMARY, "evaluate", missing):
            summary = load_summary(run_dir)
            results = load_results(run_dir)
        models = load_models(run_dir)
        if summary is None:
            return cls(run_dir, manifest, data, None, (), models, tuple(missing))
        if summary.run_id != manifest.run_id:
            raise ReportError(
                f"{run_dir / SUMMARY}: key 'run_id' = {summary.run_id!r} does not match "
                f"{MANIFEST} run_id {manifest.run_id!r}; re-run {PRODUCED_BY[SUMMARY]}"
            )
        for i, r in enumerate(results):
            if r.run_id != manifest.run_id:
                raise ReportError(
                    f"{run_dir / RESULTS}: row {i}: run_id {r.run_id!r} does not match "
                    f"{MANIFEST} run_id {manifest.run_id!r}; re-run {PRODUCED_BY[RESULTS]}"
                )
        v = summary.verdict
        keys = {(r.policy, r.estimator, r.objective) for r in results}
        if v.policy is not None and (v.policy, v.estimator, v.objective) not in keys:
            raise ReportError(
                f"{run_dir / SUMMARY}: the verdict is about policy {v.policy!r} ({v.estimator}, "
                f"{v.objective}) but {RESULTS} has no such row; the two files come from "
                f"different evaluations: re-run {PRODUCED_BY[SUMMARY]}"
            )
        explanation = load_explanation(run_dir)
        if explanation is not None and explanation.run_id != manifest.run_id:
            raise ReportError(
                f"{run_dir / EXPLAIN}: key 'run_id' = {explanation.run_id!r} does not match "
                f"{MANIFEST} run_id {manifest.run_id!r}; re-run {PRODUCED_BY[EXPLAIN]}"
            )
        return cls(
            run_dir,
            manifest,
            data,
            summary,
            results,
            models,
            tuple(missing),
            explanation=explanation,
            segments=load_segments(run_dir),
        )


def _expected(run_dir: Path, manifest: Manifest, rel: str, stage: str, missing: list[str]) -> bool:
    """True when ``rel`` exists; False (with a note) when the manifest says ``stage`` did not
    complete; a ReportError when the file should be there and is not."""
    if (run_dir / rel).is_file():
        return True
    info = manifest.stages.get(stage)
    if info is None or info.status == "done":
        raise ReportError(f"{run_dir / rel}: not found; it is written by {PRODUCED_BY[rel]}")
    why = f"the {stage} stage is {info.status}"
    if info.error:
        why += f" ({info.error})"
    missing.append(f"{rel}: {why}")
    return False
