"""Reading a run directory: valid files load into dataclasses; every bad input names the file,
the key or row, and the command that writes it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from reports.errors import ReportError
from reports.model import (
    DataSummary,
    EvaluationSummary,
    ReportInput,
    _Doc,
    load_models,
    write_json,
)


def _edit_json(path: Path, fn: Callable[[Any], Any]) -> None:
    data = json.loads(path.read_text())
    out = fn(data)  # edits in place; a returned list replaces the whole document
    path.write_text(json.dumps(out if isinstance(out, list) else data))


def _edit_parquet(path: Path, fn: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    fn(pd.read_parquet(path)).to_parquet(path, index=False)


def test_valid_run_loads(make_run: Callable[..., Path]) -> None:
    inp = ReportInput.load(make_run())
    assert inp.run_id == "20240501T030000Z"
    assert inp.evaluated and inp.simulated and inp.missing == ()
    assert inp.manifest.status == "ok" and inp.manifest.stages["train"].seconds == 1843.2
    assert inp.manifest.timings_s["build"] == 31.9
    assert inp.data is not None and inp.data.events.duplicate == 1877
    assert inp.summary is not None and inp.summary.verdict.ship
    assert inp.summary.behaviour_model is not None
    assert len(inp.summary.behaviour_model.calibration) == 9
    assert {m.name for m in inp.models} == {"cql", "dqn", "bcq"}
    assert inp.models[0].epochs[3].ips is not None and inp.models[0].epochs[0].ips is None
    # 5 policies x (3 estimators x 5 objectives + FQE on reward)
    assert len(inp.results) == 80
    assert {r.family for r in inp.results} == {"per_decision", "per_session"}
    assert inp.summary.behaviour_model.baseline_log_loss == 3.64
    assert all(r.ground_truth is not None for r in inp.results)


def test_gate_failed_run_loads_without_evaluation(make_run: Callable[..., Path]) -> None:
    inp = ReportInput.load(make_run(gate_failed=True, status="gate_failed"))
    assert not inp.evaluated and inp.data is None and inp.results == ()
    assert inp.manifest.gates == ("build: at least 1000 decisions required, got 12",)
    assert any("the evaluate stage is skipped" in m for m in inp.missing)


def test_not_simulated_run(make_run: Callable[..., Path]) -> None:
    inp = ReportInput.load(make_run(simulated=False, propensity_source="logged"))
    assert not inp.simulated
    assert inp.summary is not None and inp.summary.behaviour_model is None


def _set(*keys: str, value: Any) -> Callable[[Any], None]:
    def fn(d: Any) -> None:
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value

    return fn


def _drop(*keys: str) -> Callable[[Any], None]:
    def fn(d: Any) -> None:
        for k in keys[:-1]:
            d = d[k]
        del d[keys[-1]]

    return fn


M, D, S = "manifest.json", "data_summary.json", "evaluation/summary.json"
JSON_CASES = [
    (M, _set("run_id", value="other"), r"key 'run_id' = 'other' but the directory is named"),
    (M, _set("status", value="weird"), r"key 'status' = 'weird': must be one of 'running'"),
    (M, _set("created_at", value="yesterday"), r"key 'created_at' = 'yesterday': must be an ISO"),
    (M, _drop("created_at"), r"manifest.json: key 'created_at': missing \(written by `offrec"),
    (M, _set("stages", "build", "status", value="ok"), r"key 'stages.build.status' = 'ok'"),
    (M, _set("stages", "train", "seconds", value=-3), r"key 'stages.train.seconds' = -3"),
    (M, _set("simulated", value="yes"), r"key 'simulated': must be true or false"),
    (M, _set("schema_version", value=2), r"schema_version' = 2: this offrec reads schema 1"),
    (D, _drop("events", "loaded"), r"data_summary.json: key 'events.loaded': missing"),
    (D, _set("sessions", value=-1), r"key 'sessions' = -1: must be >= 0"),
    (D, _set("decisions", value=2.5), r"key 'decisions': must be a whole number, got 2.5"),
    (D, _set("date_range", "end", value="2020-01-01"), r"key 'date_range.end' = 2020-01-01T"),
    (D, _set("data_source", value="kafka"), r"key 'data_source' = 'kafka': must be one of"),
    (D, _drop("reward_rates", "click"), r"key 'reward_rates.click': missing"),
    (D, _set("action_coverage", "actions_seen", value=99), r"actions_seen' = 99 exceeds"),
    (D, _set("action_coverage", "other_share", value=1.5), r"other_share' = 1.5: must be betw"),
    (D, lambda d: [d], r"data_summary.json: must be a JSON object, got list"),
    (S, _drop("verdict"), r"summary.json: key 'verdict': missing"),
    (S, _set("verdict", "decision", value="maybe"), r"verdict.decision = 'maybe'"),
    (S, _set("verdict", "checks", value={}), r"verdict.checks: must be a list"),
    (S, _set("behaviour_model", value=None), r"key 'behaviour_model': missing: propensities"),
    (S, _set("behaviour_model", "calibration", value=[]), r"must hold at least one bin"),
    (S, _set("propensity_source", value="guessed"), r"key 'propensity_source' = 'guessed'"),
    (
        S,
        _set("weight_histograms", "cql", "counts", value=[1, 2]),
        r"key 'weight_histograms.cql.bin_edges': must have len\(counts\) \+ 1 entries",
    ),
    (
        S,
        _set("weight_histograms", "cql", "bin_edges", value=list(range(21))[::-1]),
        r"must be strictly increasing",
    ),
    (
        S,
        _set("weight_histograms", "cql", "counts", value=[-1] * 20),
        r"counts': must be a list of non-negative",
    ),
    (S, lambda d: d["top_items"]["cql"][0].update(share=3), r"top_items.cql\[0\].share' = 3"),
    (S, lambda d: d["top_items"]["cql"][0].pop("item_id"), r"top_items.cql\[0\].item_id'"),
    (S, _set("notes", value=[1]), r"key 'notes': must be a list of strings"),
    (S, _set("run_id", value="zzz"), r"key 'run_id' = 'zzz' does not match manifest.json"),
    (S, _set("verdict", "policy", value="ghost"), r"the verdict is about policy 'ghost'"),
]


@pytest.mark.parametrize(
    "name, edit, message", JSON_CASES, ids=[f"{c[0]}:{c[2][:40]}" for c in JSON_CASES]
)
def test_bad_json_files(
    make_run: Callable[..., Path], name: str, edit: Callable[[Any], Any], message: str
) -> None:
    run = make_run()
    _edit_json(run / name, edit)
    with pytest.raises(ReportError, match=message):
        ReportInput.load(run)


P = "evaluation/ope_results.parquet"
PARQUET_CASES = [
    (lambda df: df.drop(columns=["ground_truth"]), r"missing column\(s\) ground_truth"),
    (lambda df: df.iloc[0:0], r"has no rows"),
    (
        lambda df: pd.concat([df, df.iloc[[7]]]),
        r"row 80: \(policy='.*', estimator='.*', objective='.*'\) repeats row 7",
    ),
    (lambda df: df.assign(policy=[None] + list(df.policy[1:])), r"row 0: column 'policy' = null"),
    (lambda df: df.assign(value="high"), r"column 'value' must be numeric"),
    (lambda df: df.assign(run_id="zzz"), r"row 0: run_id 'zzz' does not match"),
]


@pytest.mark.parametrize("edit, message", PARQUET_CASES, ids=[c[1][:30] for c in PARQUET_CASES])
def test_bad_results_table(make_run: Callable[..., Path], edit: Callable, message: str) -> None:
    run = make_run()
    _edit_parquet(run / P, edit)
    with pytest.raises(ReportError, match=rf"ope_results.parquet: {message}"):
        ReportInput.load(run)


MISSING_CASES = [
    (M, r"manifest.json: not found; it is written by `offrec nightly`"),
    (D, r"data_summary.json: not found; it is written by the build stage"),
    (S, r"summary.json: not found; it is written by `offrec evaluate`"),
    (P, r"ope_results.parquet: not found; it is written by `offrec evaluate`"),
]


@pytest.mark.parametrize("name, message", MISSING_CASES)
def test_missing_files(make_run: Callable[..., Path], name: str, message: str) -> None:
    run = make_run()
    (run / name).unlink()
    with pytest.raises(ReportError, match=message):
        ReportInput.load(run)


def test_garbage_files(make_run: Callable[..., Path]) -> None:
    run = make_run()
    (run / M).write_text("{not json")
    with pytest.raises(ReportError, match=r"manifest.json: not valid JSON \(line 1, column 2"):
        ReportInput.load(run)
    run = make_run(run_id="r2")
    (run / P).write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ReportError, match=r"not a readable Parquet file"):
        ReportInput.load(run)
    with pytest.raises(ReportError, match=r"nowhere: run directory not found"):
        ReportInput.load(run.parent / "nowhere")


METRICS_CASES = [
    ({"n_updates": 3}, r"must be a JSON list of per-epoch objects"),
    ({"epochs": {"epoch": 1}}, r"must be a JSON list of per-epoch objects"),
    ([{"step": 1}], r"key '\[0\].epoch': missing"),
    ([{"epoch": 1, "step": 1, "loss": "low"}], r"key '\[0\].loss': must be a finite number"),
    ([{"epoch": -1, "step": 1}], r"key '\[0\].epoch' = -1: must be >= 0"),
]


@pytest.mark.parametrize("data, message", METRICS_CASES)
def test_bad_metrics(tmp_path: Path, data: Any, message: str) -> None:
    (tmp_path / "models" / "cql").mkdir(parents=True)
    (tmp_path / "models" / "cql" / "metrics.json").write_text(json.dumps(data))
    with pytest.raises(ReportError, match=rf"models/cql/metrics.json.*{message}"):
        load_models(tmp_path)


def test_offline_rl_metrics_format_is_read(tmp_path: Path) -> None:
    """offline_rl writes {"n_updates", "epochs": [...]} with losses as loss_<name>."""
    (tmp_path / "models" / "cql").mkdir(parents=True)
    epochs = [
        {
            "epoch": 1,
            "step": 500,
            "loss_loss": 2.5,
            "loss_td_loss": 2.0,
            "td_error": 1.5,
            "initial_value": 3.0,
            "agreement": 0.2,
            "ips": 0.7,
            "split": "validation",
        }
    ]
    (tmp_path / "models" / "cql" / "metrics.json").write_text(
        json.dumps({"n_updates": 500, "epochs": epochs})
    )
    (curves,) = load_models(tmp_path)
    assert curves.name == "cql"
    assert curves.epochs[0].loss == 2.5 and curves.epochs[0].td_error == 1.5


def test_schema_classes_round_trip(make_run: Callable[..., Path], tmp_path: Path) -> None:
    """What producers write with ``to_dict()`` is exactly what the report reads back."""
    inp = ReportInput.load(make_run())
    assert inp.data is not None and inp.summary is not None
    write_json(tmp_path / "d.json", inp.data.to_dict())
    write_json(tmp_path / "s.json", inp.summary.to_dict())
    d = json.loads((tmp_path / "d.json").read_text())
    s = json.loads((tmp_path / "s.json").read_text())
    assert DataSummary._read(_Doc(d, file=tmp_path, producer="x")) == inp.data
    assert EvaluationSummary._read(_Doc(s, file=tmp_path, producer="x")) == inp.summary


def test_write_json_turns_nan_into_null(tmp_path: Path) -> None:
    path = write_json(tmp_path / "a" / "x.json", {"v": float("nan"), "w": [1.0, float("inf")]})
    assert json.loads(path.read_text()) == {"v": None, "w": [1.0, None]}
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]
    assert path.stat().st_mode & 0o777 == 0o644  # readable like the report, not 0600


BUILD_SUMMARY = {
    "version": "v1",
    "mode": "logged",
    "window": {"start_date": None, "end_date": None},
    "episodes": {"total": 120, "train": 80, "validation": 20, "test": 20},
    "decisions": {"total": 900, "train": 600, "validation": 150, "test": 150, "dropped_by_cap": 4},
    "users": 40,
    "actions": {
        "n_actions": 11,
        "named": 10,
        "top_n": 10,
        "other_items": 35,
        "coverage": {"train": 0.8, "all": 0.75},
    },
    "reward": {
        "weights": {},
        "mean": 0.9,
        "components": {
            "r_click": {"mean": 0.2, "share_nonzero": 0.2},
            "r_cart": {"mean": 0.05, "share_nonzero": 0.05},
            "r_purchase": {"mean": 0.01, "share_nonzero": 0.01},
            "r_revenue": {"mean": 0.4, "share_nonzero": 0.01},
        },
    },
}


def test_data_summary_from_the_build_summary() -> None:
    from datetime import UTC, datetime

    from reports.model import data_summary_from_build

    start, end = datetime(2024, 4, 1, tzinfo=UTC), datetime(2024, 5, 1, tzinfo=UTC)
    ds = data_summary_from_build(
        BUILD_SUMMARY,
        data_source="simulator",
        date_range=(start, end),
        events_loaded=5000,
        events_rejected=3,
        events_duplicate=7,
    )
    assert ds.dataset_version == "v1" and ds.sessions == 120 and ds.decisions == 900
    assert ds.splits == {"train": 600, "validation": 150, "test": 150}
    assert ds.action_coverage.n_items == 45 and ds.action_coverage.actions_seen is None
    assert ds.action_coverage.other_share == pytest.approx(0.25)
    assert ds.reward_rates["click"] == 0.2 and ds.reward_rates["reward"] == 0.9
    assert ds.events.duplicate == 7 and ds.date_range.end == end
    broken = {k: v for k, v in BUILD_SUMMARY.items() if k != "actions"}
    with pytest.raises(ReportError, match="build summary: missing or malformed key 'actions'"):
        data_summary_from_build(
            broken,
            data_source="logs",
            date_range=(start, end),
            events_loaded=1,
            events_rejected=0,
            events_duplicate=0,
        )
