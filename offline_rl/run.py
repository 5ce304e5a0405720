"""``offrec train`` as a library call: load a dataset version from the warehouse, train, save.

Used by the CLI command (``offrec/commands/train.py``); the nightly pipeline calls
:func:`offline_rl.train.train_algorithms` itself.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offline_rl.config import ALGORITHM_NAMES, TrainConfig
from offline_rl.errors import TrainError
from offline_rl.model import TrainedModel
from offline_rl.train import train_algorithms

__all__ = [
    "TrainRun",
    "new_run_id",
    "check_run_id",
    "select_algorithms",
    "train_from_warehouse",
    "format_models_table",
]

_RUN_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class TrainRun:
    """What one ``offrec train`` produced."""

    run_id: str
    run_dir: Path
    dataset_version: str
    models: dict[str, TrainedModel]


def new_run_id(now: dt.datetime | None = None) -> str:
    """A UTC timestamp ``YYYYmmddTHHMMSSZ``."""
    now = now or dt.datetime.now(dt.UTC)
    return now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def check_run_id(run_id: str) -> str:
    if not _RUN_ID.match(run_id or ""):
        raise TrainError(
            f"--run-id {run_id!r}: use letters, digits, '_', '.', '-' (not starting with '.' or "
            f"'-', at most 100 characters)"
        )
    return run_id


def select_algorithms(cfg: TrainConfig, names: Sequence[str] | None) -> TrainConfig:
    """``cfg`` restricted to ``names`` (``--algo``), in the order given; None keeps the config."""
    if not names:
        return cfg
    for name in names:
        if name not in ALGORITHM_NAMES:
            raise TrainError(
                f"--algo {name!r}: unknown algorithm; choose from {', '.join(ALGORITHM_NAMES)}"
            )
    try:
        return dataclasses.replace(cfg, algorithms=tuple(dict.fromkeys(names)))
    except ValueError as exc:
        raise TrainError(f"--algo: {exc}") from None


def train_from_warehouse(
    warehouse: Path,
    cfg: TrainConfig,
    runs_dir: Path,
    *,
    version: str | None = None,
    run_id: str | None = None,
    progress: Any = None,
) -> TrainRun:
    """Train ``cfg.algorithms`` on ``version`` (default: the latest) of ``warehouse``.

    Models go to ``<runs_dir>/<run_id>/models/<name>/`` (run id default: :func:`new_run_id`).
    """
    from sql import dataset

    warehouse = Path(warehouse)
    if not warehouse.exists():
        raise TrainError(
            f"warehouse {warehouse} does not exist; run `offrec ingest` and `offrec build` "
            f"first, or pass --warehouse"
        )
    for name in ("load_transitions", "load_feature_spec", "load_action_space"):
        if not hasattr(dataset, name):
            raise TrainError(f"sql.dataset.{name} is not available in this installation")
    data = dataset.load_transitions(warehouse, version=version)
    resolved = str(data.version or version or "")
    spec = dataset.load_feature_spec(warehouse, version=resolved or version)
    actions = dataset.load_action_space(warehouse, version=resolved or version)
    train = data.for_split("train")
    validation = data.for_split("validation")
    if len(train) == 0:
        raise TrainError(
            f"dataset version {resolved!r} has no train rows; rebuild with a train_frac > 0 "
            f"or a wider window"
        )
    rid = check_run_id(run_id) if run_id else new_run_id()
    run_dir = Path(runs_dir) / rid
    models = train_algorithms(train, validation, spec, actions, cfg, run_dir, progress=progress)
    return TrainRun(run_id=rid, run_dir=run_dir, dataset_version=resolved, models=models)


def _fmt(value: Any, spec: str = ".3g") -> str:
    return format(value, spec) if isinstance(value, int | float) else "-"


def format_models_table(run: TrainRun) -> str:
    """One line per model: updates, seconds, final validation metrics, directory."""
    header = (
        f"{'model':<11} {'updates':>8} {'seconds':>8} {'td_error':>9} {'init V':>8} "
        f"{'agree':>6} {'top1':>5} {'ips':>7}  saved in"
    )
    lines = [f"dataset version {run.dataset_version}, run {run.run_id}", header, "-" * len(header)]
    for name, model in run.models.items():
        m = model.final_metrics
        lines.append(
            f"{name:<11} {model.n_updates:>8} "
            f"{_fmt(model.dataset_info.get('train_seconds'), '.1f'):>8} "
            f"{_fmt(m.get('td_error')):>9} {_fmt(m.get('initial_value')):>8} "
            f"{_fmt(m.get('agreement'), '.2f'):>6} {_fmt(m.get('top_action_share'), '.2f'):>5} "
            f"{_fmt(m.get('ips')):>7}  "
            f"{run.run_dir / 'models' / name}"
        )
    split = next(iter(run.models.values())).final_metrics.get("split", "validation")
    lines.append(
        f"metrics on the {split} split: td_error and init V in reward units, agree = "
        f"share of logged actions chosen,\ntop1 = share of states given the model's most common "
        f"action (near 1: one action everywhere), ips = per-decision SNIPS reward"
    )
    return "\n".join(lines)
