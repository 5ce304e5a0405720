"""The demo: a config tuned to finish in a few minutes on 2 cores, simulated logs, the pipeline."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from offrec.config import load_config
from offrec.logs import log_event
from offrec.pipeline import PipelineOptions, PipelineOutcome, run_pipeline

__all__ = ["DEMO_CONFIG", "run_demo"]

DEMO_CONFIG = """\
# offrec demo configuration (written by `offrec demo`; edit and run it again).
# Every key not listed here is at its default: `offrec config show -c offrec.toml`.

[paths]
inputs = "raw"
warehouse = "warehouse.duckdb"
datasets = "datasets"
runs = "runs"

[simulate]
seed = 7
n_sessions = 12000

[build]
top_n = 50

[train]
algorithms = ["dqn", "cql", "bc"]

[evaluate]
n_bootstrap = 500
ground_truth_sessions = 3000

[evaluate.fqe]
max_epochs = 15
steps_per_epoch = 300
"""


def run_demo(
    workdir: Path,
    *,
    sessions: int | None = None,
    seed: int | None = None,
    fresh: bool = False,
    progress: Callable[[str], None] | None = None,
) -> PipelineOutcome:
    """Write ``workdir/offrec.toml`` (once), simulate into ``workdir/raw``, run every stage."""
    from offrec.simulator import write_logs

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "offrec.toml"
    if not config_path.exists():
        config_path.write_text(DEMO_CONFIG)
    if fresh:
        for name in ("raw", "datasets", "runs"):
            shutil.rmtree(workdir / name, ignore_errors=True)
        for wh in workdir.glob("warehouse.duckdb*"):
            wh.unlink()
    cfg = load_config(config_path)
    summary = write_logs(cfg.paths.inputs, cfg.simulate, n_sessions=sessions, seed=seed,
                         overwrite=True, progress=progress)
    log_event("simulated sessions", sessions=summary.n_sessions, events=summary.n_events,
              out=str(cfg.paths.inputs))
    opts = PipelineOptions(run_id="demo", kind="demo", simulated=True, progress=progress)
    return run_pipeline(cfg, opts)
