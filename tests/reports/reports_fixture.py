"""A realistic run directory for report tests: synthetic numbers, several policies and
estimators, hostile item ids. Files are written as plain dicts exactly as docs/reports.md
describes them (not through reports.model), so the tests check the documented contract."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ope.verdict import decide
from reports.config import ReportConfig
from reports.model import RESULT_COLUMNS, SEGMENT_COLUMNS

__all__ = ["HOSTILE_IDS", "RunSpec", "make_run", "write_json"]

HOSTILE_IDS = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "</td></tr></table><h1>owned</h1>",
    "{{ 7*7 }} & $x^2$ café",
)

OBJECTIVES = {"reward": 0.92, "click": 0.121, "cart": 0.043, "purchase": 0.0151, "revenue": 0.634}
ESTIMATORS = {"ipw": 2.4, "snipw": 2.0, "dr": 1.0, "fqe": 0.7}  # interval width factors
SESSION_SCALE = 4.9  # a session return is worth about this many decisions


@dataclass(frozen=True)
class RunSpec:
    run_id: str = "20240501T030000Z"
    created_at: datetime = datetime(2024, 5, 1, 3, 0, tzinfo=UTC)
    simulated: bool = True
    ship: bool = True
    hostile: bool = True
    propensity_source: str = "estimated"
    with_models: bool = True
    status: str = "ok"
    seed: int = 0
    drift: float = 0.0  # shifts every value (for a history of runs)
    policy_names: tuple[str, ...] = ("cql", "dqn", "bcq", "most_popular")
    config_hash: str = "3f9a0c1d2e4b"
    dataset_version: str = "v20240501-28d"
    gate_failed: bool = False  # the build gate stopped the run: manifest only
    with_explain: bool = True  # evaluation/explain.json
    with_segments: bool = True  # evaluation/segments.parquet and summary.json segments
    categories: bool = True  # the raw events carried item categories


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


def _effects(spec: RunSpec) -> dict[str, tuple[float, float, float, float]]:
    """Per policy: (relative lift, ESS share, max weight, unsupported mass)."""
    strong = 0.08 if spec.ship else 0.012
    base = {
        spec.policy_names[0]: (strong, 0.18, 38.0, 0.004),
        spec.policy_names[1]: (0.05, 0.004, 420.0, 0.02),  # big lift, unhealthy weights
        spec.policy_names[2]: (-0.03, 0.25, 12.0, 0.0),
    }
    for extra in spec.policy_names[3:]:
        base[extra] = (-0.11, 0.02, 95.0, 0.09)
    return base


def _results(spec: RunSpec, rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    n_dec, n_ep = 48_210, 9_874
    effects = _effects(spec)
    for objective, base in OBJECTIVES.items():
        behaviour_value = base * (1 + spec.drift)
        se = base * 0.012
        for estimator, width in ESTIMATORS.items():
            weighted = estimator != "fqe"
            rows.append(
                dict(
                    policy="behaviour",
                    estimator=estimator,
                    objective=objective,
                    value=behaviour_value,
                    low=behaviour_value - 1.96 * se,
                    high=behaviour_value + 1.96 * se,
                    lift=0.0,
                    lift_low=0.0,
                    lift_high=0.0,
                    rel_lift=0.0,
                    rel_lift_low=0.0,
                    rel_lift_high=0.0,
                    ess=float(n_dec) if weighted else np.nan,
                    max_weight=1.0 if weighted else np.nan,
                    p99_weight=1.0 if weighted else np.nan,
                    zero_support_share=0.0 if weighted else np.nan,
                    unsupported_mass=0.0 if weighted else np.nan,
                    ground_truth=behaviour_value * 1.004 if spec.simulated else np.nan,
                )
            )
            for policy, (rel, ess_share, max_w, unsup) in effects.items():
                noise = rng.normal(0, 0.006)
                # FQE is biased a little towards zero, IPS noisier
                lift = behaviour_value * (rel * (0.8 if estimator == "fqe" else 1.0) + noise)
                half = 1.96 * se * width * (1.6 if ess_share < 0.01 else 1.0)
                value = behaviour_value + lift
                rows.append(
                    dict(
                        policy=policy,
                        estimator=estimator,
                        objective=objective,
                        value=value,
                        low=value - half,
                        high=value + half,
                        lift=lift,
                        lift_low=lift - half,
                        lift_high=lift + half,
                        rel_lift=lift / behaviour_value,
                        rel_lift_low=(lift - half) / behaviour_value,
                        rel_lift_high=(lift + half) / behaviour_value,
                        ess=ess_share * n_dec if weighted else np.nan,
                        max_weight=max_w if weighted else np.nan,
                        p99_weight=max_w / 6 if weighted else np.nan,
                        zero_support_share=unsup * 3 if weighted else np.nan,
                        unsupported_mass=unsup if weighted else np.nan,
                        ground_truth=behaviour_value * (1 + rel) if spec.simulated else np.nan,
                    )
                )
    df = pd.DataFrame(rows)
    # as offrec.evaluation writes it: FQE only on the combined reward, and its values are
    # discounted session returns (another scale), marked by the optional ``family`` column
    df = df[(df["estimator"] != "fqe") | (df["objective"] == "reward")].reset_index(drop=True)
    fqe = df["estimator"] == "fqe"
    for col in ("value", "low", "high", "lift", "lift_low", "lift_high", "ground_truth"):
        df.loc[fqe, col] = df.loc[fqe, col] * SESSION_SCALE
    df["family"] = np.where(fqe, "per_session", "per_decision")
    df.insert(0, "run_id", spec.run_id)
    df["alpha"] = 0.05
    df["interval_method"] = "session bootstrap (1000)"
    df["n_decisions"] = n_dec
    df["n_episodes"] = n_ep
    df["propensity_source"] = spec.propensity_source
    return df[
        [
            *RESULT_COLUMNS,
            "family",
        ]
    ]


def _concentration(top: float, gini: float, h: float) -> dict[str, Any]:
    return {
        "top_k": 10,
        "top_k_share": top,
        "gini": gini,
        "entropy": h,
        "normalised_entropy": h / np.log(51),
        "effective_actions": float(np.exp(h)),
    }


def _explain(spec: RunSpec, items: list[str]) -> dict[str, Any]:
    """``evaluation/explain.json`` as docs/reports.md describes it; hostile ids as labels."""
    behaviour = _concentration(0.52, 0.61, 3.1)
    policies = {}
    for j, p in enumerate(spec.policy_names):
        gains = [
            {"label": items[k], "before": 0.02 * k, "after": 0.02 * k + 0.05 - 0.01 * j}
            for k in range(3)
        ]
        losses = [
            {"label": "(other items)", "before": 0.314, "after": 0.2},
            {"label": items[3 + j % 2], "before": 0.08, "after": 0.03},
        ]
        cats = [
            {"label": items[j % len(items)] + " category", "before": 0.2, "after": 0.3},
            {"label": "(unknown)", "before": 0.3, "after": 0.2},
        ]
        history = (
            f"3rd recommendation of the session; was just shown {items[0]}; recently interacted "
            f"with {items[1]} (latest first); 2 views so far; 4 minutes into the session; "
            "Tuesday 14:00 UTC; returning user: 2 earlier sessions"
        )
        policies[p] = {
            "concentration": _concentration(0.7 + 0.05 * j, 0.7, 2.2),
            "behaviour_concentration": behaviour,
            "gains": gains,
            "losses": losses,
            "category_gains": cats[:1] if spec.categories else [],
            "category_losses": cats[1:] if spec.categories else [],
            "disagreement": 0.4 + 0.1 * j,
            "examples": [
                {
                    "row": 17 + 100 * k,
                    "history": history
                    if k == 0
                    else "1st recommendation of the session; "
                    "no interaction yet in this session; new user (no earlier session in the "
                    "lookback)",
                    "logged": items[k],
                    "behaviour_top": [
                        {"label": items[(k + i) % len(items)], "prob": 0.3 - 0.1 * i}
                        for i in range(3)
                    ],
                    "policy_top": [
                        {"label": items[(k + i + 1) % len(items)], "prob": 0.8 - 0.3 * i}
                        for i in range(3)
                    ],
                    "agree": k == 2,
                }
                for k in range(3)
            ],
        }
    return {
        "schema_version": 1,
        "run_id": spec.run_id,
        "dataset_version": spec.dataset_version,
        "n_decisions": 48_210,
        "n_actions": 51,
        "other_label": "(other items)",
        "behaviour_share_source": "logged action frequencies on the test split",
        "policy_share_source": "mean of the policy's action probabilities over the test states",
        "behaviour_top_source": "a logistic behaviour model fitted for these examples",
        "categories": {
            "available": spec.categories,
            "n_items": 50 if spec.categories else 0,
            "note": "50 of the 50 named items have a category in the raw events"
            if spec.categories
            else "the raw events carry no item category, so shares are shown by item only",
        },
        "behaviour_concentration": behaviour,
        "policies": policies,
    }


SEGMENT_SIZES = {"new_user": (2_118, 11_050), "returning_user": (7_756, 37_160)}


def _segments(spec: RunSpec) -> pd.DataFrame:
    """``evaluation/segments.parquet``: new users gain, returning users a little less."""
    rows = []
    for segment, (n_ep, n_dec) in SEGMENT_SIZES.items():
        for family, base in (("per_decision", 0.92), ("per_session", 0.92 * SESSION_SCALE)):
            for policy, (rel, ess_share, max_w, unsup) in _effects(spec).items():
                rel = rel * (1.6 if segment == "new_user" else 0.8)
                for estimator in ("ipw", "snipw", "dr") if family == "per_decision" else ("pdis",):
                    lift = base * rel
                    half = base * (0.05 if segment == "new_user" else 0.02)
                    rows.append(
                        {
                            "run_id": spec.run_id,
                            "segment": segment,
                            "policy": policy,
                            "estimator": estimator,
                            "objective": "reward",
                            "family": family,
                            "value": base + lift,
                            "low": base + lift - half,
                            "high": base + lift + half,
                            "baseline_value": base,
                            "lift": lift,
                            "lift_low": lift - half,
                            "lift_high": lift + half,
                            "rel_lift": rel,
                            "rel_lift_low": (lift - half) / base,
                            "rel_lift_high": (lift + half) / base,
                            "alpha": 0.05,
                            "interval_method": "percentile",
                            "ess": ess_share * n_dec,
                            "max_weight": max_w,
                            "p99_weight": max_w / 6,
                            "zero_support_share": unsup * 3,
                            "unsupported_mass": unsup,
                            "n_decisions": n_dec,
                            "n_episodes": n_ep,
                            "propensity_source": spec.propensity_source,
                        }
                    )
    return pd.DataFrame(rows)[list(SEGMENT_COLUMNS)]


def make_run(runs_dir: Path, spec: RunSpec | None = None, **overrides: Any) -> Path:
    """Write a complete run directory ``runs_dir/<run_id>`` and return its path."""
    spec = spec or RunSpec()
    if overrides:
        spec = RunSpec(**{**spec.__dict__, **overrides})
    rng = np.random.default_rng(spec.seed)
    run = runs_dir / spec.run_id
    run.mkdir(parents=True, exist_ok=True)
    created = spec.created_at
    stage_secs = {"ingest": 12.4, "build": 31.9, "train": 1843.2, "evaluate": 214.7, "report": None}
    stages = {
        name: {
            "status": "running" if name == "report" else "done",
            "started_at": None,
            "finished_at": None,
            "seconds": secs,
            "peak_rss_mb": None if secs is None else 812.5,
            "details": {},
            "error": None,
        }
        for name, secs in stage_secs.items()
    }
    gates = []
    if spec.gate_failed:
        stages["build"].update(status="failed", error="at least 1000 decisions required, got 12")
        for name in ("train", "evaluate"):
            stages[name].update(
                status="skipped",
                seconds=None,
                error="skipped: the dataset failed a data-quality gate",
            )
        gates = [{"stage": "build", "message": "at least 1000 decisions required, got 12"}]
    write_json(
        run / "manifest.json",
        {
            "run_id": spec.run_id,
            "kind": "nightly",
            "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "updated_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "status": spec.status,
            "exit_code": None,
            "date": created.date().isoformat(),
            "config_hash": spec.config_hash,
            "config_path": "/srv/offrec/offrec.toml",
            "dataset_version": spec.dataset_version,
            "simulated": spec.simulated,
            "package_versions": {
                "python": "3.11.9",
                "offrec": "0.1.0",
                "d3rlpy": "2.8.1",
                "torch": "2.13.0",
                "duckdb": "1.1.3",
                "numpy": "2.1.0",
            },
            "stages": stages,
            "inputs": [],
            "models": {},
            "ope_summary": {},
            "gates": gates,
            "report_path": None,
        },
    )
    if spec.gate_failed:
        return run
    (run / "evaluation").mkdir(parents=True, exist_ok=True)
    df = _results(spec, rng)
    df.to_parquet(run / "evaluation" / "ope_results.parquet", index=False)
    verdict = decide(df, ReportConfig(), behaviour_policy="behaviour")
    write_json(
        run / "data_summary.json",
        {
            "schema_version": 1,
            "dataset_version": spec.dataset_version,
            "data_source": "simulator" if spec.simulated else "logs",
            "mode": "logged",
            "date_range": {
                "start": (created - timedelta(days=28)).isoformat(),
                "end": (created - timedelta(hours=3)).isoformat(),
            },
            "events": {"loaded": 1_254_331, "rejected": 412, "duplicate": 1_877},
            "rejected_reasons": {"propensity outside (0, 1]": 300, "unknown event_type": 112},
            "users": 20_118,
            "sessions": 61_204,
            "episodes": 61_204,
            "decisions": 241_050,
            "splits": {"train": 192_840, "test": 48_210},
            "action_coverage": {
                "n_actions": 51,
                "n_items": 1_840,
                "actions_seen": 51,
                "other_share": 0.314,
            },
            "reward_rates": {
                "click": 0.121,
                "cart": 0.043,
                "purchase": 0.0151,
                "revenue": 0.634,
                "reward": 0.92,
            },
            "cold_start": {
                "test_decisions": 48_210,
                "other_share": 0.297,
                "test_items": 1_204,
                "new_items": 133,
                "new_item_share": 0.021,
                "test_users": 6_502,
                "new_users": 1_870,
                "test_episodes": 9_874,
                "new_user_episodes": 2_118,
                "new_user_episode_share": 0.2145,
            },
        },
    )
    items = list(HOSTILE_IDS) if spec.hostile else []
    items += [f"sku-{1000 + i}" for i in range(6 - len(items) + 2)]
    policies = ["behaviour", *spec.policy_names]
    summary = {
        "schema_version": 1,
        "run_id": spec.run_id,
        "behaviour_policy": "behaviour",
        "propensity_source": spec.propensity_source,
        "n_bootstrap": 1000,
        "notes": ["212 test decisions had no logged propensity; the behaviour model's were used"]
        if spec.propensity_source == "estimated"
        else [],
        "behaviour_model": {
            "kind": "multinomial logistic regression on the state features",
            "n_fit": 192_840,
            "ece": 0.018,
            "log_loss": 2.91,
            "baseline_log_loss": 3.64,
            "share_floored": 0.002,
            "warnings": [],
            "calibration": [
                {
                    "mean_predicted": p,
                    "observed": min(1.0, p * (1.05 if p < 0.3 else 0.93)),
                    "count": int(5000 / (1 + 10 * p)),
                }
                for p in (0.01, 0.03, 0.07, 0.12, 0.2, 0.3, 0.45, 0.6, 0.8)
            ],
        }
        if spec.propensity_source == "estimated"
        else None,
        "weight_histograms": {
            p: {
                "bin_edges": list(np.geomspace(0.01, 500, 21)),
                "counts": [
                    int(x) for x in 4000 * np.exp(-0.5 * ((np.arange(20) - 9 - j) / 3) ** 2)
                ],
            }
            for j, p in enumerate(policies)
        },
        "top_items": {
            p: [
                {
                    "item_id": it,
                    "share": round(0.3 / (k + 1), 4),
                    "logged_share": round(0.2 / (k + 2), 4),
                }
                for k, it in enumerate(items[:6])
            ]
            for p in policies
        },
        "policies": {
            "behaviour": {"description": "the logged (production) recommender", "model": None},
            **{
                p: {"description": f"{p.upper()} greedy head", "model": p}
                for p in spec.policy_names
            },
        },
        "verdict": verdict.to_dict(),
    }
    if spec.with_segments:
        summary["segments"] = {
            "definition": "new_user: a session whose user has no other session with an event "
            "in the 28-day lookback before it",
            "objective": "reward",
            "counts": [
                {
                    "segment": seg,
                    "n_decisions": n_dec,
                    "n_episodes": n_ep,
                    "decision_share": n_dec / 48_210,
                    "episode_share": n_ep / 9_874,
                    "evaluated": True,
                }
                for seg, (n_ep, n_dec) in SEGMENT_SIZES.items()
            ],
        }
        _segments(spec).to_parquet(run / "evaluation" / "segments.parquet", index=False)
    if spec.with_explain:
        write_json(run / "evaluation" / "explain.json", _explain(spec, items))
    write_json(run / "evaluation" / "summary.json", summary)
    if spec.with_models:
        for k, name in enumerate(spec.policy_names[:3]):
            epochs = []
            for e in range(1, 11):
                epochs.append(
                    {
                        "epoch": e,
                        "step": e * 1000,
                        "loss": float(2.0 * np.exp(-e / (3 + k)) + 0.1 + rng.normal(0, 0.01)),
                        "td_error": float(0.5 * np.exp(-e / 4) + 0.05),
                        "initial_value": float(3.0 + k * 0.4 - 1.2 * np.exp(-e / 3)),
                        "agreement": float(0.4 + 0.3 * (1 - np.exp(-e / 4))),
                        "ips": None if e % 4 else float(0.9 + 0.01 * e),
                    }
                )
            write_json(run / "models" / name / "metrics.json", epochs)
    return run
