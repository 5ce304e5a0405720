"""``offrec bench simulate``: runs, and its per-session baseline simulates the same model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from offrec.bench import BenchOptions, run_suite
from offrec.benches.simulate import UniformPolicy, loop_run_policy, loop_simulate_events, suite
from offrec.cli import app
from offrec.simulator import RAW_SCHEMA, SimulatorConfig, run_policy, simulate_events
from offrec.simulator.world import World
from sql.dataset import ActionSpace

CFG = SimulatorConfig()


def test_suite_runs_ours_and_the_loop_side_by_side(tmp_path: Path) -> None:
    opts = BenchOptions(repeat=1, scale=0.01, seed=1, workdir=tmp_path)
    results = run_suite(suite(opts), opts)
    assert [r.name for r in results] == ["logs", "ground_truth"]
    for r in results:
        assert r.unit == "sessions" and r.n_items >= 100
        assert list(r.ratios) == ["per-session python loop"] and r.ratios[r.baselines[0].name] > 0
    logs = results[0]
    assert logs.ours.extra["events"] > 200 and logs.baselines[0].extra["events"] > 200


def test_cli_bench_simulate_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(
        app, ["bench", "simulate", "--repeat", "1", "--scale", "0.01", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "per-session python loop" in result.output and "ratio" in result.output
    data = json.loads(out.read_text())
    assert data["stage"] == "simulate" and len(data["comparisons"]) == 2


def test_loop_baseline_draws_from_the_same_model() -> None:
    n = 4000
    ours = simulate_events(CFG, n_sessions=n, seed=2).events
    loop = loop_simulate_events(CFG, n, seed=2)
    assert loop.schema.equals(RAW_SCHEMA)
    for kind in ("impression", "click", "purchase"):
        a = np.sum(np.asarray(ours.column("event_type").to_pylist()) == kind) / n
        b = np.sum(np.asarray(loop.column("event_type").to_pylist()) == kind) / n
        assert abs(a - b) < 0.1 * max(a, b), (kind, a, b)
    world = World(CFG)
    space = ActionSpace(tuple(world.catalog.item_ids[:50]))
    policy = UniformPolicy(space.n_actions)
    truth = run_policy(policy, space, n_sessions=3000, seed=4, gamma=0.9, config=CFG)
    loop_value = loop_run_policy(policy, space, CFG, 1500, 4, 0.9)
    # the loop's realised return has a larger spread than the truth's; allow 4 of its SEs
    assert abs(loop_value - truth.value) < 4 * truth.value_se * math.sqrt(3000 / 1500) * 1.5
