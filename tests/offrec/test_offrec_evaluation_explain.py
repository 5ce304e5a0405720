"""offrec.evaluation stores what changes if a policy ships (explain.json) and the new vs
returning split (segments.parquet, ope_segment_results) — on a real small build whose raw
events carry an item category in events.extra."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from offrec.cli import app
from offrec.config import load_config
from offrec.evaluation import evaluate_run, load_segment_results
from offrec.simulator import SimulatorConfig, simulate_events
from reports.model import SEGMENT_COLUMNS, load_explanation
from sql.build import build_dataset
from sql.dataset import load_action_space, load_feature_spec, load_transitions
from sql.summary import cold_start_summary, item_categories

CONFIG = """\
[build]
top_n = 12
lookback_days = 2

[evaluate]
n_bootstrap = 50
fqe_enabled = false
estimators = ["ipw", "snipw", "dr"]
sequential_estimators = ["pdis"]
baselines = ["uniform", "most_popular"]

[evaluate.reward_model]
kind = "ridge"
"""


def category_of(item_id: str) -> str:
    return f"cat-{int(item_id[-1]) % 3}"


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("explain")
    (root / "offrec.toml").write_text(CONFIG)
    cfg = load_config(root / "offrec.toml")
    logs = simulate_events(SimulatorConfig(seed=4, n_sessions=900, n_items=20))
    con = duckdb.connect(str(cfg.paths.warehouse))
    con.register("raw_events", logs.events)
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        "CREATE TABLE events AS SELECT event_id, ts::TIMESTAMP AS ts, user_id, session_id, "
        "event_type, item_id, position, propensity, price, request_id, "
        "json_object('category', 'cat-' || (right(item_id, 1)::INTEGER % 3)) AS extra, "
        "'sim' AS source_file, row_number() OVER () AS source_row, now() AS ingested_at "
        "FROM raw_events"
    )
    build_dataset(con, cfg.build, datasets_dir=cfg.paths.datasets)
    con.close()
    run_dir = cfg.paths.runs / "r1"
    run_dir.mkdir(parents=True)
    evaluate_run(cfg, run_dir)
    return run_dir


def test_explain_json_per_policy(evaluated: Path) -> None:
    wh = evaluated.parents[1] / "warehouse.duckdb"
    actions = load_action_space(wh)
    test = load_transitions(wh, split="test")
    train = load_transitions(wh, split="train")
    doc = json.loads((evaluated / "evaluation" / "explain.json").read_text())
    assert set(doc["policies"]) == {"uniform", "most_popular"}
    assert doc["n_decisions"] == len(test) and doc["n_actions"] == actions.n_actions
    assert doc["categories"]["available"] is True
    assert doc["categories"]["n_items"] == len(actions.top_items)
    uni = doc["policies"]["uniform"]
    # uniform over A actions: entropy ln A, Gini 0, every action 1/A after
    assert uni["concentration"]["normalised_entropy"] == pytest.approx(1.0)
    assert uni["concentration"]["gini"] == pytest.approx(0.0, abs=1e-12)
    assert uni["disagreement"] == pytest.approx(1 - 1 / actions.n_actions)
    logged = np.bincount(test.actions, minlength=actions.n_actions) / len(test)
    labels = [*actions.top_items, "(other items)"]
    for m in uni["gains"] + uni["losses"]:
        assert m["after"] == pytest.approx(1 / actions.n_actions)
        assert m["before"] == pytest.approx(logged[labels.index(m["label"])])
    pop = doc["policies"]["most_popular"]
    top_train = labels[int(np.argmax(np.bincount(train.actions, minlength=actions.n_actions)))]
    assert pop["gains"][0]["label"] == top_train
    assert pop["concentration"]["top_k_share"] >= uni["concentration"]["top_k_share"]
    cats = {m["label"] for m in pop["category_gains"] + pop["category_losses"]}
    assert cats and cats <= {"cat-0", "cat-1", "cat-2", "(other items)"}
    ex = pop["examples"]
    assert 1 <= len(ex) <= 6 and all(e["history"] and len(e["policy_top"]) == 3 for e in ex)
    assert all(len(e["behaviour_top"]) == 3 for e in ex)  # logged mode: a model for examples
    assert any(not e["agree"] for e in ex)
    for e in ex:
        assert e["logged"] == labels[int(test.actions[e["row"]])]
    # the report's reader accepts exactly what the evaluation writes
    parsed = load_explanation(evaluated)
    assert parsed is not None and parsed.policies["uniform"].concentration.gini < 1e-9


def test_item_categories_and_cold_start_queries(evaluated: Path) -> None:
    con = duckdb.connect(str(evaluated.parents[1] / "warehouse.duckdb"), read_only=True)
    try:
        version = con.execute("SELECT max(dataset_version) FROM dataset_versions").fetchone()[0]
        cats = item_categories(con, version)
        cold = cold_start_summary(con, version)
        expect = con.execute(
            """
            WITH t AS (SELECT * FROM transitions WHERE dataset_version = $v)
            SELECT count(DISTINCT user_id) FILTER (WHERE user_id NOT IN
                       (SELECT user_id FROM t WHERE split = 'train')),
                   count(DISTINCT item_id) FILTER (WHERE item_id NOT IN
                       (SELECT item_id FROM t WHERE split = 'train'))
            FROM t WHERE split = 'test'
            """,
            {"v": version},
        ).fetchone()
    finally:
        con.close()
    assert cats and all(cats[i] == category_of(i) for i in cats)
    test = load_transitions(evaluated.parents[1] / "warehouse.duckdb", split="test")
    other = len(load_action_space(evaluated.parents[1] / "warehouse.duckdb").top_items)
    assert cold["test_decisions"] == len(test)
    assert cold["other_share"] == pytest.approx(np.mean(test.actions == other), abs=1e-6)
    assert (cold["new_users"], cold["new_items"]) == expect
    assert cold["test_episodes"] == test.n_episodes


def test_segments_stored_with_behaviour_baselines(evaluated: Path) -> None:
    wh = evaluated.parents[1] / "warehouse.duckdb"
    test = load_transitions(wh, split="test")
    spec = load_feature_spec(wh)
    seg = load_segment_results(evaluated)
    assert list(seg.columns) == list(SEGMENT_COLUMNS)
    summary = json.loads((evaluated / "evaluation" / "summary.json").read_text())
    counts = {c["segment"]: c for c in summary["segments"]["counts"]}
    assert set(counts) == {"new_user", "returning_user"}
    assert sum(c["n_episodes"] for c in counts.values()) == test.n_episodes
    new = test.states[:, spec.offset("hist_sessions")] == 0
    assert counts["new_user"]["n_decisions"] == int(new.sum())
    evaluated_segments = {k for k, c in counts.items() if c["evaluated"]}
    assert set(seg["segment"]) == evaluated_segments and evaluated_segments
    for label in evaluated_segments:
        mask = new if label == "new_user" else ~new
        rows = seg[(seg["segment"] == label) & (seg["family"] == "per_decision")]
        assert set(rows["estimator"]) == {"ipw", "snipw", "dr"}
        assert set(rows["policy"]) == {"uniform", "most_popular"}
        assert np.allclose(rows["baseline_value"], test.rewards[mask].mean())
        assert (rows["n_decisions"] == mask.sum()).all()
        assert (rows["low"] <= rows["value"]).all() and (rows["value"] <= rows["high"]).all()
        assert set(seg[seg["segment"] == label]["family"]) == {"per_decision", "per_session"}
    con = duckdb.connect(str(wh), read_only=True)
    try:
        stored = con.execute("SELECT * FROM ope_segment_results WHERE run_id = 'r1'").df()
    finally:
        con.close()
    pd.testing.assert_frame_equal(
        stored.sort_values(["policy", "segment", "estimator"], ignore_index=True)[
            ["policy", "segment", "estimator", "value"]
        ],
        seg.sort_values(["policy", "segment", "estimator"], ignore_index=True)[
            ["policy", "segment", "estimator", "value"]
        ],
    )


def test_cli_rerun_prints_changes_and_replaces_the_runs_segment_rows(evaluated: Path) -> None:
    root = evaluated.parents[1]
    out = CliRunner().invoke(app, ["evaluate", "-c", str(root / "offrec.toml"), "--run", "r1"])
    assert out.exit_code == 0, out.output
    doc = json.loads((evaluated / "evaluation" / "explain.json").read_text())
    for name, p in doc["policies"].items():
        line = next(x for x in out.output.splitlines() if x.startswith(f"{name}: recommends other"))
        assert f"first choice on {100 * p['disagreement']:.0f}% of decisions" in line
        assert f"gains most: {p['gains'][0]['label']}" in line
        assert "dr lift new_user " in line and ", returning_user " in line
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    try:
        n = con.execute("SELECT count(*) FROM ope_segment_results WHERE run_id = 'r1'").fetchone()
    finally:
        con.close()
    assert n[0] == len(load_segment_results(evaluated))


def test_organic_mode_uses_the_evaluations_behaviour_model(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    root = tmp_path_factory.mktemp("organic")
    (root / "offrec.toml").write_text(CONFIG.replace("[build]\n", '[build]\nmode = "organic"\n'))
    cfg = load_config(root / "offrec.toml")
    logs = simulate_events(SimulatorConfig(seed=5, n_sessions=400, n_items=15))
    con = duckdb.connect(str(cfg.paths.warehouse))
    con.register("raw_events", logs.events)
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        "CREATE TABLE events AS SELECT event_id, ts::TIMESTAMP AS ts, user_id, session_id, "
        "event_type, item_id, position, propensity, price, request_id, NULL::JSON AS extra, "
        "'sim' AS source_file, row_number() OVER () AS source_row, now() AS ingested_at "
        "FROM raw_events WHERE event_type <> 'impression'"
    )
    build_dataset(con, cfg.build, datasets_dir=cfg.paths.datasets)
    con.close()
    run_dir = cfg.paths.runs / "o1"
    run_dir.mkdir(parents=True)
    result = evaluate_run(cfg, run_dir)
    doc = result.explanation
    assert doc["behaviour_top_source"].startswith("the evaluation's behaviour model")
    assert doc["categories"]["available"] is False
    ex = doc["policies"]["most_popular"]["examples"]
    assert ex and all(" interaction of the session" in e["history"] for e in ex)
    assert not any("was just shown" in e["history"] for e in ex)
    seg = result.segments
    assert seg is not None and len(seg) and set(seg["propensity_source"]) == {"estimated"}
    assert set(seg["estimator"]) == {"ipw", "snipw", "dr", "pdis"}


def test_a_run_without_segment_rows_clears_its_earlier_ones(
    evaluated: Path, tmp_path: Path
) -> None:
    from offrec.evaluation import _segment_table, _store_table

    wh = tmp_path / "w.duckdb"
    empty = _segment_table([], "r1", "logged")
    assert list(empty.columns) == list(SEGMENT_COLUMNS) and empty.empty
    _store_table(wh, "r1", empty, name="ope_segment_results")  # nothing to type a table from
    con = duckdb.connect(str(wh))
    assert con.execute("SELECT count(*) FROM information_schema.tables").fetchone()[0] == 0
    con.close()
    rows = load_segment_results(evaluated)
    _store_table(wh, "r1", rows, name="ope_segment_results")
    _store_table(wh, "r2", rows.assign(run_id="r2"), name="ope_segment_results")
    _store_table(wh, "r1", empty, name="ope_segment_results")
    con = duckdb.connect(str(wh))
    try:
        by_run = dict(
            con.execute(
                "SELECT run_id, count(*) FROM ope_segment_results GROUP BY run_id"
            ).fetchall()
        )
        types = dict(
            con.execute("SELECT column_name, data_type FROM information_schema.columns").fetchall()
        )
    finally:
        con.close()
    assert by_run == {"r2": len(rows)}
    assert types["segment"] == "VARCHAR" and types["value"] == "DOUBLE"
