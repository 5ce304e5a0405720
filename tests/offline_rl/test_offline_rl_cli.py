"""``offrec train`` in-process: arguments, output table, saved models, error exits.

The warehouse loaders of ``sql.dataset`` are replaced by the tiny MDP here (the build has its
own tests); everything after loading is the real code path.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import sql.dataset
from offline_rl.artifacts import list_models, load_model
from offrec.cli import app


def _concat(a, b):
    out = {}
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            out[f.name] = np.concatenate([x, y])
        elif isinstance(x, dict):
            out[f.name] = {k: np.concatenate([x[k], y[k]]) for k in x}
        else:
            out[f.name] = x
    return type(a)(**out)


@pytest.fixture()
def project(tmp_path, mdp, monkeypatch):
    train, validation, spec, actions = mdp
    data = _concat(train, validation)
    calls = []

    def load_transitions(warehouse, version=None, split=None):
        calls.append(("transitions", Path(warehouse), version))
        return data

    def load_feature_spec(warehouse, version=None):
        calls.append(("spec", Path(warehouse), version))
        return spec

    def load_action_space(warehouse, version=None):
        calls.append(("actions", Path(warehouse), version))
        return actions

    monkeypatch.setattr(sql.dataset, "load_transitions", load_transitions, raising=False)
    monkeypatch.setattr(sql.dataset, "load_feature_spec", load_feature_spec, raising=False)
    monkeypatch.setattr(sql.dataset, "load_action_space", load_action_space, raising=False)
    (tmp_path / "warehouse.duckdb").write_bytes(b"")
    (tmp_path / "offrec.toml").write_text(
        "[train]\nn_steps = 40\nn_steps_per_epoch = 20\nbatch_size = 32\n"
        'hidden_units = [16, 16]\nthreads = 1\ndevice = "cpu"\n\n[train.cql]\nalpha = 0.5\n'
    )
    return tmp_path, calls


def _run(args):
    return CliRunner().invoke(app, args)


def test_train_writes_models_and_prints_the_table(project):
    root, calls = project
    result = _run(
        [
            "train",
            "-c",
            str(root / "offrec.toml"),
            "--run-id",
            "r1",
            "--algo",
            "cql",
            "--algo",
            "bc",
            "--version",
            "mdp-v1",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "dataset version mdp-v1, run r1" in result.output
    table = result.output.splitlines()
    assert any(line.startswith("cql ") and line.split()[1] == "40" for line in table)
    assert any(line.startswith("bc ") for line in table)
    assert str(root / "runs" / "r1" / "models" / "cql") in result.output
    assert [m.name for m in list_models(root / "runs" / "r1")] == ["bc", "cql"]
    assert load_model(root / "runs" / "r1", "cql").algo.config.alpha == 0.5
    assert ("transitions", root / "warehouse.duckdb", "mdp-v1") in calls
    # not a TTY under CliRunner: one line per epoch instead of a redrawn bar
    assert "cql epoch 2 step 40" in result.output


def test_default_run_id_is_a_utc_timestamp(project):
    root, _ = project
    result = _run(["train", "-c", str(root / "offrec.toml"), "--algo", "bc"])
    assert result.exit_code == 0, result.output
    (run,) = (root / "runs").iterdir()
    assert len(run.name) == 16 and run.name[8] == "T" and run.name.endswith("Z")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--algo", "ppo"], "--algo 'ppo': unknown algorithm; choose from dqn"),
        (["--run-id", "../up"], "--run-id '../up': use letters"),
        (["--warehouse", "nowhere.duckdb"], "warehouse nowhere.duckdb does not exist"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(project, args, message):
    root, _ = project
    result = _run(["train", "-c", str(root / "offrec.toml"), *args])
    assert result.exit_code == 2
    assert message in result.output


def test_bad_config_exits_2(project):
    root, _ = project
    (root / "bad.toml").write_text("[train.cql]\nalpah = 1.0\n")
    result = _run(["train", "-c", str(root / "bad.toml")])
    assert result.exit_code == 2
    assert "[train.cql] alpah: unknown field of d3rlpy DiscreteCQLConfig" in result.output


def test_train_sac_from_the_cli_with_its_config_table(project):
    root, _ = project
    config = root / "offrec.toml"
    config.write_text(config.read_text() + "\n[train.sac]\nconservative_weight = 0.25\n")
    result = _run(["train", "-c", str(config), "--run-id", "r2", "--algo", "sac"])
    assert result.exit_code == 0, result.output
    table = result.output.splitlines()
    assert any(line.startswith("sac ") and line.split()[1] == "40" for line in table)
    model = load_model(root / "runs" / "r2", "sac")
    assert model.kind == "sac" and model.algo.config.conservative_weight == 0.25
    assert model.policy().name == "sac"
