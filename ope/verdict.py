"""The ship / keep verdict: a pure function of the OPE results table and the verdict rules.

A candidate policy is a **ship candidate** on the primary objective only when all three hold:

1. *interval*: the lower end of its lift interval under the primary estimator is above zero,
   ``lift_low > 0`` where ``lift = V(pi) - V(behaviour)``;
2. *agreement* (when ``require_sign_agreement``): the point lifts of every estimator in
   ``agreement_estimators`` (default DR and FQE) exist and have the same, non-zero sign;
3. *weights*: the importance-weight diagnostics are healthy, taken conservatively over the
   policy's weight-based rows on the primary objective (rows whose ``ess`` is not null; when
   the table has the optional ``family`` column, only rows of the primary estimator's family,
   so per-decision weights judge a per-decision estimator and trajectory weights a
   per-session one):
   ``min(ess / n_decisions) >= min_ess_share``, ``max(max_weight) <= max_weight`` and
   ``max(unsupported_mass) <= max_unsupported_mass``.

Among the policies that pass, the one with the largest point lift wins (ties: name ascending).
When none passes the decision is **keep current**; the verdict then still names the policy with
the largest point lift and lists, in plain language, why it did not qualify.

The function reads only the columns of the ``ope_results`` table (docs/design.md section 6);
``n_decisions`` is the number of evaluated decisions, so ``ess / n_decisions`` is the effective
sample size as a share of the data. It never looks at ``ground_truth``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import pandas as pd

from ope.errors import OPEError

__all__ = [
    "SHIP",
    "KEEP",
    "Decision",
    "VerdictRules",
    "Rules",
    "PolicyCheck",
    "Verdict",
    "decide",
    "REQUIRED_COLUMNS",
    "ESTIMATOR_LABELS",
    "estimator_label",
]

SHIP: Literal["ship candidate"] = "ship candidate"
KEEP: Literal["keep current"] = "keep current"
Decision = Literal["ship candidate", "keep current"]

#: Display names of the estimators ``ope`` registers (``[evaluate] estimators`` and FQE).
ESTIMATOR_LABELS: dict[str, str] = {
    "ipw": "IPW",
    "snipw": "SNIPW",
    "dm": "DM",
    "dr": "DR",
    "sndr": "SNDR",
    "switch-dr": "Switch-DR",
    "dr-os": "DR-OS",
    "trajectory_is": "Trajectory IS",
    "pdis": "PDIS",
    "wpdis": "WPDIS",
    "sequential_dr": "Sequential DR",
    "wdr": "WDR",
    "fqe": "FQE",
}


def estimator_label(name: str) -> str:
    """How an estimator is named in text: ``dr`` -> ``DR``; unknown names unchanged."""
    return ESTIMATOR_LABELS.get(name, name)


REQUIRED_COLUMNS: tuple[str, ...] = (
    "policy",
    "estimator",
    "objective",
    "value",
    "lift",
    "lift_low",
    "lift_high",
    "rel_lift",
    "rel_lift_low",
    "rel_lift_high",
    "alpha",
    "ess",
    "max_weight",
    "unsupported_mass",
    "n_decisions",
)


class VerdictRules(Protocol):
    """The thresholds the verdict applies (``reports.config.ReportConfig`` satisfies this)."""

    primary_estimator: str
    primary_objective: str
    min_ess_share: float
    max_weight: float
    max_unsupported_mass: float
    require_sign_agreement: bool
    agreement_estimators: tuple[str, ...]


@dataclass(frozen=True)
class Rules:
    """A plain implementation of :class:`VerdictRules` (defaults equal ``[report]``'s)."""

    primary_estimator: str = "dr"
    primary_objective: str = "reward"
    min_ess_share: float = 0.01
    max_weight: float = 100.0
    max_unsupported_mass: float = 0.05
    require_sign_agreement: bool = True
    agreement_estimators: tuple[str, ...] = ("dr", "fqe")


@dataclass(frozen=True)
class PolicyCheck:
    """How one candidate policy fared against each rule (``None`` = not available)."""

    policy: str
    passed: bool
    lift: float | None
    lift_low: float | None
    lift_high: float | None
    rel_lift: float | None
    rel_lift_low: float | None
    rel_lift_high: float | None
    value: float | None
    interval_ok: bool
    sign_ok: bool | None  # None when sign agreement is not required
    sign_lifts: Mapping[str, float | None]
    weights_ok: bool
    ess_share: float | None
    max_weight: float | None
    unsupported_mass: float | None
    estimator_spread: float | None  # max - min relative lift over every estimator
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "passed": self.passed,
            "lift": self.lift,
            "lift_low": self.lift_low,
            "lift_high": self.lift_high,
            "rel_lift": self.rel_lift,
            "rel_lift_low": self.rel_lift_low,
            "rel_lift_high": self.rel_lift_high,
            "value": self.value,
            "interval_ok": self.interval_ok,
            "sign_ok": self.sign_ok,
            "sign_lifts": dict(self.sign_lifts),
            "weights_ok": self.weights_ok,
            "ess_share": self.ess_share,
            "max_weight": self.max_weight,
            "unsupported_mass": self.unsupported_mass,
            "estimator_spread": self.estimator_spread,
            "reasons": list(self.reasons),
        }

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "verdict.checks[]") -> PolicyCheck:
        d = _mapping(data, where)
        return cls(
            policy=_str(d, "policy", where),
            passed=_bool(d, "passed", where),
            lift=_opt_float(d, "lift", where),
            lift_low=_opt_float(d, "lift_low", where),
            lift_high=_opt_float(d, "lift_high", where),
            rel_lift=_opt_float(d, "rel_lift", where),
            rel_lift_low=_opt_float(d, "rel_lift_low", where),
            rel_lift_high=_opt_float(d, "rel_lift_high", where),
            value=_opt_float(d, "value", where),
            interval_ok=_bool(d, "interval_ok", where),
            sign_ok=None if d.get("sign_ok") is None else _bool(d, "sign_ok", where),
            sign_lifts={
                str(k): _opt_float({"v": v}, "v", f"{where}.sign_lifts.{k}")
                for k, v in _mapping(d.get("sign_lifts", {}), f"{where}.sign_lifts").items()
            },
            weights_ok=_bool(d, "weights_ok", where),
            ess_share=_opt_float(d, "ess_share", where),
            max_weight=_opt_float(d, "max_weight", where),
            unsupported_mass=_opt_float(d, "unsupported_mass", where),
            estimator_spread=_opt_float(d, "estimator_spread", where),
            reasons=_str_tuple(d, "reasons", where),
        )


@dataclass(frozen=True)
class Verdict:
    """The decision, the policy it is about, its lift with interval, and why.

    ``policy`` is the ship candidate, or for "keep current" the policy with the largest point
    lift (``None`` only when the table holds no candidate policy at all). ``checks`` holds one
    :class:`PolicyCheck` per candidate, largest point lift first.
    """

    decision: Decision
    policy: str | None
    objective: str
    estimator: str
    behaviour_policy: str
    alpha: float | None
    value: float | None
    behaviour_value: float | None
    lift: float | None
    lift_low: float | None
    lift_high: float | None
    rel_lift: float | None
    rel_lift_low: float | None
    rel_lift_high: float | None
    headline: str
    reasons: tuple[str, ...]
    checks: tuple[PolicyCheck, ...] = ()
    rules: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ship(self) -> bool:
        return self.decision == SHIP

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (non-finite numbers become ``None``)."""
        return {
            "decision": self.decision,
            "policy": self.policy,
            "objective": self.objective,
            "estimator": self.estimator,
            "behaviour_policy": self.behaviour_policy,
            "alpha": self.alpha,
            "value": self.value,
            "behaviour_value": self.behaviour_value,
            "lift": self.lift,
            "lift_low": self.lift_low,
            "lift_high": self.lift_high,
            "rel_lift": self.rel_lift,
            "rel_lift_low": self.rel_lift_low,
            "rel_lift_high": self.rel_lift_high,
            "headline": self.headline,
            "reasons": list(self.reasons),
            "checks": [c.to_dict() for c in self.checks],
            "rules": {k: list(v) if isinstance(v, tuple) else v for k, v in self.rules.items()},
        }

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "verdict") -> Verdict:
        """Validate a dict written by :meth:`to_dict`; raise :class:`OPEError` naming the key."""
        d = _mapping(data, where)
        decision = _str(d, "decision", where)
        if decision not in (SHIP, KEEP):
            raise OPEError(f"{where}.decision = {decision!r}: must be {SHIP!r} or {KEEP!r}")
        policy = d.get("policy")
        if policy is not None and not isinstance(policy, str):
            raise OPEError(f"{where}.policy: must be a string or null, got {policy!r}")
        if decision == SHIP and policy is None:
            raise OPEError(f"{where}.policy: a {SHIP!r} verdict must name its policy")
        checks = d.get("checks", [])
        if not isinstance(checks, list):
            raise OPEError(f"{where}.checks: must be a list, got {type(checks).__name__}")
        rules = _mapping(d.get("rules", {}), f"{where}.rules")
        return cls(
            decision=decision,  # type: ignore[arg-type]
            policy=policy,
            objective=_str(d, "objective", where),
            estimator=_str(d, "estimator", where),
            behaviour_policy=_str(d, "behaviour_policy", where),
            alpha=_opt_float(d, "alpha", where),
            value=_opt_float(d, "value", where),
            behaviour_value=_opt_float(d, "behaviour_value", where),
            lift=_opt_float(d, "lift", where),
            lift_low=_opt_float(d, "lift_low", where),
            lift_high=_opt_float(d, "lift_high", where),
            rel_lift=_opt_float(d, "rel_lift", where),
            rel_lift_low=_opt_float(d, "rel_lift_low", where),
            rel_lift_high=_opt_float(d, "rel_lift_high", where),
            headline=_str(d, "headline", where),
            reasons=_str_tuple(d, "reasons", where),
            checks=tuple(
                PolicyCheck.from_dict(c, where=f"{where}.checks[{i}]") for i, c in enumerate(checks)
            ),
            rules={str(k): tuple(v) if isinstance(v, list) else v for k, v in rules.items()},
        )


# --------------------------------------------------------------------------------------------
# the rules


def decide(
    results: pd.DataFrame, rules: VerdictRules, *, behaviour_policy: str = "behaviour"
) -> Verdict:
    """Apply ``rules`` to the ``ope_results`` table and return the :class:`Verdict`.

    ``results`` has one row per (policy, estimator, objective) with at least
    :data:`REQUIRED_COLUMNS`; rows of ``behaviour_policy`` are not candidates (their value,
    when present for the primary estimator, is reported as ``behaviour_value``).
    Raises :class:`OPEError` for a malformed table or rules that cannot be applied.
    """
    _check_rules(rules)
    table = _check_table(results)
    objective, estimator = rules.primary_objective, rules.primary_estimator
    objectives = sorted(set(table["objective"]))
    if objective not in objectives:
        raise OPEError(
            f"results: no rows for primary objective {objective!r}; objectives present: "
            f"{', '.join(objectives)}; set [report] primary_objective to one of them"
        )
    primary = table[table["objective"] == objective]
    estimators = sorted(set(primary["estimator"]))
    if estimator not in estimators:
        raise OPEError(
            f"results: no {estimator!r} rows for objective {objective!r}; estimators present: "
            f"{', '.join(estimators)}; set [report] primary_estimator to one of them"
        )
    rule_dict = _rules_dict(rules)
    candidates = sorted(set(primary["policy"]) - {behaviour_policy})
    beh_rows = primary[
        (primary["policy"] == behaviour_policy) & (primary["estimator"] == estimator)
    ]
    beh_value = _num(beh_rows["value"].iloc[0]) if len(beh_rows) else None
    if not candidates:
        return Verdict(
            decision=KEEP,
            policy=None,
            objective=objective,
            estimator=estimator,
            behaviour_policy=behaviour_policy,
            alpha=None,
            value=None,
            behaviour_value=beh_value,
            lift=None,
            lift_low=None,
            lift_high=None,
            rel_lift=None,
            rel_lift_low=None,
            rel_lift_high=None,
            headline=f"Keep current: there is no candidate policy to compare with the logged "
            f"behaviour policy on {objective}.",
            reasons=(
                f"the results hold no policy other than the behaviour policy {behaviour_policy!r}",
            ),
            checks=(),
            rules=rule_dict,
        )

    alpha = _num(primary[primary["estimator"] == estimator]["alpha"].iloc[0])
    checks = [_check_policy(primary[primary["policy"] == p], p, rules, alpha) for p in candidates]
    checks.sort(key=lambda c: (-(c.lift if c.lift is not None else -math.inf), c.policy))
    passing = [c for c in checks if c.passed]
    chosen = passing[0] if passing else checks[0]
    prow = primary[(primary["policy"] == chosen.policy) & (primary["estimator"] == estimator)]
    alpha = _num(prow["alpha"].iloc[0]) if len(prow) else alpha
    if beh_value is None and chosen.value is not None and chosen.lift is not None:
        beh_value = chosen.value - chosen.lift
    level = _level(alpha)

    if passing:
        reasons = [
            f"the {level} interval of the lift, {_interval(chosen.lift_low, chosen.lift_high)},"
            f" lies above zero ({estimator_label(estimator)})",
        ]
        if chosen.sign_ok:
            lifts = ", ".join(
                f"{estimator_label(k)} {_signed(v)}" for k, v in chosen.sign_lifts.items()
            )
            names = " and ".join(map(estimator_label, chosen.sign_lifts))
            reasons.append(f"{names} agree in sign ({lifts})")
        reasons.append(
            f"importance weights are healthy: effective sample size "
            f"{_pct(chosen.ess_share)} of decisions, largest weight {_g(chosen.max_weight)}, "
            f"unsupported mass {_pct(chosen.unsupported_mass)}"
        )
        others = [c.policy for c in passing[1:]]
        if others:
            reasons.append(f"also passed, with a smaller lift: {', '.join(others)}")
        headline = (
            f"Ship candidate: {chosen.policy} beats the logged behaviour policy on {objective} "
            f"by {_signed(chosen.lift)} per decision{_rel(chosen.rel_lift)}, {level} interval "
            f"{_interval(chosen.lift_low, chosen.lift_high)} ({estimator_label(estimator)})."
        )
        decision: Decision = SHIP
    else:
        reasons = []
        if chosen.lift is None or chosen.lift <= 0:
            reasons.append(
                f"no policy's {estimator_label(estimator)} estimate beats the logged behaviour "
                f"policy on "
                f"{objective}; the best is {chosen.policy} with lift {_signed(chosen.lift)}"
            )
        reasons.extend(f"{chosen.policy}: {r}" for r in chosen.reasons)
        if len(checks) > 1:
            reasons.append(
                f"none of the other {len(checks) - 1} candidate policies passed every check"
            )
        if chosen.lift is not None:
            headline = (
                f"Keep current: no policy is a safe improvement on {objective}. Best estimate: "
                f"{chosen.policy}, {_signed(chosen.lift)} per decision{_rel(chosen.rel_lift)}, "
                f"{level} interval {_interval(chosen.lift_low, chosen.lift_high)} "
                f"({estimator_label(estimator)})."
            )
        else:
            headline = (
                f"Keep current: no policy has a usable {estimator_label(estimator)} estimate on "
                f"{objective}."
            )
        decision = KEEP
    return Verdict(
        decision=decision,
        policy=chosen.policy,
        objective=objective,
        estimator=estimator,
        behaviour_policy=behaviour_policy,
        alpha=alpha,
        value=chosen.value,
        behaviour_value=beh_value,
        lift=chosen.lift,
        lift_low=chosen.lift_low,
        lift_high=chosen.lift_high,
        rel_lift=chosen.rel_lift,
        rel_lift_low=chosen.rel_lift_low,
        rel_lift_high=chosen.rel_lift_high,
        headline=headline,
        reasons=tuple(reasons),
        checks=tuple(checks),
        rules=rule_dict,
    )


def _check_policy(
    rows: pd.DataFrame, policy: str, rules: VerdictRules, alpha: float | None
) -> PolicyCheck:
    reasons: list[str] = []
    est = rules.primary_estimator
    est_label = estimator_label(est)
    prow = rows[rows["estimator"] == est]
    level = _level(alpha)
    lift = lift_low = lift_high = rel = rel_low = rel_high = value = None
    if len(prow):
        r = prow.iloc[0]
        lift, lift_low, lift_high = _num(r["lift"]), _num(r["lift_low"]), _num(r["lift_high"])
        rel, rel_low, rel_high = (
            _num(r["rel_lift"]),
            _num(r["rel_lift_low"]),
            _num(r["rel_lift_high"]),
        )
        value = _num(r["value"])
        level = _level(_num(r["alpha"]))
    # 1. interval
    if lift_low is None:
        interval_ok = False
        reasons.append(
            f"no {est_label} lift interval is available"
            if len(prow)
            else f"no {est_label} estimate for this policy"
        )
    else:
        interval_ok = lift_low > 0
        if not interval_ok:
            where = (
                "lies below zero"
                if lift_high is not None and lift_high < 0
                else "reaches zero"
                if lift_high is not None and lift_low == 0
                else "includes zero"
            )
            reasons.append(
                f"the {level} interval of the {est_label} lift, {_interval(lift_low, lift_high)}, "
                f"{where}: the improvement is not established"
            )
    # 2. estimator agreement
    sign_lifts: dict[str, float | None] = {}
    withheld: list[str] = []  # a row is there but its lift is not (e.g. a diverged FQE fit)
    for name in rules.agreement_estimators:
        srow = rows[rows["estimator"] == name]
        sign_lifts[name] = _num(srow["lift"].iloc[0]) if len(srow) else None
        if len(srow) and sign_lifts[name] is None:
            withheld.append(name)
    sign_ok: bool | None = None
    if rules.require_sign_agreement:
        missing = [k for k, v in sign_lifts.items() if v is None and k not in withheld]
        if withheld:
            sign_ok = False
            labels = " or ".join(map(estimator_label, withheld))
            reasons.append(
                f"no {labels} lift to check agreement with: it was computed but withheld as "
                "unreliable (see the evaluation notes, e.g. a diverged FQE fit), so the direction "
                "rests on one estimator"
            )
        if missing:
            sign_ok = False
            reasons.append(
                f"no {' or '.join(map(estimator_label, missing))} lift to check agreement with; "
                f"evaluate with "
                f"{', '.join(missing)} or set [report] require_sign_agreement = false"
            )
        else:
            signs = {math.copysign(1.0, v) if v else 0.0 for v in sign_lifts.values()}
            sign_ok = len(signs) == 1 and 0.0 not in signs
            if not sign_ok:
                lifts = ", ".join(
                    f"{estimator_label(k)} {_signed(v)}" for k, v in sign_lifts.items()
                )
                reasons.append(
                    f"{' and '.join(map(estimator_label, sign_lifts))} disagree on the direction "
                    f"of the effect ({lifts})"
                )
    # 3. weight diagnostics
    # weights of the primary estimator's kind: with a ``family`` column, only rows of the same
    # family (per-decision weights for DR; trajectory weights belong to per-session rows)
    wrows = rows[rows["ess"].notna()]
    if "family" in rows.columns and len(prow) and isinstance(prow["family"].iloc[0], str):
        wrows = wrows[wrows["family"] == prow["family"].iloc[0]]
    ess_share = max_w = unsup = None
    if len(wrows) == 0:
        weights_ok = False
        reasons.append(
            "no importance-weight diagnostics (ESS, max weight) were reported for this policy"
        )
    else:
        shares = [
            _num(e) / _num(n) if _num(n) else None
            for e, n in zip(wrows["ess"], wrows["n_decisions"], strict=True)
        ]
        ess_share = None if any(s is None for s in shares) else min(shares)  # type: ignore[type-var]
        max_ws = [_num(x) for x in wrows["max_weight"]]
        max_w = None if any(x is None for x in max_ws) else max(max_ws)  # type: ignore[type-var]
        unsups = [_num(x) for x in wrows["unsupported_mass"]]
        unsup = None if any(x is None for x in unsups) else max(unsups)  # type: ignore[type-var]
        weights_ok = True
        if ess_share is None:
            weights_ok = False
            reasons.append("the effective sample size share is not available")
        elif ess_share < rules.min_ess_share:
            weights_ok = False
            reasons.append(
                f"the effective sample size is only {_pct(ess_share)} of the decisions "
                f"(at least {_pct(rules.min_ess_share)} required): a few decisions dominate "
                f"the estimate"
            )
        if max_w is None:
            weights_ok = False
            reasons.append("the largest importance weight is not available")
        elif max_w > rules.max_weight:
            weights_ok = False
            reasons.append(
                f"the largest importance weight is {_g(max_w)} (at most "
                f"{_g(rules.max_weight)} allowed)"
            )
        if unsup is None:
            weights_ok = False
            reasons.append("the unsupported probability mass is not available")
        elif unsup > rules.max_unsupported_mass:
            weights_ok = False
            reasons.append(
                f"{_pct(unsup)} of the policy's probability goes to actions the logging policy "
                f"never took (at most {_pct(rules.max_unsupported_mass)} allowed): the logs "
                f"cannot tell what those would do"
            )
    # relative lifts: comparable across estimators whose values are on different scales
    # (per decision vs per session)
    finite = [x for x in (_num(v) for v in rows["rel_lift"]) if x is not None]
    spread = max(finite) - min(finite) if len(finite) >= 2 else None
    passed = interval_ok and weights_ok and (sign_ok is not False)
    return PolicyCheck(
        policy=policy,
        passed=passed,
        lift=lift,
        lift_low=lift_low,
        lift_high=lift_high,
        rel_lift=rel,
        rel_lift_low=rel_low,
        rel_lift_high=rel_high,
        value=value,
        interval_ok=interval_ok,
        sign_ok=sign_ok,
        sign_lifts=sign_lifts,
        weights_ok=weights_ok,
        ess_share=ess_share,
        max_weight=max_w,
        unsupported_mass=unsup,
        estimator_spread=spread,
        reasons=tuple(reasons),
    )


# --------------------------------------------------------------------------------------------
# validation


def _check_rules(rules: VerdictRules) -> None:
    for name in ("primary_estimator", "primary_objective"):
        value = getattr(rules, name, None)
        if not isinstance(value, str) or not value:
            raise OPEError(f"rules.{name} = {value!r}: must be a non-empty string")
    for name, lo, hi in (
        ("min_ess_share", 0.0, 1.0),
        ("max_weight", 1.0, math.inf),
        ("max_unsupported_mass", 0.0, 1.0),
    ):
        value = getattr(rules, name, None)
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise OPEError(f"rules.{name} = {value!r}: must be a number")
        if not lo <= value <= hi:
            raise OPEError(f"rules.{name} = {value!r}: must be >= {lo} and <= {hi}")
    agree = tuple(getattr(rules, "agreement_estimators", ()))
    if getattr(rules, "require_sign_agreement", False) and len(set(agree)) < 2:
        raise OPEError(
            f"rules.agreement_estimators = {list(agree)!r}: name at least two estimators "
            "(e.g. ['dr', 'fqe']) or set require_sign_agreement = false"
        )


def _check_table(results: Any) -> pd.DataFrame:
    if not isinstance(results, pd.DataFrame):
        raise OPEError(f"results: expected a pandas DataFrame, got {type(results).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in results.columns]
    if missing:
        raise OPEError(
            f"results: missing column(s) {', '.join(missing)}; the table must follow "
            "docs/design.md section 6 (ope_results)"
        )
    if results.empty:
        raise OPEError("results: the table is empty; run the evaluation first")
    for col in ("policy", "estimator", "objective"):
        bad = results[col].map(lambda v: not isinstance(v, str) or not v)
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise OPEError(
                f"results: row {i}: {col} = {results[col].iloc[i]!r}: must be a non-empty string"
            )
    dup = results.duplicated(["policy", "estimator", "objective"])
    if dup.any():
        i = int(dup.to_numpy().nonzero()[0][0])
        r = results.iloc[i]
        raise OPEError(
            f"results: row {i}: duplicate key (policy={r['policy']!r}, "
            f"estimator={r['estimator']!r}, objective={r['objective']!r}); each "
            "(policy, estimator, objective) must appear once"
        )
    return results.reset_index(drop=True)


def _rules_dict(rules: VerdictRules) -> dict[str, Any]:
    return {
        "primary_estimator": rules.primary_estimator,
        "primary_objective": rules.primary_objective,
        "min_ess_share": float(rules.min_ess_share),
        "max_weight": float(rules.max_weight),
        "max_unsupported_mass": float(rules.max_unsupported_mass),
        "require_sign_agreement": bool(rules.require_sign_agreement),
        "agreement_estimators": tuple(rules.agreement_estimators),
    }


# --------------------------------------------------------------------------------------------
# small helpers


def _num(x: Any) -> float | None:
    """A finite float, or None for null / NaN / infinite / non-numeric."""
    if x is None or isinstance(x, bool):
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _level(alpha: float | None) -> str:
    if alpha is None:
        return "confidence"
    return f"{(1 - alpha) * 100:.4g}%"


def _g(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def _signed(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.3g}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.3g}%"


def _rel(x: float | None) -> str:
    return "" if x is None else f" ({x * 100:+.3g}%)"


def _interval(lo: float | None, hi: float | None) -> str:
    return f"[{_signed(lo)}, {_signed(hi)}]"


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise OPEError(f"{where}: must be an object, got {type(value).__name__}")
    return value


def _str(d: Mapping[str, Any], key: str, where: str) -> str:
    if key not in d:
        raise OPEError(f"{where}: missing key {key!r}")
    value = d[key]
    if not isinstance(value, str):
        raise OPEError(f"{where}.{key}: must be a string, got {value!r}")
    return value


def _bool(d: Mapping[str, Any], key: str, where: str) -> bool:
    if key not in d:
        raise OPEError(f"{where}: missing key {key!r}")
    value = d[key]
    if not isinstance(value, bool):
        raise OPEError(f"{where}.{key}: must be true or false, got {value!r}")
    return value


def _opt_float(d: Mapping[str, Any], key: str, where: str) -> float | None:
    value = d.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OPEError(f"{where}.{key}: must be a number or null, got {value!r}")
    return _num(value)


def _str_tuple(d: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = d.get(key, [])
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or not all(isinstance(v, str) for v in value)
    ):
        raise OPEError(f"{where}.{key}: must be a list of strings, got {value!r}")
    return tuple(value)
