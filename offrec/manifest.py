"""``runs/<run_id>/manifest.json``: what a run did, stage by stage, written atomically."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from offrec.atomic import atomic_write_json

__all__ = ["StageRecord", "Manifest", "package_versions", "STAGE_STATUSES"]

STAGE_STATUSES = ("pending", "running", "done", "failed", "skipped")
_PACKAGES = ("offrec", "duckdb", "d3rlpy", "torch", "numpy", "pandas", "pyarrow", "scikit-learn")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class StageRecord:
    status: str = "pending"
    started_at: str | None = None
    finished_at: str | None = None
    seconds: float | None = None
    peak_rss_mb: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Manifest:
    run_id: str
    kind: str  # "nightly" | "demo" | "manual"
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)
    status: str = "running"  # running | ok | gate_failed | failed
    exit_code: int | None = None
    date: str | None = None
    config_hash: str = ""
    config_path: str | None = None
    dataset_version: str | None = None
    simulated: bool = False
    package_versions: dict[str, str] = field(default_factory=package_versions)
    stages: dict[str, StageRecord] = field(default_factory=dict)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    models: dict[str, str] = field(default_factory=dict)
    ope_summary: dict[str, Any] = field(default_factory=dict)
    gates: list[dict[str, Any]] = field(default_factory=list)
    report_path: str | None = None

    def save(self, run_dir: Path) -> Path:
        self.updated_at = _now()
        return atomic_write_json(Path(run_dir) / "manifest.json", asdict(self))

    @classmethod
    def load(cls, run_dir: Path) -> Manifest:
        data = json.loads((Path(run_dir) / "manifest.json").read_text())
        stages = {k: StageRecord(**v) for k, v in data.pop("stages", {}).items()}
        known = set(cls.__dataclass_fields__)
        return cls(stages=stages, **{k: v for k, v in data.items() if k in known})

    def stage(self, name: str) -> StageRecord:
        return self.stages.setdefault(name, StageRecord())
