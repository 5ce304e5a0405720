"""train_algorithms: steps actually taken, seeding, logs, progress, bad inputs."""

from __future__ import annotations

import dataclasses
import io
import json
import math

import numpy as np
import pytest
import torch

from offline_rl.errors import TrainError
from offline_rl.progress import EpochLog, ProgressBar
from offline_rl.train import create_learner, train_algorithms


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.algo.impl.q_function.state_dict().items()}


def test_every_model_trained_exactly_n_steps_and_logged_each_epoch(trained, tiny):
    run_dir, models = trained
    cfg = tiny.small_config()
    assert list(models) == list(cfg.algorithms)
    for name, model in models.items():
        assert model.n_updates == cfg.n_steps == model.algo.grad_step
        assert [m["epoch"] for m in model.metrics] == [1, 2]
        assert model.metrics[-1]["step"] == cfg.n_steps
        lines = (run_dir / "models" / name / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["step"] for line in lines] == [300, 600]
        final = model.final_metrics
        assert final["split"] == "validation"
        assert 0.0 <= final["agreement"] <= 1.0
        assert 0.25 <= final["top_action_share"] <= 1.0
        assert math.isfinite(final["ips"]) and final["ips_behaviour"] == "logged"
        if model.has_q:
            assert final["td_error"] >= 0.0 and math.isfinite(final["initial_value"])
        else:
            assert final["td_error"] is None and final["initial_value"] is None


def test_training_changes_the_initial_weights(trained, tiny):
    _, models = trained
    cfg = tiny.small_config()
    for name in ("dqn", "cql"):
        fresh = create_learner(name, cfg, 2, tiny.n_actions, "cpu:0")
        before = fresh.impl.q_function.state_dict()
        after = models[name].algo.impl.q_function.state_dict()
        assert before.keys() == after.keys()
        moved = [k for k in before if not torch.equal(before[k], after[k])]
        assert len(moved) == len(before), f"{name}: parameters that never moved: {moved}"


def test_fewer_steps_than_one_epoch_still_trains(mdp, tiny, tmp_path):
    # d3rlpy's fit(n_steps < n_steps_per_epoch) trains zero steps; we train exactly n_steps
    train, validation, spec, actions = mdp
    cfg = tiny.small_config(algorithms=("dqn",), n_steps=30, n_steps_per_epoch=10000)
    model = train_algorithms(train, validation, spec, actions, cfg, tmp_path / "run")["dqn"]
    assert model.n_updates == 30
    assert len(model.metrics) == 1 and model.metrics[0]["step"] == 30
    fresh = create_learner("dqn", cfg, spec.dim, actions.n_actions, "cpu:0")
    w0 = fresh.impl.q_function.state_dict()
    w1 = model.algo.impl.q_function.state_dict()
    assert any(not torch.equal(w0[k], w1[k]) for k in w0)


def test_last_epoch_may_be_shorter(mdp, tiny, tmp_path):
    train, validation, spec, actions = mdp
    cfg = tiny.small_config(algorithms=("bc",), n_steps=25, n_steps_per_epoch=10)
    model = train_algorithms(train, validation, spec, actions, cfg, tmp_path / "run")["bc"]
    assert [m["step"] for m in model.metrics] == [10, 20, 25]


def test_same_seed_same_weights_and_independent_of_other_algorithms(trained, mdp, tiny, tmp_path):
    train, validation, spec, actions = mdp
    _, models = trained
    alone = train_algorithms(
        train, validation, spec, actions, tiny.small_config(algorithms=("cql",)), tmp_path / "a"
    )["cql"]
    a, b = _weights(alone), _weights(models["cql"])
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = train_algorithms(
        train,
        validation,
        spec,
        actions,
        tiny.small_config(algorithms=("cql",), seed=7, n_steps=200),
        tmp_path / "b",
    )["cql"]
    c = _weights(other)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_nothing_written_outside_the_run_directory(mdp, tiny, tmp_path, monkeypatch):
    train, validation, spec, actions = mdp
    monkeypatch.chdir(tmp_path)
    cfg = tiny.small_config(algorithms=("dqn", "bc"), n_steps=20, n_steps_per_epoch=10)
    train_algorithms(train, validation, spec, actions, cfg, tmp_path / "runs" / "r1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]
    assert not (tmp_path / "d3rlpy_logs").exists()
    assert sorted(p.name for p in (tmp_path / "runs" / "r1" / "models").iterdir()) == ["bc", "dqn"]


def test_without_validation_rows_metrics_use_the_train_split(mdp, tiny, tmp_path):
    train, _, spec, actions = mdp
    cfg = tiny.small_config(algorithms=("dqn",), n_steps=20, n_steps_per_epoch=20)
    model = train_algorithms(train, None, spec, actions, cfg, tmp_path / "run")["dqn"]
    assert model.final_metrics["split"] == "train"
    assert model.dataset_info["validation_split"] == "train"


def test_timeout_rows_are_counted_not_used_for_td(trained, mdp):
    train, _, _, _ = mdp
    _, models = trained
    info = models["dqn"].dataset_info
    assert info["timeout_rows_without_next_state"] == int(train.timeouts.sum()) > 0
    assert info["td_rows"] == len(train) - int(train.timeouts.sum())
    assert info["train_rows"] == len(train)


class _Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def start(self, name, n_steps):
        self.events.append(("start", name, n_steps))

    def advance(self, name, steps_done):
        self.events.append(("advance", name, steps_done))

    def epoch(self, name, metrics):
        self.events.append(("epoch", name, metrics["step"]))

    def finish(self, name):
        self.events.append(("finish", name))


def test_progress_receives_start_advance_epoch_finish(mdp, tiny, tmp_path):
    train, validation, spec, actions = mdp
    rec = _Recorder()
    cfg = tiny.small_config(algorithms=("bc",), n_steps=120, n_steps_per_epoch=100)
    train_algorithms(train, validation, spec, actions, cfg, tmp_path / "run", progress=rec)
    assert rec.events[0] == ("start", "bc", 120)
    assert ("advance", "bc", 50) in rec.events and ("advance", "bc", 100) in rec.events
    assert [e for e in rec.events if e[0] == "epoch"] == [
        ("epoch", "bc", 100),
        ("epoch", "bc", 120),
    ]
    assert rec.events[-1] == ("finish", "bc")


def test_progress_bar_and_epoch_log_render():
    out = io.StringIO()
    bar = ProgressBar(out, width=10, min_interval_s=0.0)
    bar.start("cql", 100)
    bar.advance("cql", 50)
    bar.epoch("cql", {"step": 100, "td_error": 0.5, "ips": 1.25})
    bar.finish("cql")
    text = out.getvalue()
    assert "\r" in text and "[#####-----] 50/100" in text and "td_error=0.5" in text
    assert "[##########] 100/100" in text and text.endswith("\n")
    log = io.StringIO()
    EpochLog(log).epoch("dqn", {"epoch": 2, "step": 10, "agreement": 0.25})
    assert log.getvalue() == "dqn epoch 2 step 10: agreement=0.25\n"


def test_divergence_is_reported(mdp, tiny, tmp_path):
    train, validation, spec, actions = mdp
    cfg = tiny.small_config(
        algorithms=("dqn",), n_steps=10, n_steps_per_epoch=10, reward_scale=1e38
    )
    with pytest.raises(TrainError, match=r"dqn diverged in epoch 1 .*learning_rate"):
        train_algorithms(train, validation, spec, actions, cfg, tmp_path / "run")


def _replace(tr, **kw):
    return dataclasses.replace(tr, **kw)


def _bad_cases(train, spec):
    from sql.dataset import ActionSpace, FeatureSpec

    n = len(train)
    flip = train.terminals.copy()
    flip[0] = True  # step 0 of a 4-step episode
    nan_states = train.states.copy()
    nan_states[5, 1] = np.nan
    bad_actions = train.actions.copy()
    bad_actions[7] = 9
    unended = train.terminals.copy() & False
    swapped = train.steps.copy()
    swapped[[1, 2]] = swapped[[2, 1]]
    wide = FeatureSpec(
        names=("a", "b", "c"),
        kinds=("count",) * 3,
        mean=np.zeros(3),
        std=np.ones(3),
        n_actions=4,
        last_k=3,
        item_encoding="index",
    )
    return [
        ("empty", dict(train=train.select(np.zeros(n, bool))), "train split has no transitions"),
        (
            "terminal mid-episode",
            dict(train=_replace(train, terminals=flip)),
            r"row 0 \(episode 'train-0', step 0\) is flagged terminal/timeout but is not",
        ),
        (
            "no end flag",
            dict(train=_replace(train, terminals=unended, timeouts=train.timeouts & False)),
            r"episode 'train-0' ends at row 3 without terminal or timeout",
        ),
        (
            "nan state",
            dict(train=_replace(train, states=nan_states)),
            r"state of row 5 \(episode 'train-1'\) has NaN",
        ),
        (
            "action range",
            dict(train=_replace(train, actions=bad_actions)),
            r"action 9 in row 7 is outside 0..3",
        ),
        (
            "both flags",
            dict(train=_replace(train, timeouts=train.terminals.copy())),
            r"row 3 \(episode 'train-0'\) is both terminal and timeout",
        ),
        (
            "non contiguous",
            dict(
                train=_replace(
                    train,
                    episode_ids=np.concatenate(
                        [
                            train.episode_ids[:2],
                            train.episode_ids[4:6],
                            train.episode_ids[2:4],
                            train.episode_ids[6:],
                        ]
                    ),
                )
            ),
            r"rows of episode 'train-0' are not contiguous",
        ),
        (
            "step order",
            dict(train=_replace(train, steps=swapped)),
            r"episode 'train-0' goes from step 0 to 2 at row 1",
        ),
        ("dims", dict(spec=wide), r"expected states of shape \(2400, 3\)"),
        (
            "actions mismatch",
            dict(actions=ActionSpace(("x",))),
            "feature_spec says 4 actions but the action space has 2",
        ),
        ("config", dict(cfg={"n_steps": 1}), "cfg must be a TrainConfig"),
    ]


def test_bad_inputs_raise_train_errors(mdp, tiny, tmp_path):
    train, validation, spec, actions = mdp
    for label, change, message in _bad_cases(train, spec):
        args = dict(
            train=train,
            validation=validation,
            spec=spec,
            actions=actions,
            cfg=tiny.small_config(n_steps=1),
            run_dir=tmp_path / label,
        )
        args.update(change)
        with pytest.raises(TrainError, match=message):
            train_algorithms(**args)
            pytest.fail(f"case {label!r} did not raise")


def test_cuda_requested_without_cuda(mdp, tiny, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    train, validation, spec, actions = mdp
    with pytest.raises(TrainError, match=r"device = 'cuda' but torch sees no CUDA device"):
        train_algorithms(
            train, validation, spec, actions, tiny.small_config(device="cuda"), tmp_path / "run"
        )


def test_validation_split_is_checked_too(mdp, tiny, tmp_path):
    train, validation, spec, actions = mdp
    bad = dataclasses.replace(validation, actions=validation.actions + 10)
    with pytest.raises(TrainError, match=r"^validation: action 1\d in row 0"):
        train_algorithms(train, bad, spec, actions, tiny.small_config(n_steps=1), tmp_path)


def test_organic_data_scores_ips_against_train_action_frequencies(mdp, tiny, tmp_path):
    train, validation, spec, actions = mdp
    organic = [
        dataclasses.replace(t, propensities=np.full(len(t), np.nan)) for t in (train, validation)
    ]
    cfg = tiny.small_config(algorithms=("cql",), n_steps=20, n_steps_per_epoch=20)
    model = train_algorithms(*organic, spec, actions, cfg, tmp_path / "run")["cql"]
    final = model.final_metrics
    assert final["ips_behaviour"] == "marginal" and math.isfinite(final["ips"])
