"""``offrec bench nightly``: the whole job on ~1M simulated events, time and memory per stage.

There is no outside baseline for the whole job, so each stage is one row (``ours`` only) and
the goal is absolute: the night's run under 10 minutes on 2 cores. Each repetition of a stage
starts from the previous stage's outputs (ingest from an empty warehouse), so rows are
independent measurements of one stage. ``--scale 1`` simulates 215,000 sessions (about 1M
events); the config is the documented default except where a comment in ``_CONFIG`` says.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from offrec.bench import BenchOptions, BenchSuite, Comparison, Contender
from offrec.config import load_config
from offrec.pipeline import STAGES, PipelineOptions, run_pipeline

__all__ = ["suite"]

SESSIONS_PER_MILLION_EVENTS = 215_000

_CONFIG = """\
[paths]
inputs = "raw"

[simulate]
seed = {seed}
n_sessions = {sessions}
partition_by_date = true

[train]
# three algorithms of the five: a nightly job trains what it ships
algorithms = ["dqn", "cql", "bc"]

[evaluate]
# closed-form reward models: gradient boosting costs minutes per objective at this size
reward_model = {{ kind = "ridge" }}
"""


def suite(opts: BenchOptions) -> BenchSuite:
    from offrec.simulator import write_logs

    root = Path(opts.workdir) / "nightly"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    sessions = max(200, int(SESSIONS_PER_MILLION_EVENTS * opts.scale))
    (root / "offrec.toml").write_text(_CONFIG.format(seed=opts.seed, sessions=sessions))
    cfg = load_config(root / "offrec.toml")
    logs = write_logs(cfg.paths.inputs, cfg.simulate)

    def stage_runner(stage: str) -> Contender:
        def setup() -> None:
            if stage == "ingest":
                for p in root.glob("warehouse.duckdb*"):
                    p.unlink()

        def run() -> dict[str, object]:
            opts_ = PipelineOptions(run_id="bench", kind="manual", stages=(stage,),
                                    simulated=True)
            outcome = run_pipeline(cfg, opts_)
            rec = outcome.manifest.stages[stage]
            return {"status": rec.status, **{k: v for k, v in rec.details.items()
                                             if isinstance(v, int | float | str)}}

        return Contender(f"offrec {stage}", run, setup)

    comparisons = tuple(
        Comparison(stage, stage_runner(stage), (), n_items=float(logs.n_events), unit="events",
                   goal="whole night < 600 s on 2 cores" if stage == "report" else "")
        for stage in STAGES
    )
    notes = (f"{logs.n_events:,} simulated events in {sessions:,} sessions; "
             "per s = events per second of the stage; no baseline (absolute goal)")
    return BenchSuite("nightly", comparisons, notes=notes)
