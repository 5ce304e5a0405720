"""The ``offrec bench ope`` contenders compute the same thing; the command runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from offrec.benches.ope import baseline_bootstrap, make_data, our_bootstrap
from offrec.cli import app


def test_make_data_shapes() -> None:
    data = make_data(3000, seed=1)
    assert data["action_dist"].shape == (3000, 100)
    np.testing.assert_allclose(data["action_dist"].sum(axis=1), 1.0, atol=1e-12)
    assert np.all(np.diff(data["episode_ids"]) >= 0)  # sessions are contiguous
    assert 400 < np.unique(data["episode_ids"]).size < 900


def test_multinomial_bootstrap_equals_the_loop_over_resamples() -> None:
    """Same seed, same draws: the vectorised bootstrap reproduces the loop exactly."""
    data = make_data(3000, seed=2)
    ours = our_bootstrap(data, "multinomial", seed=5)
    loop = baseline_bootstrap(data, seed=5)
    assert ours.keys() == loop.keys()
    for key in ours:
        assert ours[key] == pytest.approx(loop[key], rel=1e-10), key


def test_bench_command_runs(tmp_path: Path) -> None:
    out = tmp_path / "ope.json"
    result = CliRunner().invoke(
        app, ["bench", "ope", "--scale", "0.002", "--repeat", "1", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "obp-style loop" in result.output
    payload = json.loads(out.read_text())
    comp = payload["comparisons"][0]
    assert comp["ours"]["extra"]["ipw_low"] < comp["ours"]["extra"]["ipw_high"]
    assert set(comp["ratios"]) == {"obp-style loop", "offrec (multinomial)"}
