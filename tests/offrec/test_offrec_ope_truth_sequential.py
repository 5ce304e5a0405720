"""Every OPE estimator against simulator ground truth over 20 seeds, through the real SQL build.

Target policies: uniform random, most-popular (epsilon 0.3), the epsilon-greedy head (epsilon
0.1) of a discrete CQL Q-function *learned* once per test session on an independent seed's logs
(through ``offline_rl``'s public API), and the logging behaviour itself (its true action
probabilities). All four are fixed across seeds (defined in item space on the independent
seed's action space, remapped to each seed's action ids), so each has one ground truth computed
with many simulated sessions.

For each of 20 seeds: simulate logs, load them as warehouse events, build the dataset with the
SQL steps, and estimate on the test split

* per decision (truth: the simulator's exact expected reward at the same logged decisions):
  IPS and DR (cross-fitted reward model);
* per session, the expected discounted return (gamma 0.95; truth: the policy run online in the
  simulator, :func:`offrec.simulator.run_policy`): trajectory IS, PDIS, WPDIS, sequential DR,
  WDR (both with FQE's Q as their model) and FQE itself (importance-weighted regression, its
  interval widened by the spread of refits, see ``ope.fqe.fqe_interval``).

Each estimate comes with a 95% session-bootstrap interval. We report bias, RMSE and coverage per
estimator x policy (docs/ope.md has the table) and assert the goals of issue #6: DR and FQE
cover the truth in >= 85% of (seed, policy) pairs, and the learned policy, truly better than
the behaviour, is called better by DR and FQE on a larger log.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

from offline_rl.config import TrainConfig
from offline_rl.policies import MostPopularPolicy, UniformPolicy
from offline_rl.train import train_algorithms
from offrec.simulator import (
    SimulatorConfig,
    StateOptions,
    behaviour_action_probs,
    per_decision_value,
    run_behaviour,
    run_policy,
    simulate_events,
)
from offrec.simulator.truth import behaviour_per_decision_value
from ope import (
    DoublyRobust,
    InverseProbabilityWeighting,
    PerDecisionImportanceSampling,
    SequentialDoublyRobust,
    SequentialOffPolicyEvaluation,
    TrajectoryWiseImportanceSampling,
    WeightedDoublyRobust,
    WeightedPerDecisionImportanceSampling,
    fit_reward_model,
)
from ope.fqe import FQEConfig, fit_fqe, fqe_interval
from ope.reward_model import RewardModelConfig
from sql.build import build_dataset
from sql.config import BuildConfig
from sql.dataset import load_action_space, load_feature_spec, load_transitions

pytestmark = pytest.mark.slow

N_SEEDS = int(os.environ.get("OFFREC_TRUTH_SEEDS", "20"))
GAMMA = 0.95
N_ITEMS = 25
SESSIONS = 1500
TRUTH_SESSIONS = 20000
POLICY_SEED = 1000  # the independent logs the learned policy and most-popular come from
BUILD = BuildConfig(top_n=N_ITEMS, train_frac=0.3, validation_frac=0.0, test_frac=0.7)
STATE_OPTS = StateOptions(
    last_k=BUILD.last_k, item_encoding=BUILD.item_encoding, lookback_days=BUILD.lookback_days
)
#: an FQE budget for ~3,500 decisions: about 100 passes over the data in all
FQE = FQEConfig(
    hidden_units=(32, 32),
    batch_size=256,
    steps_per_epoch=60,
    max_epochs=10,
    patience=3,
    tau=0.02,
    tolerance=0.02,
    weight_decay=0.1,
    importance_weighting=os.environ.get("OFFREC_TRUTH_FQE_WEIGHTING", "cumulative"),
    refit_on_all=False,
)
RIDGE = RewardModelConfig(kind="ridge")
FQE_REFITS = int(os.environ.get("OFFREC_TRUTH_FQE_REFITS", "3"))
N_BOOT = 400
SEQ_NAMES = ("trajectory_is", "pdis", "wpdis", "sequential_dr", "wdr")


def sim_config(seed: int, n_sessions: int = SESSIONS) -> SimulatorConfig:
    return SimulatorConfig(seed=seed, world_seed=1, n_sessions=n_sessions, n_items=N_ITEMS)


@dataclass
class Built:
    test: Any
    train: Any
    spec: Any
    space: Any


def build(seed: int, tmp: Path, n_sessions: int = SESSIONS, cfg: BuildConfig = BUILD) -> Built:
    """Simulate ``seed``'s logs, load them as warehouse events and run the SQL build."""
    logs = simulate_events(sim_config(seed, n_sessions))
    con = duckdb.connect(str(tmp / f"w{seed}_{n_sessions}.duckdb"))
    try:
        con.register("raw_events", logs.events)
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            "CREATE TABLE events AS SELECT event_id, ts::TIMESTAMP AS ts, user_id, session_id, "
            "event_type, item_id, position, propensity, price, request_id, NULL::JSON AS extra, "
            "'sim' AS source_file, row_number() OVER () AS source_row, now() AS ingested_at "
            "FROM raw_events"
        )
        build_dataset(con, cfg, datasets_dir=tmp / f"d{seed}_{n_sessions}")
        return Built(
            load_transitions(con, split="test"),
            load_transitions(con, split="train"),
            load_feature_spec(con),
            load_action_space(con),
        )
    finally:
        con.close()


class Remapped:
    """A policy defined on one action space, run on a dataset whose action ids differ.

    Both spaces hold the same items (all ``N_ITEMS`` are top items), only the order differs:
    the index features and the one-hot bag of the states are translated into the policy's ids
    and the returned probabilities back into the dataset's.
    """

    def __init__(self, policy: Any, own: Any, data_space: Any, spec: Any) -> None:
        own_items = list(own.top_items) + [None]
        data_items = list(data_space.top_items) + [None]
        if sorted(map(str, own_items)) != sorted(map(str, data_items)):
            raise AssertionError("the two action spaces hold different items")
        a = len(own_items)
        self.to_own = np.array([own_items.index(i) for i in data_items] + [a])  # NONE stays
        self.policy, self.name, self.n_actions = policy, policy.name, a
        self.index_cols = [spec.offset(n) for n in spec.names
                           if n.startswith(("prev_action_", "last_item_"))]
        self.bag = spec.offset("bag_0")

    def action_probs(self, states: np.ndarray) -> np.ndarray:
        s = np.array(states, dtype=np.float32, copy=True)
        for c in self.index_cols:
            s[:, c] = self.to_own[s[:, c].astype(np.int64)]
        bag = states[:, self.bag : self.bag + self.n_actions]
        s[:, self.bag + self.to_own[: self.n_actions]] = bag
        return self.policy.action_probs(s)[:, self.to_own[: self.n_actions]]


class ItemsOnly:
    """``policy`` with the mass it gives the empty ``other`` bucket spread over the real items.

    Every catalog item is a top item here, so ``other`` shows nothing; the simulator refuses
    probability on it. The rows are renormalised over the real items.
    """

    def __init__(self, policy: Any) -> None:
        self.policy, self.name, self.n_actions = policy, policy.name, policy.n_actions

    def action_probs(self, states: np.ndarray) -> np.ndarray:
        p = np.array(self.policy.action_probs(states), dtype=np.float64, copy=True)
        p[:, -1] = 0.0
        return p / p.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def setting(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The learned policy (CQL on independent logs), most-popular, uniform, and their truths."""
    tmp = tmp_path_factory.mktemp("truth_policies")
    base = build(POLICY_SEED, tmp, n_sessions=4000, cfg=replace(BUILD, train_frac=0.9, test_frac=0.1,
                                                                 validation_frac=0.0))
    space = base.space
    train_cfg = TrainConfig(algorithms=("cql",), n_steps=3000, n_steps_per_epoch=1000,
                            gamma=GAMMA, seed=0, threads=1)
    models = train_algorithms(base.train, None, base.spec, space, train_cfg, tmp / "run")
    model = models["cql"]
    assert len(model.metrics) == 3 and all(m.get("loss", 1.0) == m.get("loss", 1.0)
                                           for m in model.metrics), model.metrics
    learned = model.policy("epsilon_greedy", epsilon=0.1)
    learned.name = "cql_eps"
    assert len(space.other_items) == 0, space.other_items
    counts = np.bincount(base.train.actions, minlength=space.n_actions)
    policies = {
        "uniform": ItemsOnly(UniformPolicy(space.n_actions)),
        "most_popular": ItemsOnly(MostPopularPolicy(counts, epsilon=0.3)),
        "cql_eps": ItemsOnly(learned),
    }
    truth = {}
    for name, pol in policies.items():
        gt = run_policy(pol, space, n_sessions=TRUTH_SESSIONS, seed=777, gamma=GAMMA,
                        config=sim_config(0), state_options=STATE_OPTS)
        truth[name] = (gt.value, gt.value_se)
    gt = run_behaviour(n_sessions=TRUTH_SESSIONS, seed=777, gamma=GAMMA, config=sim_config(0))
    truth["behaviour"] = (gt.value, gt.value_se)
    return {"policies": policies, "space": space, "truth": truth, "tmp": tmp}


def _fqe_estimate(b: Built, s_n: np.ndarray, ns_n: np.ndarray, probs: np.ndarray,
                  probs_next: np.ndarray, pscore: np.ndarray, seed: int,
                  n_refits: int = FQE_REFITS, config: FQEConfig = FQE) -> tuple[Any, Any]:
    t = b.test
    fit = fit_fqe(s_n, t.actions, t.rewards, ns_n, t.terminals, t.episode_ids, t.steps, probs,
                  probs_next, GAMMA, next_valid=~t.timeouts, pscore=pscore,
                  config=replace(config, seed=seed))
    iv = fqe_interval(fit, s_n, t.actions, t.rewards, ns_n, t.terminals, t.episode_ids, t.steps,
                      probs, probs_next, next_valid=~t.timeouts, pscore=pscore,
                      n_refits=n_refits, n_bootstrap=N_BOOT, random_state=seed)
    return fit, iv


def evaluate_seed(seed: int, setting: dict[str, Any]) -> list[dict[str, Any]]:
    """Every estimator for every policy on ``seed``'s test split, with the truths."""
    b = build(seed, setting["tmp"])
    t, space, spec = b.test, b.space, b.spec
    cfg = sim_config(seed)
    a = space.n_actions
    s_n, ns_n = spec.normalise(t.states), spec.normalise(t.next_states)
    rows_idx = np.arange(len(t))
    q_reward = fit_reward_model(s_n, t.actions, t.rewards, t.episode_ids, a, config=RIDGE).q_hat
    out: list[dict[str, Any]] = []
    targets: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
    for name, pol in setting["policies"].items():
        wrapped = Remapped(pol, setting["space"], space, spec)
        probs = wrapped.action_probs(t.states)
        probs_next = wrapped.action_probs(t.next_states)
        dec_truth = float(np.mean(per_decision_value(t.user_ids, t.positions, probs, space,
                                                     config=cfg)))
        targets[name] = (probs, probs_next, dec_truth)
    b_probs = behaviour_action_probs(t.user_ids, t.positions, space, config=cfg)
    b_truth = float(np.mean(behaviour_per_decision_value(t.user_ids, t.positions, config=cfg)))
    targets["behaviour"] = (b_probs, b_probs, b_truth)
    for k, (name, (probs, probs_next, dec_truth)) in enumerate(targets.items()):
        rs = 100 * seed + k
        ses_truth = setting["truth"][name][0]
        for est in (InverseProbabilityWeighting(), DoublyRobust()):
            kw = {"estimated_rewards_by_reg_model": q_reward} if isinstance(est, DoublyRobust) \
                else {}
            iv = est.estimate_interval(reward=t.rewards, action=t.actions, pscore=t.propensities,
                                       action_dist=probs, episode_ids=t.episode_ids,
                                       n_bootstrap_samples=N_BOOT, random_state=rs, **kw)
            out.append(_row(seed, name, est.estimator_name, iv.point, iv.low, iv.high, dec_truth))
        fit, fiv = _fqe_estimate(b, s_n, ns_n, probs, probs_next, t.propensities, rs)
        out.append(_row(seed, name, "fqe", fiv.point, fiv.low, fiv.high, ses_truth,
                        diverged=fit.diverged) | {"boot_se": fiv.bootstrap_se,
                                                  "refit_se": fiv.refit_se})
        q_all = fit.q_values(s_n)
        table = SequentialOffPolicyEvaluation((
            TrajectoryWiseImportanceSampling(gamma=GAMMA),
            PerDecisionImportanceSampling(gamma=GAMMA),
            WeightedPerDecisionImportanceSampling(gamma=GAMMA),
            SequentialDoublyRobust(gamma=GAMMA),
            WeightedDoublyRobust(gamma=GAMMA),
        )).summarize(reward=t.rewards, episode_ids=t.episode_ids, steps=t.steps,
                     pscore=t.propensities, target_prob=probs[rows_idx, t.actions],
                     q_hat=q_all[rows_idx, t.actions], v_hat=np.einsum("ij,ij->i", q_all, probs),
                     n_bootstrap=N_BOOT, random_state=rs, compare_to_logged=False)
        for r in table.itertuples():
            out.append(_row(seed, name, r.estimator, r.value, r.low, r.high, ses_truth))
    return out


def _row(seed: int, policy: str, estimator: str, value: float, low: float, high: float,
         truth: float, diverged: bool = False) -> dict[str, Any]:
    return {"seed": seed, "policy": policy, "estimator": estimator, "value": float(value),
            "low": float(low), "high": float(high), "truth": float(truth), "diverged": diverged}


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Bias, relative bias, RMSE, coverage and mean interval width per estimator x policy."""
    r = rows.assign(err=rows.value - rows.truth,
                    cover=(rows.low <= rows.truth) & (rows.truth <= rows.high),
                    width=rows.high - rows.low)
    g = r.groupby(["estimator", "policy"], sort=False)
    return pd.DataFrame({
        "truth": g.truth.mean(),
        "bias": g.err.mean(),
        "rel_bias": g.err.mean() / g.truth.mean(),
        "rmse": g.err.apply(lambda e: math.sqrt(float(np.mean(e**2)))),
        "coverage": g.cover.mean(),
        "width": g.width.mean(),
    }).reset_index()


@pytest.fixture(scope="module")
def study(setting: dict[str, Any]) -> pd.DataFrame:
    rows = [r for seed in range(N_SEEDS) for r in evaluate_seed(seed, setting)]
    return pd.DataFrame(rows)


def test_the_learned_policy_took_steps_and_is_truly_better(setting: dict[str, Any]) -> None:
    (v_l, se_l), (v_b, se_b) = setting["truth"]["cql_eps"], setting["truth"]["behaviour"]
    assert v_l - v_b > 3 * math.hypot(se_l, se_b), setting["truth"]


def test_every_estimator_against_the_truth(study: pd.DataFrame) -> None:
    study.to_csv(os.environ.get("OFFREC_TRUTH_CSV", os.devnull), index=False)
    summary = summarise(study)
    text = summary.to_string(index=False, float_format=lambda x: f"{x:.3f}")
    print("\n" + text)
    by_est = summarise(study.assign(policy="all"))
    print(by_est.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    cov = by_est.set_index("estimator").coverage
    # the goals of issue #6
    assert cov["dr"] >= 0.85, text
    assert cov["fqe"] >= 0.85, text
    assert cov["ipw"] >= 0.85, text
    # unbiased per-decision estimators are unbiased on average, for every policy
    for est in ("ipw", "dr"):
        sel = summary[summary.estimator == est]
        assert (sel.rel_bias.abs() < 0.05).all(), (est, text)
    # FQE (cumulative importance weights) is within 20% of the truth for every policy, and
    # within 5% pooled; its relative RMSE stays below 0.45 (measured 0.12-0.38)
    sel = summary[summary.estimator == "fqe"]
    assert (sel.rel_bias.abs() < 0.2).all(), text
    assert abs(by_est.set_index("estimator").rel_bias["fqe"]) < 0.05, text
    assert (sel.rmse / sel.truth < 0.45).all(), text
    # per-session IS estimators with light weights (uniform, most-popular, behaviour) are
    # nearly unbiased; on the near-deterministic learned policy they are not (see docs/ope.md)
    for est in ("pdis", "wpdis"):
        light = summary[(summary.estimator == est) & (summary.policy != "cql_eps")]
        assert (light.rel_bias.abs() < 0.08).all(), (est, text)
        assert (light.coverage >= 0.8).all(), (est, text)
    # on the behaviour itself every per-session estimator is the on-policy return: it covers
    beh = summary[(summary.policy == "behaviour") & (summary.estimator != "fqe")
                  & summary.estimator.isin(SEQ_NAMES)]
    assert (beh.coverage >= 0.85).all(), text
    # the runaway rule fires rarely (measured: 3 of 80 fits, all well above the truth); the
    # flagged fits still count above, as the evaluate stage would withhold them
    fqe_rows = study[study.estimator == "fqe"]
    assert fqe_rows.diverged.mean() <= 0.1, fqe_rows[fqe_rows.diverged]


def test_dr_and_fqe_call_the_truly_better_learned_policy_better(
    setting: dict[str, Any],
) -> None:
    """On a larger log (3,500 test sessions) DR and FQE call the truly better learned policy
    better: DR's per-decision lift interval excludes 0, FQE's per-session lift is positive and
    its interval (paired bootstrap widened by the refit spread) covers the true gap. The truth
    gaps are checked first (per decision and per session, both positive)."""
    from ope import LoggedPolicyValue, OnPolicyReturn, compare
    from ope.intervals import normal_quantile
    from ope.kernel import Kernel

    seed = 500
    b = build(seed, setting["tmp"], n_sessions=5000)
    t, space, spec = b.test, b.space, b.spec
    cfg = sim_config(seed, 5000)
    pol = Remapped(setting["policies"]["cql_eps"], setting["space"], space, spec)
    probs, probs_next = pol.action_probs(t.states), pol.action_probs(t.next_states)
    truth_dec = float(np.mean(per_decision_value(t.user_ids, t.positions, probs, space,
                                                 config=cfg)))
    truth_b = float(np.mean(behaviour_per_decision_value(t.user_ids, t.positions, config=cfg)))
    (v_l, _), (v_b, _) = setting["truth"]["cql_eps"], setting["truth"]["behaviour"]
    assert truth_dec > truth_b and v_l > v_b
    eps = t.episode_ids
    s_n, ns_n = spec.normalise(t.states), spec.normalise(t.next_states)
    q = fit_reward_model(s_n, t.actions, t.rewards, eps, space.n_actions, config=RIDGE).q_hat
    dr = DoublyRobust().kernel(reward=t.rewards, action=t.actions, pscore=t.propensities,
                               action_dist=probs, estimated_rewards_by_reg_model=q)
    c = compare(dr, LoggedPolicyValue().kernel(reward=t.rewards), eps, n_bootstrap=N_BOOT,
                random_state=0)
    assert c.difference.low > 0, c.difference

    fit, iv = _fqe_estimate(b, s_n, ns_n, probs, probs_next, t.propensities, seed, n_refits=8)
    assert not fit.diverged, fit.warnings
    first = np.flatnonzero(t.steps == 0)
    lookup = dict(zip(fit.episode_ids.tolist(), fit.initial_values.tolist(), strict=True))
    comp = np.zeros((len(t), 2))
    comp[first, 0] = [lookup[e] for e in eps[first].tolist()]
    comp[first, 1] = 1.0
    fqe_k = Kernel.ratio(comp[:, 0], comp[:, 1], name="fqe")  # sum of initial values / sessions
    base = OnPolicyReturn(gamma=GAMMA).kernel(reward=t.rewards, episode_ids=eps, steps=t.steps)
    cf = compare(fqe_k, base, eps, method="normal")
    z = normal_quantile(0.05)
    half = math.hypot((cf.difference.high - cf.difference.low) / 2, z * iv.extra_se)
    lift = cf.difference.point
    print(f"\nDR lift {c.difference.point:+.3f} [{c.difference.low:+.3f}, {c.difference.high:+.3f}]"
          f" (truth {truth_dec - truth_b:+.3f}); FQE lift {lift:+.3f} "
          f"[{lift - half:+.3f}, {lift + half:+.3f}] (truth {v_l - v_b:+.3f}), refits "
          f"{np.round(iv.refit_values, 2).tolist()}")
    # FQE calls it better (measured +0.55 against a true +0.50) and its honest interval covers
    # the true gap, but is too wide to exclude 0 at this size (measured [-0.36, +1.45])
    assert lift > 0
    assert lift - half <= v_l - v_b <= lift + half
