"""``offrec evaluate``: every trained policy and the baselines, against the logged behaviour.

This module is glue: it loads a dataset version's test split (``sql``), the run's models
(``offline_rl``), runs the estimators of ``ope`` on arrays, optionally asks the simulator for
ground truth, and stores what the report reads (docs/reports.md):

* ``runs/<run_id>/evaluation/ope_results.parquet`` and the warehouse table ``ope_results`` —
  one row per (policy, estimator, objective), docs/design.md §6;
* ``runs/<run_id>/evaluation/summary.json`` — behaviour model, weight histograms, top items,
  the verdict of ``ope.verdict.decide``, the new/returning segment counts;
* ``runs/<run_id>/evaluation/explain.json`` — what changes if a policy ships
  (``ope.explain``): recommendation shares against the logged ones, top movers by item and
  category, concentration, example decisions with both top-3 lists;
* ``runs/<run_id>/evaluation/segments.parquet`` and the warehouse table
  ``ope_segment_results`` — the primary objective's estimates on new-user sessions and on
  returning users' sessions separately (``ope.segments``), with session-bootstrap intervals.

What is estimated, per policy ``pi``:

* per-decision estimators (``[evaluate] estimators``: IPS, SNIPS, DM, DR …) of the mean reward
  per decision on the logged states, for the combined reward and each component, with DM/DR
  reward models cross-fitted by session;
* per-session estimators (``sequential_estimators``) of the expected discounted session return;
  sequential DR and weighted DR use FQE's Q-function of ``pi`` as their model, so they are run
  for the combined reward (for components only the importance-sampling ones run);
* FQE (``fqe``) of the discounted session return, combined reward;
* lifts over the logged behaviour from the same session-bootstrap resamples.

Propensities: the logged ones when every test decision has one; otherwise (organic clickstream)
a cross-fitted behaviour model's, floored at ``propensity_floor`` — and the report says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from offrec.atomic import atomic_path, atomic_write_json
from offrec.config import OffrecConfig
from offrec.errors import OffrecError
from offrec.jsonsafe import json_safe
from offrec.logs import log_event
from reports.model import EXPLAIN, RESULT_COLUMNS, SEGMENT_COLUMNS, SEGMENTS

__all__ = [
    "EvaluationResult",
    "format_changes",
    "PolicyUnderTest",
    "evaluate_run",
    "load_results",
    "load_segment_results",
    "OBJECTIVES",
]

#: objective name -> column of ``Transitions.components`` (``reward`` is the combined reward)
OBJECTIVES: dict[str, str | None] = {
    "reward": None,
    "click": "r_click",
    "cart": "r_cart",
    "purchase": "r_purchase",
    "revenue": "r_revenue",
}
_WEIGHTS_FOR = {
    "click": {"click": 1.0, "add_to_cart": 0.0, "purchase": 0.0, "revenue": 0.0},
    "cart": {"click": 0.0, "add_to_cart": 1.0, "purchase": 0.0, "revenue": 0.0},
    "purchase": {"click": 0.0, "add_to_cart": 0.0, "purchase": 1.0, "revenue": 0.0},
    "revenue": {"click": 0.0, "add_to_cart": 0.0, "purchase": 0.0, "revenue": 1.0},
}
BEHAVIOUR = "behaviour"


@dataclass(frozen=True)
class PolicyUnderTest:
    name: str
    policy: Any  # offline_rl policy: action_probs(raw states) -> (n, A)
    description: str
    model: str | None = None


@dataclass
class EvaluationResult:
    table: pd.DataFrame
    summary: dict[str, Any]
    policies: list[str]
    out_dir: Path
    timings: dict[str, float] = field(default_factory=dict)
    explanation: dict[str, Any] = field(default_factory=dict)  # evaluation/explain.json
    segments: pd.DataFrame | None = None  # evaluation/segments.parquet

    @property
    def n_rows(self) -> int:
        return int(len(self.table))

    def summary_for_manifest(self) -> dict[str, Any]:
        verdict = self.summary.get("verdict", {})
        return {
            "decision": verdict.get("decision"),
            "policy": verdict.get("policy"),
            "headline": verdict.get("headline"),
            "propensity_source": self.summary.get("propensity_source"),
            "rows": self.n_rows,
        }


# --------------------------------------------------------------------------------------------


def _weights_dict(cfg: OffrecConfig) -> dict[str, float]:
    r = cfg.build.reward
    return {
        "click": r.click,
        "add_to_cart": r.add_to_cart,
        "purchase": r.purchase,
        "revenue": r.revenue,
    }


def build_policies(
    cfg: OffrecConfig, run_dir: Path, train: Any, spec: Any, actions: Any
) -> list[PolicyUnderTest]:
    """The run's models under the configured head, plus the configured baselines."""
    from offline_rl.artifacts import list_models, load_model
    from offline_rl.policies import MostPopularPolicy, UniformPolicy

    ev = cfg.evaluate
    out: list[PolicyUnderTest] = []
    for info in list_models(run_dir):
        model = load_model(run_dir, info.name, expected_spec=spec, expected_actions=actions)
        head = "bc" if model.kind == "bc" else ev.policy_head
        policy = model.policy(ev.policy_head, epsilon=ev.epsilon, temperature=ev.temperature)
        policy.name = info.name
        desc = {
            "bc": "behaviour cloning (softmax classifier)",
            "epsilon_greedy": f"{info.algorithm}, epsilon-greedy head (epsilon {ev.epsilon:g})",
            "greedy": f"{info.algorithm}, greedy head",
            "softmax": f"{info.algorithm}, softmax head (temperature {ev.temperature:g})",
        }[head]
        out.append(PolicyUnderTest(info.name, policy, desc, model=info.name))
    n_actions = actions.n_actions
    if "uniform" in ev.baselines:
        out.append(
            PolicyUnderTest(
                "uniform", UniformPolicy(n_actions, actions=actions), "uniform random baseline"
            )
        )
    if "most_popular" in ev.baselines:
        counts = np.bincount(train.actions, minlength=n_actions)
        pol = MostPopularPolicy(counts, epsilon=ev.epsilon, actions=actions)
        out.append(
            PolicyUnderTest(
                "most_popular",
                pol,
                f"most popular item of the train split, epsilon {ev.epsilon:g} by popularity",
            )
        )
    return out


def _bandit_evaluation(ev: Any) -> Any:
    """The ``[evaluate] estimators`` as one ``ope.OffPolicyEvaluation`` (None when empty)."""
    from ope import OffPolicyEvaluation
    from ope.registry import make_bandit_estimator

    if not ev.estimators:
        return None
    return OffPolicyEvaluation(
        tuple(
            make_bandit_estimator(
                name,
                clip_lambda=ev.clip_lambda,
                switch_lambda=ev.switch_lambda,
                shrinkage_lambda=ev.shrinkage_lambda,
            )
            for name in ev.estimators
        )
    )


def _simulator_config(cfg: OffrecConfig, given: dict[str, Any] | None) -> Any:
    """The simulator config of the logs when they came from ``offrec simulate``, else None."""
    from offrec.simulator import SimulatorConfig, load_simulation_config

    if given is not None:
        return given if isinstance(given, SimulatorConfig) else SimulatorConfig(**given)
    try:
        return load_simulation_config(cfg.paths.inputs)
    except Exception:  # noqa: BLE001 - not simulator output: no ground truth
        return None


def _propensities(
    cfg: OffrecConfig, test: Any, states_n: np.ndarray, actions: Any, notes: list[str]
) -> tuple[np.ndarray, str, dict[str, Any] | None, np.ndarray | None]:
    """(n,) behaviour probability of each logged action, its source, the behaviour model's
    description and its (n, A) probabilities (None when the logged propensities are used)."""
    from offline_rl.policies import LoggedBehaviourPolicy
    from ope.behaviour_model import fit_behaviour_model

    n_actions = actions.n_actions
    logged_ok = bool(len(test)) and bool(np.isfinite(test.propensities).all())
    model_info = None
    if logged_ok and not cfg.evaluate.estimate_propensities:
        mu = LoggedBehaviourPolicy(test, n_actions, actions=actions).logged_propensities()
        return mu, "logged", None, None
    missing = int((~np.isfinite(test.propensities)).sum())
    bm = fit_behaviour_model(
        states_n, test.actions, test.episode_ids, n_actions, config=cfg.evaluate.behaviour_model
    )
    model_info = {
        "kind": f"{bm.config.kind} classifier on the state features, cross-fitted by session",
        "n_fit": int(bm.n_train_rows),
        "ece": float(bm.calibration.ece),
        "log_loss": float(bm.log_loss),
        "baseline_log_loss": float(bm.baseline_log_loss),
        "share_floored": float(bm.share_floored),
        "calibration": bm.calibration.rows(),
        "warnings": list(bm.warnings),
    }
    if logged_ok:
        notes.append(
            "estimate_propensities is on: the behaviour model's propensities were "
            "used although the logs carry propensities"
        )
    else:
        notes.append(
            f"{missing} of {len(test)} test decisions had no logged propensity; the "
            "behaviour model's estimated propensities were used for every decision"
        )
    return bm.pscore, "estimated", model_info, bm.probs


def _fqe_kernel(
    init_values: np.ndarray, init_ids: np.ndarray, episode_ids: np.ndarray, steps: np.ndarray
) -> Any:
    """A Kernel whose value is the mean FQE initial-state value (one term per session)."""
    import scipy.sparse as sp

    from ope import Kernel

    n = episode_ids.shape[0]
    first = np.flatnonzero(steps == 0)
    lookup = dict(zip(init_ids.tolist(), init_values.tolist(), strict=True))
    comp = np.zeros((n, 2))
    comp[first, 0] = [lookup[e] for e in episode_ids[first].tolist()]
    comp[first, 1] = 1.0
    return Kernel(
        components=comp,
        numerators=sp.csr_array(np.array([[1.0, 0.0]])),
        denominators=sp.csr_array(np.array([[0.0, 1.0]])),
        coef=np.array([1.0]),
        name="fqe",
    )


def _histogram(w: np.ndarray, bins: int = 24) -> dict[str, list[float]] | None:
    w = w[np.isfinite(w) & (w > 0)]
    if w.size == 0:
        return None
    lo, hi = float(w.min()), float(w.max())
    if hi <= lo * 1.0001:
        edges = np.array([lo * 0.9, hi * 1.1])
    else:
        edges = np.geomspace(lo, hi * 1.0001, bins + 1)
    counts, edges = np.histogram(w, bins=edges)
    return {"bin_edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def _top_items(
    probs: np.ndarray, logged_actions: np.ndarray, actions: Any, k: int = 10
) -> list[dict[str, Any]]:
    share = probs.mean(axis=0)
    logged = np.bincount(logged_actions, minlength=actions.n_actions) / max(len(logged_actions), 1)
    order = np.argsort(-share, kind="stable")[:k]
    names = list(actions.top_items) + ["(other items)"]
    return [
        {"item_id": names[a], "share": float(share[a]), "logged_share": float(logged[a])}
        for a in order
    ]


class _Explainer:
    """Collects ``ope.explain`` results per policy for ``evaluation/explain.json``.

    The behaviour's top-3 in the examples comes from a behaviour model: the cross-fitted one
    of the evaluation when propensities were estimated; with logged propensities (which give
    only the shown item's probability) a small 2-fold logistic model fitted here, used for
    nothing else. Categories come from ``events.extra`` (``sql.summary.item_categories``).
    """

    _OTHER_LABEL = "(other items)"

    def __init__(
        self,
        cfg: OffrecConfig,
        warehouse: Path,
        version: str,
        test: Any,
        spec: Any,
        actions: Any,
        states_n: np.ndarray,
        behaviour_probs: np.ndarray | None,
    ) -> None:
        import dataclasses

        from ope.behaviour_model import fit_behaviour_model
        from ope.errors import OPEError
        from sql.summary import item_categories

        self.test, self.spec, self.seed = test, spec, cfg.evaluate.seed
        self.labels = [*actions.top_items, self._OTHER_LABEL]
        self.history_labels = [*actions.top_items, "an item outside the top-N"]
        self.n_top = len(actions.top_items)
        self.behaviour_source: str | None = None
        if behaviour_probs is not None:
            self.behaviour_source = (
                "the evaluation's behaviour model (cross-fitted on the "
                "test split; it supplied the propensities)"
            )
        else:
            bm_cfg = dataclasses.replace(
                cfg.evaluate.behaviour_model,
                kind="logistic",
                n_folds=2,
                max_train_rows=5000,
                max_iter=100,
            )
            try:
                behaviour_probs = fit_behaviour_model(
                    states_n, test.actions, test.episode_ids, actions.n_actions, config=bm_cfg
                ).probs
                self.behaviour_source = (
                    "a logistic behaviour model fitted for these examples (2 folds, at most "
                    "5000 rows per fit); the logs give only the shown item's probability"
                )
            except OPEError as exc:
                log_event(
                    "evaluate: no behaviour model for the explanation examples", reason=str(exc)
                )
                self.behaviour_source = None
        self.behaviour_probs = behaviour_probs
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            self.categories = item_categories(con, version)
            rows = con.execute(
                "SELECT mode FROM dataset_versions WHERE dataset_version = $v", {"v": version}
            ).fetchall()
        finally:
            con.close()
        self.mode = str(rows[0][0]) if rows else cfg.build.mode
        self.policies: dict[str, dict[str, Any]] = {}
        self.version = version
        self.behaviour_concentration: dict[str, Any] | None = None

    def add(self, name: str, probs: np.ndarray) -> None:
        from ope.explain import explain_policy

        res = explain_policy(
            states=self.test.states,
            actions=self.test.actions,
            action_dist=probs,
            feature_names=self.spec.names,
            item_labels=self.labels,
            history_labels=self.history_labels,
            behaviour_dist=self.behaviour_probs,
            categories=self.categories or None,
            mode=self.mode,
            random_state=self.seed,
        )
        self.policies[name] = res.to_dict()
        self.behaviour_concentration = res.behaviour_concentration.to_dict()

    def to_dict(self, run_id: str) -> dict[str, Any]:
        n_cat = len(self.categories)
        if n_cat:
            cat_note = (
                f"{n_cat} of the {self.n_top} named items have a category in the raw "
                "events (events.extra key category, category_id or categoryid); the "
                "rest count as (unknown), the other bucket as itself"
            )
        else:
            cat_note = (
                "the raw events carry no item category (no events.extra key category, "
                "category_id or categoryid), so shares are shown by item only"
            )
        return {
            "schema_version": 1,
            "run_id": run_id,
            "dataset_version": self.version,
            "n_decisions": len(self.test),
            "n_actions": len(self.labels),
            "other_label": self._OTHER_LABEL,
            "behaviour_share_source": "logged action frequencies on the test split",
            "policy_share_source": "mean of the policy's action probabilities over the test states",
            "behaviour_top_source": self.behaviour_source,
            "categories": {"available": bool(n_cat), "n_items": n_cat, "note": cat_note},
            "behaviour_concentration": self.behaviour_concentration,
            "policies": self.policies,
        }


def _segments(test: Any, spec: Any, ev: Any) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """(n,) new_user / returning_user label per test decision, and the per-segment counts."""
    from ope.segments import new_user_segments, segment_counts

    labels = new_user_segments(test.states[:, spec.offset("hist_sessions")])
    counts = segment_counts(labels, test.episode_ids)
    counts["evaluated"] = counts["n_episodes"] >= _SEGMENT_MIN_EPISODES
    return labels, [
        {k: (v.item() if isinstance(v, np.generic) else v) for k, v in rec.items()}
        for rec in counts.to_dict("records")
    ]


#: a segment with fewer test sessions gets counts but no estimates
_SEGMENT_MIN_EPISODES = 10


def _segment_rows(
    policy: str,
    probs: np.ndarray,
    segments: np.ndarray,
    test: Any,
    mu: np.ndarray,
    rewards: dict[str, np.ndarray],
    q_hat: dict[str, np.ndarray],
    ev: Any,
    objective: str,
    support: np.ndarray,
    i: int,
) -> pd.DataFrame:
    """The per-decision estimators and the importance-sampling per-session ones of
    ``[evaluate]`` on each segment, for ``objective``."""
    from ope import SequentialOffPolicyEvaluation
    from ope.registry import make_sequential_estimator
    from ope.segments import evaluate_segments

    bandit = _bandit_evaluation(ev)
    seq = tuple(
        make_sequential_estimator(name, gamma=ev.gamma)
        for name in ev.sequential_estimators
        if name not in ("sequential_dr", "wdr")
    )
    results, _ = evaluate_segments(
        segments,
        episode_ids=test.episode_ids,
        reward=rewards[objective],
        action=test.actions,
        pscore=mu,
        action_dist=probs,
        steps=test.steps,
        estimated_rewards_by_reg_model=q_hat.get(objective),
        bandit=bandit,
        sequential=SequentialOffPolicyEvaluation(seq) if seq else None,
        support_mask=support,
        min_episodes=_SEGMENT_MIN_EPISODES,
        alpha=ev.alpha,
        n_bootstrap=ev.n_bootstrap,
        method=ev.interval_method,
        scheme=ev.bootstrap_scheme,
        random_state=int(ev.seed + 1000 * i + 7),
    )
    if results.empty:
        return results
    return results.assign(policy=policy, objective=objective)


def _segment_table(frames: list[pd.DataFrame], run_id: str, prop_source: str) -> pd.DataFrame:
    """The ``segments.parquet`` table: SEGMENT_COLUMNS, typed even when empty."""
    frames = [f for f in frames if not f.empty]
    table = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=list(SEGMENT_COLUMNS))
    )
    table["run_id"] = run_id
    table["propensity_source"] = prop_source
    no_weights = table["estimator"].isin(["dm"])
    for col in ("ess", "max_weight", "p99_weight", "zero_support_share", "unsupported_mass"):
        table.loc[no_weights, col] = np.nan
    table = table[list(SEGMENT_COLUMNS)]
    text = {
        "run_id",
        "segment",
        "policy",
        "estimator",
        "objective",
        "family",
        "interval_method",
        "propensity_source",
    }
    for col in SEGMENT_COLUMNS:
        if col in ("n_decisions", "n_episodes"):
            table[col] = table[col].astype("int64")
        elif col not in text:
            table[col] = table[col].astype("float64")
        else:
            table[col] = table[col].astype(str) if len(table) else table[col].astype(object)
    return table.sort_values(["policy", "segment", "family", "estimator"], ignore_index=True)


def evaluate_run(
    cfg: OffrecConfig,
    run_dir: Path,
    *,
    version: str | None = None,
    simulator_config: Any = None,
    progress: Callable[[str], None] | None = None,
) -> EvaluationResult:
    """Evaluate the run's models and baselines on the test split; write the results files."""
    import time

    from ope import SequentialOffPolicyEvaluation, summarize_kernels
    from ope.fqe import fit_fqe
    from ope.registry import make_sequential_estimator
    from ope.reward_model import fit_reward_model
    from ope.verdict import decide
    from sql.dataset import load_action_space, load_feature_spec, load_transitions

    ev = cfg.evaluate
    run_dir = Path(run_dir)
    run_id = run_dir.name
    wh = cfg.paths.warehouse
    if not wh.exists():
        raise OffrecError(f"{wh}: no warehouse; run `offrec ingest` and `offrec build` first")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    data = load_transitions(wh, version=version)
    spec = load_feature_spec(wh, version=version)
    actions = load_action_space(wh, version=version)
    test, train = data.for_split("test"), data.for_split("train")
    if len(test) == 0:
        raise OffrecError(
            f"dataset {data.version}: the test split is empty; lower [build] split fractions "
            "or load more sessions"
        )
    n, n_actions = len(test), actions.n_actions
    policies = build_policies(cfg, run_dir, train, spec, actions)
    if not policies:
        raise OffrecError(
            f"{run_dir}: no trained models and no baselines to evaluate; run "
            "`offrec train` first or set [evaluate] baselines"
        )
    notes: list[str] = _privacy_notes(wh)
    s_n = spec.normalise(test.states)
    s_next_n = spec.normalise(test.next_states)
    mu, prop_source, behaviour_model, behaviour_probs = _propensities(
        cfg, test, s_n, actions, notes
    )
    rows = np.arange(n)
    eps = test.episode_ids
    timings["load"] = time.perf_counter() - t0

    # reward models per objective (cross-fitted by session)
    t0 = time.perf_counter()
    rewards: dict[str, np.ndarray] = {}
    q_hat: dict[str, np.ndarray] = {}
    need_model = any(e in ("dm", "dr", "sndr", "switch-dr", "dr-os") for e in ev.estimators)
    for obj, col in OBJECTIVES.items():
        rewards[obj] = test.rewards if col is None else test.components[col]
        if need_model:
            if progress:
                progress(f"evaluate: reward model for {obj}")
            rm = fit_reward_model(
                s_n, test.actions, rewards[obj], eps, n_actions, config=ev.reward_model
            )
            q_hat[obj] = rm.q_hat
    timings["reward_models"] = time.perf_counter() - t0

    sim_cfg = _simulator_config(cfg, simulator_config)
    weights = _weights_dict(cfg)
    bandit = _bandit_evaluation(ev)
    seq_all = [make_sequential_estimator(name, gamma=ev.gamma) for name in ev.sequential_estimators]
    seq_is = [
        e
        for e, name in zip(seq_all, ev.sequential_estimators, strict=True)
        if name not in ("sequential_dr", "wdr")
    ]
    support = np.bincount(test.actions, minlength=n_actions) > 0
    common = dict(
        alpha=ev.alpha,
        n_bootstrap=ev.n_bootstrap,
        method=ev.interval_method,
        scheme=ev.bootstrap_scheme,
    )

    frames: list[pd.DataFrame] = []
    summary_extra: dict[str, Any] = {
        "weight_histograms": {},
        "top_items": {},
        "policies": {},
        "fqe": {},
        "ground_truth": {},
    }
    t0 = time.perf_counter()
    explain = _Explainer(cfg, wh, data.version, test, spec, actions, s_n, behaviour_probs)
    segments, segment_counts = _segments(test, spec, ev)
    seg_objective = (
        cfg.report.primary_objective if cfg.report.primary_objective in rewards else "reward"
    )
    seg_frames: list[pd.DataFrame] = []
    timings["explain_setup"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i, put in enumerate(policies):
        if progress:
            progress(f"evaluate: {put.name} ({i + 1}/{len(policies)})")
        probs = put.policy.action_probs(test.states)
        probs_next = put.policy.action_probs(test.next_states)
        target = probs[rows, test.actions]
        summary_extra["weight_histograms"][put.name] = _histogram(target / mu)
        summary_extra["top_items"][put.name] = _top_items(probs, test.actions, actions)
        summary_extra["policies"][put.name] = {"description": put.description, "model": put.model}
        t1 = time.perf_counter()
        explain.add(put.name, probs)
        t2 = time.perf_counter()
        seg_frames.append(
            _segment_rows(
                put.name, probs, segments, test, mu, rewards, q_hat, ev, seg_objective, support, i
            )
        )
        timings["explain"] = timings.get("explain", 0.0) + (t2 - t1)
        timings["segments"] = timings.get("segments", 0.0) + (time.perf_counter() - t2)
        # FQE (combined reward) -> also the model of sequential DR / WDR
        fqe = None
        if ev.fqe_enabled:
            fqe = fit_fqe(
                s_n,
                test.actions,
                rewards["reward"],
                s_next_n,
                test.terminals,
                eps,
                test.steps,
                probs,
                probs_next,
                ev.gamma,
                next_valid=~test.timeouts,
                pscore=mu,
                config=ev.fqe,
            )
            summary_extra["fqe"][put.name] = {
                "value": fqe.value,
                "converged": fqe.converged,
                "diverged": fqe.diverged,
                "warnings": list(fqe.warnings),
                "epochs": fqe.epochs_run,
                "validation_loss": [float(x) for x in fqe.validation_loss],
                "value_curve": [float(x) for x in fqe.value_curve],
            }
            if fqe.diverged:
                notes.append(
                    f"FQE for {put.name} diverged ({'; '.join(fqe.warnings)}); its "
                    "FQE, sequential DR and WDR estimates are withheld"
                )
        for j, (obj, r) in enumerate(rewards.items()):
            rs = int(ev.seed + 1000 * i + 10 * j)
            if bandit is not None:
                t = bandit.summarize(
                    reward=r,
                    action=test.actions,
                    pscore=mu,
                    action_dist=probs,
                    estimated_rewards_by_reg_model=q_hat.get(obj),
                    episode_ids=eps,
                    random_state=rs,
                    support_mask=support,
                    **common,
                )
                t["family"] = "per_decision"
                frames.append(t.assign(policy=put.name, objective=obj))
            ests = seq_all if (obj == "reward" and fqe is not None) else seq_is
            if ests:
                kw: dict[str, Any] = {}
                if fqe is not None and obj == "reward":
                    q_all = fqe.q_values(s_n)
                    kw = {
                        "q_hat": q_all[rows, test.actions],
                        "v_hat": np.einsum("ij,ij->i", q_all, probs),
                    }
                t = SequentialOffPolicyEvaluation(tuple(ests)).summarize(
                    reward=r,
                    episode_ids=eps,
                    steps=test.steps,
                    pscore=mu,
                    target_prob=target,
                    random_state=rs + 1,
                    target_action_dist=probs,
                    support_mask=support,
                    **kw,
                    **common,
                )
                t["family"] = "per_session"
                frames.append(t.assign(policy=put.name, objective=obj))
            if fqe is not None and obj == "reward":
                from ope import OnPolicyReturn

                k = _fqe_kernel(fqe.initial_values, fqe.episode_ids, eps, test.steps)
                base = OnPolicyReturn(gamma=ev.gamma).kernel(
                    reward=r, episode_ids=eps, steps=test.steps
                )
                t = summarize_kernels({"fqe": k}, eps, baseline=base, random_state=rs + 2, **common)
                if ev.fqe.interval_refits:  # add FQE's fitting error (ope.fqe.fqe_interval)
                    from ope.fqe import fqe_interval, widen_rows

                    fiv = fqe_interval(
                        fqe,
                        s_n,
                        test.actions,
                        r,
                        s_next_n,
                        test.terminals,
                        eps,
                        test.steps,
                        probs,
                        probs_next,
                        next_valid=~test.timeouts,
                        pscore=mu,
                        n_refits=ev.fqe.interval_refits,
                        alpha=ev.alpha,
                        n_bootstrap=ev.n_bootstrap,
                        random_state=rs + 3,
                    )
                    t = widen_rows(t, fiv)
                t["family"] = "per_session"
                t["n_decisions"], t["n_episodes"] = n, test.n_episodes
                frames.append(t.assign(policy=put.name, objective=obj))
        if sim_cfg is not None:
            summary_extra["ground_truth"][put.name] = _truth_for(
                put, probs, test, actions, sim_cfg, cfg, weights
            )
    timings["estimators"] = time.perf_counter() - t0
    if ev.fqe_enabled and not ev.fqe.interval_refits:
        notes.append(
            "FQE's intervals resample sessions with the fitted Q held fixed: they leave out the "
            "error of the fit itself and are too narrow (the coverage measured in docs/ope.md is "
            "that of refit-widened intervals). Set [evaluate.fqe] interval_refits = 3 for "
            "honest FQE intervals (3 more fits per policy); read FQE as a direction check"
        )
    table = pd.concat(frames, ignore_index=True)
    diverged = [p for p, f in summary_extra["fqe"].items() if f["diverged"]]
    withheld = table["policy"].isin(diverged) & table["estimator"].isin(
        ["fqe", "sequential_dr", "wdr"]
    )
    table.loc[
        withheld,
        [
            "value",
            "low",
            "high",
            "lift",
            "lift_low",
            "lift_high",
            "rel_lift",
            "rel_lift_low",
            "rel_lift_high",
        ],
    ] = np.nan
    table = _add_behaviour_rows(
        table, rewards, test, ev, common, seq_all, seq_is, has_fqe=ev.fqe_enabled
    )
    if sim_cfg is not None:
        summary_extra["ground_truth"][BEHAVIOUR] = _behaviour_truth(test, sim_cfg, cfg, weights)
        table["ground_truth"] = [
            summary_extra["ground_truth"].get(p, {}).get(f"{fam}:{obj}")
            for p, fam, obj in zip(
                table["policy"], table["family"], table["objective"], strict=True
            )
        ]
    else:
        table["ground_truth"] = np.nan
    table["run_id"] = run_id
    table["propensity_source"] = prop_source
    no_weights = table["estimator"].isin(["dm", "fqe"])
    for col in ("ess", "max_weight", "p99_weight", "zero_support_share", "unsupported_mass"):
        table.loc[no_weights, col] = np.nan
    table = table[_COLUMNS].sort_values(["policy", "objective", "estimator"], ignore_index=True)

    verdict = decide(table, cfg.report, behaviour_policy=BEHAVIOUR)
    summary = {
        "schema_version": 1,
        "run_id": run_id,
        "dataset_version": data.version,
        "behaviour_policy": BEHAVIOUR,
        "propensity_source": prop_source,
        "n_bootstrap": ev.n_bootstrap,
        "gamma": ev.gamma,
        "notes": notes,
        "verdict": verdict.to_dict(),
        **{k: v for k, v in summary_extra.items() if k != "ground_truth"},
        "ground_truth": summary_extra["ground_truth"] if sim_cfg is not None else None,
        "timings": timings,
    }
    if behaviour_model is not None:
        summary["behaviour_model"] = behaviour_model
    seg_table = _segment_table(seg_frames, run_id, prop_source)
    summary["segments"] = {
        "definition": "new_user: a session whose user has no other session with an event in "
        f"the {cfg.build.lookback_days:g}-day lookback before it (state feature "
        "hist_sessions = 0); returning_user: every other session",
        "objective": seg_objective,
        "counts": segment_counts,
    }
    out_dir = run_dir / "evaluation"
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "ope_results.parquet") as tmp:
        table.to_parquet(tmp, index=False)
    with atomic_path(run_dir / SEGMENTS) as tmp:
        seg_table.to_parquet(tmp, index=False)
    explain_doc = json_safe(explain.to_dict(run_id))
    atomic_write_json(run_dir / EXPLAIN, explain_doc)
    atomic_write_json(out_dir / "summary.json", json_safe(summary))
    _store_table(wh, run_id, table)
    _store_table(wh, run_id, seg_table, name="ope_segment_results")
    log_event(
        "evaluate: done",
        policies=len(policies),
        rows=len(table),
        verdict=verdict.to_dict().get("decision"),
    )
    return EvaluationResult(
        table,
        summary,
        [p.name for p in policies],
        out_dir,
        timings,
        explanation=explain_doc,
        segments=seg_table,
    )


#: the report's required ``ope_results`` columns, plus ``family`` (per_decision | per_session)
_COLUMNS = [*RESULT_COLUMNS[:4], "family", *RESULT_COLUMNS[4:]]


def _add_behaviour_rows(
    table: pd.DataFrame,
    rewards: dict[str, np.ndarray],
    test: Any,
    ev: Any,
    common: dict[str, Any],
    seq_all: list[Any],
    seq_is: list[Any],
    *,
    has_fqe: bool,
) -> pd.DataFrame:
    """The logged behaviour's own rows: its on-policy value under every estimator name."""
    from ope import LoggedPolicyValue, OnPolicyReturn, summarize_kernels

    eps = test.episode_ids
    out = []
    for obj, r in rewards.items():
        k_dec = LoggedPolicyValue().kernel(reward=r)
        k_ses = OnPolicyReturn(gamma=ev.gamma).kernel(reward=r, episode_ids=eps, steps=test.steps)
        iv = summarize_kernels(
            {"per_decision": k_dec, "per_session": k_ses}, eps, random_state=ev.seed, **common
        ).set_index("estimator")
        names = [(e, "per_decision") for e in ev.estimators]
        seq = seq_all if (obj == "reward" and has_fqe) else seq_is
        names += [(e.estimator_name, "per_session") for e in seq]
        if has_fqe and obj == "reward":
            names.append(("fqe", "per_session"))
        for est, fam in names:
            row = iv.loc[fam]
            out.append(
                {
                    "policy": BEHAVIOUR,
                    "estimator": est,
                    "objective": obj,
                    "family": fam,
                    "value": row["value"],
                    "low": row["low"],
                    "high": row["high"],
                    "lift": 0.0,
                    "lift_low": 0.0,
                    "lift_high": 0.0,
                    "rel_lift": 0.0,
                    "rel_lift_low": 0.0,
                    "rel_lift_high": 0.0,
                    "alpha": row["alpha"],
                    "interval_method": row["interval_method"],
                    "ess": float(len(test)),
                    "max_weight": 1.0,
                    "p99_weight": 1.0,
                    "zero_support_share": 0.0,
                    "unsupported_mass": 0.0,
                    "n_decisions": len(test),
                    "n_episodes": test.n_episodes,
                }
            )
    return pd.concat([table, pd.DataFrame(out)], ignore_index=True)


def _truth_for(
    put: PolicyUnderTest,
    probs: np.ndarray,
    test: Any,
    actions: Any,
    sim_cfg: Any,
    cfg: OffrecConfig,
    weights: dict[str, float],
) -> dict[str, float]:
    """Simulator ground truth of ``put``: per-decision (each objective) and per-session."""
    from offrec.simulator import StateOptions, per_decision_value, run_policy

    out: dict[str, float] = {}
    for obj in OBJECTIVES:
        w = weights if obj == "reward" else _WEIGHTS_FOR[obj]
        out[f"per_decision:{obj}"] = float(
            np.mean(
                per_decision_value(
                    _simulator_user_ids(test.user_ids, cfg, sim_cfg),
                    test.positions,
                    probs,
                    actions,
                    weights=w,
                    config=sim_cfg,
                )
            )
        )
    b = cfg.build
    opts = StateOptions(
        last_k=b.last_k, item_encoding=b.item_encoding, lookback_days=b.lookback_days
    )
    gt = run_policy(
        put.policy,
        actions,
        n_sessions=cfg.evaluate.ground_truth_sessions,
        seed=cfg.evaluate.seed + 7919,
        weights=weights,
        gamma=cfg.evaluate.gamma,
        config=sim_cfg,
        state_options=opts,
        horizon=b.max_episode_len or None,
    )
    out["per_session:reward"] = gt.value
    out["per_session:reward_se"] = gt.value_se
    return out


def _simulator_user_ids(user_ids: np.ndarray, cfg: OffrecConfig, sim_cfg: Any) -> np.ndarray:
    """The simulator's ids behind ``user_ids``: with ``[ingest] pseudonymise`` on user_id the
    dataset holds keyed pseudonyms, so the simulation's ids are pseudonymised with the same
    key and matched back (ground truth needs the user's number)."""
    if "user_id" not in {f.lower() for f in cfg.ingest.pseudonymise}:
        return user_ids
    from ingest import pseudonymise_ids
    from offrec.simulator.schedule import n_users_for
    from offrec.simulator.world import user_id_strings

    raw = user_id_strings(np.arange(n_users_for(sim_cfg, sim_cfg.n_sessions)))
    back = dict(zip(pseudonymise_ids(raw, cfg.ingest), raw, strict=True))
    return np.array([back.get(u, u) for u in user_ids], dtype=object)


def _behaviour_truth(
    test: Any, sim_cfg: Any, cfg: OffrecConfig, weights: dict[str, float]
) -> dict[str, float]:
    from offrec.simulator import run_behaviour
    from offrec.simulator.truth import behaviour_per_decision_value

    out: dict[str, float] = {}
    for obj in OBJECTIVES:
        w = weights if obj == "reward" else _WEIGHTS_FOR[obj]
        out[f"per_decision:{obj}"] = float(
            np.mean(
                behaviour_per_decision_value(
                    _simulator_user_ids(test.user_ids, cfg, sim_cfg),
                    test.positions,
                    weights=w,
                    config=sim_cfg,
                )
            )
        )
    gt = run_behaviour(
        n_sessions=cfg.evaluate.ground_truth_sessions,
        seed=cfg.evaluate.seed + 7919,
        weights=weights,
        gamma=cfg.evaluate.gamma,
        config=sim_cfg,
        horizon=cfg.build.max_episode_len or None,
    )
    out["per_session:reward"] = gt.value
    out["per_session:reward_se"] = gt.value_se
    return out


def _privacy_notes(warehouse: Path) -> list[str]:
    """A note for the report when the warehouse's user ids are pseudonyms (``[ingest]
    pseudonymise``), so a reader knows the ids in it are not the source system's."""
    from ingest.pseudonymise import pseudonymisation_record

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        record = pseudonymisation_record(con)
    finally:
        con.close()
    if record is None:
        return []
    fields, fingerprint = record
    return [
        f"ids in {', '.join(fields)} were pseudonymised at ingest (keyed HMAC-SHA256, key "
        f"fingerprint {fingerprint}): the warehouse, datasets and this report hold no raw ids; "
        "`offrec pseudonym ID` maps a raw id to its pseudonym"
    ]


def _store_table(
    warehouse: Path, run_id: str, table: pd.DataFrame, name: str = "ope_results"
) -> None:
    """Replace this run's rows of the warehouse table ``name`` (``ope_results`` or
    ``ope_segment_results``; fixed names, never user input)."""
    if name not in ("ope_results", "ope_segment_results"):
        raise OffrecError(f"unknown results table {name!r}")
    con = duckdb.connect(str(warehouse))
    try:
        con.begin()
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = $t "
            "AND table_schema = current_schema()",
            {"t": name},
        ).fetchall()[0][0]
        if table.empty:
            # no rows (e.g. no segment had enough sessions): an empty frame has no column
            # types to create the table from, so only clear this run's earlier rows
            if exists:
                con.execute(f"DELETE FROM {name} WHERE run_id = $run_id", {"run_id": run_id})
            con.commit()
            return
        con.register("new_results", table)
        con.execute(f"CREATE TABLE IF NOT EXISTS {name} AS SELECT * FROM new_results WHERE false")
        con.execute(f"DELETE FROM {name} WHERE run_id = $run_id", {"run_id": run_id})
        con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM new_results")
        con.commit()
    except Exception:
        con.rollback()
        raise
    finally:
        con.close()


def format_changes(explanation: dict[str, Any], segments: pd.DataFrame | None = None) -> str:
    """One line per policy of ``explain.json`` (and its new/returning DR or IPW lift): how
    often it would recommend something other than the behaviour's first choice, the top-k
    share before -> after, the biggest mover."""
    lines = []
    seg = segments if segments is not None and len(segments) else None
    for name, p in explanation.get("policies", {}).items():
        c, b = p["concentration"], p["behaviour_concentration"]
        line = (
            f"{name}: recommends other than the behaviour's first choice on "
            f"{100 * p['disagreement']:.0f}% of decisions; "
            f"top-{c['top_k']} share {100 * b['top_k_share']:.0f}% -> "
            f"{100 * c['top_k_share']:.0f}%"
        )
        if p["gains"]:
            g = p["gains"][0]
            line += (
                f"; gains most: {g['label']} ({100 * g['before']:.1f}% -> {100 * g['after']:.1f}%)"
            )
        if seg is not None:
            rows = seg[(seg["policy"] == name) & (seg["family"] == "per_decision")]
            for est in ("dr", "ipw"):
                pick = rows[rows["estimator"] == est]
                if len(pick):
                    parts = [
                        f"{r.segment} {r.lift:+.4f} [{r.lift_low:+.4f}, {r.lift_high:+.4f}]"
                        for r in pick.itertuples()
                    ]
                    line += f"; {est} lift " + ", ".join(parts)
                    break
        lines.append(line)
    return "\n".join(lines)


def load_segment_results(run_dir: Path) -> pd.DataFrame:
    """The new-user / returning-user estimates of one run (``evaluation/segments.parquet``)."""
    path = Path(run_dir) / SEGMENTS
    if not path.exists():
        raise OffrecError(f"{path}: no segment results; run `offrec evaluate` for this run first")
    return pd.read_parquet(path)


def load_results(run_dir: Path) -> pd.DataFrame:
    """The ``ope_results`` of one run as a DataFrame (the documented Python API)."""
    path = Path(run_dir) / "evaluation" / "ope_results.parquet"
    if not path.exists():
        raise OffrecError(f"{path}: no results; run `offrec evaluate` for this run first")
    return pd.read_parquet(path)
