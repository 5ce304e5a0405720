"""Saved models: files, exact round trip, compatibility checks and refusal to load strangers."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from offline_rl.artifacts import MANIFEST, list_models, load_model
from offline_rl.errors import TrainError
from sql.dataset import ActionSpace, FeatureSpec

FILES = {
    "model.pt",
    "config.json",
    "feature_spec.json",
    "actions.json",
    "dataset.json",
    "metrics.json",
    "metrics.jsonl",
    MANIFEST,
}


def test_each_model_directory_holds_everything(trained):
    run_dir, models = trained
    for name in models:
        d = run_dir / "models" / name
        assert {p.name for p in d.iterdir()} == FILES
        config = json.loads((d / "config.json").read_text())
        assert config["algorithm"] == name and config["train"]["n_steps"] == 600
        assert config["input"] == {"scale_index_features": True, "index_divisor": 4}
        assert config["d3rlpy"]["action_size"] == 4
        assert config["d3rlpy"]["observation_shape"] == [2]
        assert json.loads((d / "dataset.json").read_text())["version"] == "mdp-v1"
        actions = json.loads((d / "actions.json").read_text())
        assert actions["top_items"] == ["item0", "item1", "item2"] and actions["n_actions"] == 4
    cql = json.loads((run_dir / "models" / "cql" / "config.json").read_text())["d3rlpy"]
    assert cql["config"]["params"]["alpha"] == 0.1
    assert cql["config"]["params"]["reward_scaler"] == {
        "type": "multiply",
        "params": {"multiplier": 0.1},
    }


def test_list_models(trained):
    run_dir, models = trained
    infos = list_models(run_dir)
    assert [i.name for i in infos] == sorted(models)
    by_name = {i.name: i for i in infos}
    assert by_name["bcq"].kind == "bcq" and by_name["bc"].kind == "bc"
    assert by_name["dqn"].n_updates == 600 and by_name["dqn"].dataset_version == "mdp-v1"
    assert by_name["dqn"].final_metrics["step"] == 600
    assert list_models(run_dir / "nowhere") == []


def test_round_trip_gives_identical_probabilities(trained, mdp):
    run_dir, models = trained
    train, _, spec, actions = mdp
    states = train.states[:200]
    for name, model in models.items():
        loaded = load_model(run_dir, name, expected_spec=spec, expected_actions=actions)
        assert loaded.algorithm == name and loaded.n_updates == model.n_updates
        assert loaded.metrics == json.loads(json.dumps(model.metrics))
        heads = ["greedy", "epsilon_greedy", "softmax"] if model.has_q else ["greedy"]
        for head in heads:
            np.testing.assert_array_equal(
                loaded.policy(head).action_probs(states), model.policy(head).action_probs(states)
            )
        if model.has_q:
            np.testing.assert_array_equal(loaded.q_values(states), model.q_values(states))


def test_models_can_be_moved_with_their_run(trained, tmp_path):
    run_dir, models = trained
    moved = tmp_path / "elsewhere"
    shutil.copytree(run_dir, moved)
    loaded = load_model(moved, "cql")
    states = np.array([[0, 0], [1, 1]], dtype=np.float32)
    np.testing.assert_array_equal(loaded.q_values(states), models["cql"].q_values(states))


def test_incompatible_data_is_refused_with_the_difference(trained, mdp):
    run_dir, _ = trained
    _, _, spec, actions = mdp
    shifted = dataclasses.replace(spec, mean=spec.mean + 1.0)
    renamed = FeatureSpec(
        names=("a", "b"),
        kinds=spec.kinds,
        mean=spec.mean,
        std=spec.std,
        n_actions=4,
        last_k=3,
        item_encoding="index",
    )
    cases = [
        (dict(expected_spec=shifted), "feature_spec: normalisation statistics differ"),
        (dict(expected_spec=renamed), "feature_spec: feature names differ"),
        (
            dict(expected_actions=ActionSpace(("item1", "item0", "item2"), actions.other_items)),
            "actions: action 0 maps to item 'item0' in the model but 'item1' in the data",
        ),
        (
            dict(expected_actions=ActionSpace(("item0", "item1"))),
            r"actions: n_actions differs \(4 saved vs 3\)",
        ),
        (
            dict(expected_actions=ActionSpace(actions.top_items, ("item3",))),
            r"actions: the other bucket differs \(2 vs 1 items\)",
        ),
    ]
    for kwargs, message in cases:
        with pytest.raises(TrainError, match=message) as info:
            load_model(run_dir, "dqn", **kwargs)
        assert "'mdp-v1'" in str(info.value)


def test_only_intact_offrec_model_directories_load(trained, tmp_path):
    run_dir, _ = trained
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "models" / "dqn" / "model.pt").write_bytes(
        (copy / "models" / "dqn" / "model.pt").read_bytes() + b"\0"
    )
    (copy / "models" / "cql" / MANIFEST).unlink()
    stranger = copy / "models" / "stranger"
    stranger.mkdir()
    (stranger / "model.pt").write_bytes(b"not ours")
    manifest = json.loads((copy / "models" / "bc" / MANIFEST).read_text())
    manifest["format"] = "something-else"
    (copy / "models" / "bc" / MANIFEST).write_text(json.dumps(manifest))
    cases = [
        ("dqn", "checksum differs from the one recorded"),
        ("cql", "not an offrec model directory"),
        ("stranger", "not an offrec model directory"),
        ("bc", "not an offrec model manifest"),
        ("../run", "model name '../run' is not valid"),
        (
            "missing",
            r"no model named 'missing' \(models in this run: bcq, double_dqn, dqn, sac\)",
        ),
    ]
    for name, message in cases:
        with pytest.raises(TrainError, match=message):
            load_model(copy, name)
    with pytest.raises(TrainError, match="run directory .* does not exist"):
        load_model(tmp_path / "absent", "dqn")
    assert [i.name for i in list_models(copy)] == ["bcq", "double_dqn", "dqn", "sac"]


def test_fitted_d3rlpy_scalers_are_used_saved_and_restored(mdp, tiny, tmp_path):
    from offline_rl.train import train_algorithms

    train, validation, spec, actions = mdp
    cfg = tiny.small_config(
        algorithms=("cql",),
        n_steps=40,
        n_steps_per_epoch=40,
        cql={"observation_scaler": "standard", "reward_scaler": "standard"},
    )
    model = train_algorithms(train, validation, spec, actions, cfg, tmp_path / "run")["cql"]
    obs_scaler = model.algo.config.observation_scaler
    # fitted by d3rlpy on its transitions of the normalised inputs: mean ~0, std ~1
    assert obs_scaler.built and np.abs(obs_scaler.mean).max() < 0.2
    assert np.abs(obs_scaler.std - 1.0).max() < 0.1
    rew_scaler = model.algo.config.reward_scaler
    # d3rlpy fits on its transitions: timeout-final rows (no next state) are not among them
    td_rewards = train.rewards[~train.timeouts]
    assert rew_scaler.built and rew_scaler.mean == pytest.approx(td_rewards.mean(), rel=1e-5)
    assert model.q_function.units == "scaled (standard reward scaler)"
    loaded = load_model(tmp_path / "run", "cql")
    assert loaded.algo.config.reward_scaler.mean == rew_scaler.mean
    states = train.states[:50]
    np.testing.assert_array_equal(loaded.q_values(states), model.q_values(states))
