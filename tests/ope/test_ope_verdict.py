"""The ship / keep verdict rules, table-driven."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ope.errors import OPEError
from ope.verdict import KEEP, SHIP, Rules, Verdict, decide

RULES = Rules()


def _row(
    policy: str,
    estimator: str,
    lift: float,
    *,
    half: float = 0.02,
    objective: str = "reward",
    ess: float | None = 500.0,
    max_weight: float = 20.0,
    unsupported: float = 0.0,
    n: int = 1000,
    base: float = 1.0,
) -> dict[str, Any]:
    weighted = ess is not None
    return {
        "run_id": "r",
        "policy": policy,
        "estimator": estimator,
        "objective": objective,
        "value": base + lift,
        "low": base + lift - half,
        "high": base + lift + half,
        "lift": lift,
        "lift_low": lift - half,
        "lift_high": lift + half,
        "rel_lift": lift / base,
        "rel_lift_low": (lift - half) / base,
        "rel_lift_high": (lift + half) / base,
        "alpha": 0.05,
        "ess": ess if weighted else np.nan,
        "max_weight": max_weight if weighted else np.nan,
        "unsupported_mass": unsupported if weighted else np.nan,
        "n_decisions": n,
    }


def _policy(name: str, lift: float, *, fqe_lift: float | None = None, **kw: Any) -> list[dict]:
    """DR + IPS (weighted) and FQE (no weights) rows of one policy."""
    ips_kw = {**kw, "half": 2.5 * kw.get("half", 0.02)}
    rows = [_row(name, "dr", lift, **kw), _row(name, "ipw", lift * 1.1, **ips_kw)]
    if fqe_lift is not None:
        fkw = {k: v for k, v in kw.items() if k in ("objective", "n", "base")}
        rows.append(_row(name, "fqe", fqe_lift, ess=None, **fkw))
    return rows


def _table(*groups: list[dict], behaviour: bool = True) -> pd.DataFrame:
    rows = [r for g in groups for r in g]
    if behaviour:
        rows += [
            _row("behaviour", e, 0.0, half=0.0, ess=1000.0, max_weight=1.0) for e in ("dr", "ipw")
        ]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# each rule

CASES = [
    # (id, table, rules, decision, policy, reason fragment)
    ("all good", _table(_policy("a", 0.10, fqe_lift=0.08)), RULES, SHIP, "a", "lies above zero"),
    (
        "interval includes zero",
        _table(_policy("a", 0.01, fqe_lift=0.02)),
        RULES,
        KEEP,
        "a",
        "includes zero",
    ),
    (
        "interval below zero",
        _table(_policy("a", -0.10, fqe_lift=-0.1)),
        RULES,
        KEEP,
        "a",
        "no policy's DR estimate beats",
    ),
    (
        "lower bound exactly zero",
        _table(_policy("a", 0.02, fqe_lift=0.02)),
        RULES,
        KEEP,
        "a",
        "reaches zero",
    ),
    (
        "DR and FQE disagree",
        _table(_policy("a", 0.10, fqe_lift=-0.01)),
        RULES,
        KEEP,
        "a",
        "disagree on the direction",
    ),
    (
        "FQE exactly zero",
        _table(_policy("a", 0.10, fqe_lift=0.0)),
        RULES,
        KEEP,
        "a",
        "disagree on the direction",
    ),
    (
        "FQE missing, agreement required",
        _table(_policy("a", 0.10)),
        RULES,
        KEEP,
        "a",
        "no FQE lift to check agreement",
    ),
    (
        "FQE withheld (row present, lift NaN), agreement required",
        _table(_policy("a", 0.10, fqe_lift=math.nan)),
        RULES,
        KEEP,
        "a",
        "computed but withheld as unreliable",
    ),
    (
        "FQE missing, agreement not required",
        _table(_policy("a", 0.10)),
        replace(RULES, require_sign_agreement=False),
        SHIP,
        "a",
        "lies above zero",
    ),
    (
        "ESS share too small",
        _table(_policy("a", 0.10, fqe_lift=0.1, ess=5.0)),
        RULES,
        KEEP,
        "a",
        "effective sample size is only 0.5%",
    ),
    (
        "ESS share exactly at the minimum",
        _table(_policy("a", 0.10, fqe_lift=0.1, ess=10.0)),
        RULES,
        SHIP,
        "a",
        "healthy",
    ),
    (
        "max weight too large",
        _table(_policy("a", 0.10, fqe_lift=0.1, max_weight=250.0)),
        RULES,
        KEEP,
        "a",
        "largest importance weight is 250",
    ),
    (
        "max weight exactly at the limit",
        _table(_policy("a", 0.10, fqe_lift=0.1, max_weight=100.0)),
        RULES,
        SHIP,
        "a",
        "healthy",
    ),
    (
        "unsupported mass too large",
        _table(_policy("a", 0.10, fqe_lift=0.1, unsupported=0.2)),
        RULES,
        KEEP,
        "a",
        "never took",
    ),
    (
        "no weight diagnostics at all",
        _table([_row("a", "dr", 0.1, ess=None), _row("a", "fqe", 0.1, ess=None)]),
        RULES,
        KEEP,
        "a",
        "no importance-weight diagnostics",
    ),
    (
        "passing policy beats a bigger but unhealthy one",
        _table(
            _policy("big", 0.30, fqe_lift=0.3, max_weight=900.0),
            _policy("safe", 0.10, fqe_lift=0.09),
        ),
        RULES,
        SHIP,
        "safe",
        "lies above zero",
    ),
    (
        "two pass: the larger lift wins",
        _table(_policy("x", 0.10, fqe_lift=0.1), _policy("y", 0.20, fqe_lift=0.2)),
        RULES,
        SHIP,
        "y",
        "also passed, with a smaller lift: x",
    ),
    (
        "none pass: best-looking named with its reasons",
        _table(_policy("x", 0.30, fqe_lift=0.3, ess=1.0), _policy("y", 0.01, fqe_lift=0.01)),
        RULES,
        KEEP,
        "x",
        "none of the other 1 candidate",
    ),
    ("only behaviour rows", _table(), RULES, KEEP, None, "no policy other than"),
    (
        "primary estimator IPS",
        _table(_policy("a", 0.10, fqe_lift=0.1)),
        replace(RULES, primary_estimator="ipw"),
        SHIP,
        "a",
        "(IPW)",
    ),
    (
        "ignores other objectives",
        _table(
            _policy("a", 0.10, fqe_lift=0.1), _policy("a", -0.5, fqe_lift=-0.5, objective="revenue")
        ),
        RULES,
        SHIP,
        "a",
        "",
    ),
    (
        "NaN primary interval",
        pd.DataFrame([{**_row("a", "dr", 0.1), "lift_low": np.nan}, _row("a", "fqe", 0.1)]),
        RULES,
        KEEP,
        "a",
        "no DR lift interval is available",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_verdict_rules(case: tuple) -> None:
    _, table, rules, decision, policy, fragment = case
    v = decide(table, rules)
    assert v.decision == decision
    assert v.policy == policy
    text = " ".join(v.reasons) + " " + v.headline
    assert fragment in text, text


def test_ship_verdict_carries_the_numbers() -> None:
    v = decide(_table(_policy("a", 0.10, fqe_lift=0.08)), RULES)
    assert v.ship and v.headline.startswith("Ship candidate: a beats")
    assert v.lift == pytest.approx(0.10)
    assert v.lift_low == pytest.approx(0.08) and v.lift_high == pytest.approx(0.12)
    assert v.behaviour_value == pytest.approx(1.0)
    assert v.alpha == pytest.approx(0.05) and "95% interval" in v.headline
    (check,) = v.checks
    assert check.passed and check.interval_ok and check.sign_ok and check.weights_ok
    assert check.ess_share == pytest.approx(0.5)
    assert check.sign_lifts == {"dr": pytest.approx(0.10), "fqe": pytest.approx(0.08)}
    assert check.estimator_spread == pytest.approx(0.11 - 0.08)


def test_weight_diagnostics_are_taken_conservatively_over_estimators() -> None:
    rows = [
        _row("a", "dr", 0.1, ess=800.0, max_weight=10.0),
        _row("a", "snipw", 0.1, ess=8.0, max_weight=10.0),  # the worse ESS counts
        _row("a", "fqe", 0.1, ess=None),
    ]
    v = decide(pd.DataFrame(rows), RULES)
    assert v.decision == KEEP
    assert v.checks[0].ess_share == pytest.approx(0.008)


def test_checks_sorted_by_lift_and_cover_every_candidate() -> None:
    v = decide(
        _table(
            _policy("lo", 0.01, fqe_lift=0.0),
            _policy("hi", 0.2, fqe_lift=0.2),
            _policy("mid", 0.05, fqe_lift=0.05),
        ),
        RULES,
    )
    assert [c.policy for c in v.checks] == ["hi", "mid", "lo"]


def test_verdict_round_trips_through_json() -> None:
    v = decide(_table(_policy("x", 0.30, fqe_lift=-0.3), _policy("y", 0.1, fqe_lift=0.1)), RULES)
    again = Verdict.from_dict(json.loads(json.dumps(v.to_dict(), allow_nan=False)))
    assert again == v


# --------------------------------------------------------------------------------------------
# bad inputs

BAD_TABLES = [
    ("not a frame", [{"policy": "a"}], "expected a pandas DataFrame"),
    (
        "missing columns",
        pd.DataFrame([{"policy": "a", "estimator": "dr"}]),
        "missing column\\(s\\) objective, value",
    ),
    ("empty", _table().iloc[0:0], "the table is empty"),
    (
        "null policy",
        pd.DataFrame([{**_row("a", "dr", 0.1), "policy": None}]),
        "row 0: policy = None",
    ),
    (
        "duplicate key",
        pd.DataFrame([_row("a", "dr", 0.1), _row("a", "dr", 0.2)]),
        "row 1: duplicate key \\(policy='a', estimator='dr', objective='reward'\\)",
    ),
    (
        "unknown objective",
        _table(_policy("a", 0.1, objective="click"), behaviour=False),
        "no rows for primary objective 'reward'; objectives present: click",
    ),
    (
        "unknown estimator",
        pd.DataFrame([_row("a", "ipw", 0.1)]),
        "no 'dr' rows for objective 'reward'; estimators present: ipw",
    ),
]


@pytest.mark.parametrize("case", BAD_TABLES, ids=[c[0] for c in BAD_TABLES])
def test_bad_tables(case: tuple) -> None:
    _, table, message = case
    with pytest.raises(OPEError, match=message):
        decide(table, RULES)


BAD_RULES = [
    (replace(RULES, min_ess_share=1.5), "rules.min_ess_share = 1.5: must be >= 0.0 and <= 1.0"),
    (replace(RULES, max_weight=0.5), "rules.max_weight = 0.5: must be >= 1.0"),
    (replace(RULES, max_unsupported_mass=math.nan), "rules.max_unsupported_mass = nan"),
    (replace(RULES, primary_estimator=""), "rules.primary_estimator = '': must be a non-empty"),
    (replace(RULES, agreement_estimators=("dr",)), "name at least two estimators"),
]


@pytest.mark.parametrize("rules, message", BAD_RULES)
def test_bad_rules(rules: Rules, message: str) -> None:
    with pytest.raises(OPEError, match=message):
        decide(_table(_policy("a", 0.1, fqe_lift=0.1)), rules)


BAD_DICTS = [
    ({}, "verdict: missing key 'decision'"),
    ({"decision": "maybe"}, "verdict.decision = 'maybe'"),
    ({"decision": SHIP, "policy": None}, "must name its policy"),
    ({"decision": KEEP, "policy": 3}, "verdict.policy: must be a string or null"),
    (
        {
            "decision": KEEP,
            "policy": None,
            "objective": "reward",
            "estimator": "dr",
            "behaviour_policy": "b",
            "headline": "h",
            "lift": "big",
        },
        "verdict.lift: must be a number or null",
    ),
    (
        {
            "decision": KEEP,
            "policy": None,
            "objective": "reward",
            "estimator": "dr",
            "behaviour_policy": "b",
            "headline": "h",
            "reasons": "one",
        },
        "verdict.reasons: must be a list of strings",
    ),
]


@pytest.mark.parametrize("data, message", BAD_DICTS)
def test_bad_verdict_dicts(data: dict, message: str) -> None:
    with pytest.raises(OPEError, match=message):
        Verdict.from_dict(data)


# --------------------------------------------------------------------------------------------
# properties


@st.composite
def _random_tables(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 4))
    groups = []
    for i in range(n):
        lift = draw(st.floats(-0.5, 0.5))
        groups.append(
            _policy(
                f"p{i}",
                lift,
                fqe_lift=draw(st.one_of(st.none(), st.floats(-0.5, 0.5))),
                half=draw(st.floats(0.0, 0.3)),
                ess=draw(st.floats(0.0, 1000.0)),
                max_weight=draw(st.floats(1.0, 500.0)),
                unsupported=draw(st.floats(0.0, 0.3)),
            )
        )
    return _table(*groups)


@settings(max_examples=60, deadline=None)
@given(_random_tables())
def test_a_ship_verdict_always_satisfies_every_rule(table: pd.DataFrame) -> None:
    v = decide(table, RULES)
    if v.decision != SHIP:
        assert not any(c.passed for c in v.checks)
        return
    rows = table[(table["policy"] == v.policy) & (table["objective"] == "reward")]
    dr = rows[rows["estimator"] == "dr"].iloc[0]
    fqe = rows[rows["estimator"] == "fqe"].iloc[0]
    assert dr["lift_low"] > 0
    assert np.sign(dr["lift"]) == np.sign(fqe["lift"]) != 0
    weighted = rows[rows["ess"].notna()]
    assert (weighted["ess"] / weighted["n_decisions"]).min() >= RULES.min_ess_share
    assert weighted["max_weight"].max() <= RULES.max_weight
    assert weighted["unsupported_mass"].max() <= RULES.max_unsupported_mass
    # and no passing policy has a larger lift
    assert all(c.lift <= v.lift for c in v.checks if c.passed)


def test_weights_are_judged_within_the_primary_estimators_family() -> None:
    """Trajectory weights of per-session rows do not veto a per-decision DR verdict."""
    rows = [
        {**_row("a", "dr", 0.1), "family": "per_decision"},
        {**_row("a", "ipw", 0.1), "family": "per_decision"},
        {**_row("a", "pdis", 0.5, ess=2.0, max_weight=1e6), "family": "per_session"},
        {**_row("a", "fqe", 0.4, ess=None), "family": "per_session"},
    ]
    v = decide(pd.DataFrame(rows), RULES)
    assert v.decision == SHIP
    assert v.checks[0].max_weight == pytest.approx(20.0)
    # without the family column every weighted row counts, and the huge weight vetoes
    v = decide(pd.DataFrame(rows).drop(columns=["family"]), RULES)
    assert v.decision == KEEP and "largest importance weight is 1e+06" in " ".join(v.reasons)
