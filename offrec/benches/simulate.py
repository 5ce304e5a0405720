"""``offrec bench simulate``: the vectorised simulator against a per-session Python loop.

The baseline is the straightforward way to write the same model (gym-style): one session at
a time, one step at a time, ``Generator.choice`` for the item, scalar Bernoulli draws for the
responses, and (for ground truth) the state features updated in plain Python and the policy
called on one state per step. It uses the same world (catalog, users, response and behaviour
probabilities), so both sides draw from the same distribution; the reported extras (events
per session, value) let a reader check that they agree.

Comparisons (``--scale`` multiplies the sizes):

* ``logs``: simulate the behaviour policy's sessions into an Arrow event table;
* ``ground_truth``: run a uniform policy online over a 51-action space (states computed for
  every decision) and average its discounted return.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from offrec.bench import BenchOptions, BenchSuite, Comparison, Contender
from offrec.simulator.actions import resolve_action_space
from offrec.simulator.config import (
    MAX_CART_DELAY_MS,
    MAX_CLICK_DELAY_MS,
    MAX_DWELL_MS,
    MAX_PURCHASE_DELAY_MS,
    MIN_CART_DELAY_MS,
    MIN_CLICK_DELAY_MS,
    MIN_DWELL_MS,
    MIN_PURCHASE_DELAY_MS,
    RewardWeights,
    SimulatorConfig,
    StateOptions,
)
from offrec.simulator.events import RAW_SCHEMA
from offrec.simulator.generate import simulate_events
from offrec.simulator.schedule import allocate_sessions
from offrec.simulator.truth import run_policy
from offrec.simulator.world import World

__all__ = ["suite", "loop_simulate_events", "loop_run_policy", "UniformPolicy"]

_GAMMA = 0.95


class UniformPolicy:
    """Every action with probability 1/A (the bench's target policy)."""

    def __init__(self, n_actions: int) -> None:
        self.name = "uniform"
        self.n_actions = n_actions

    def action_probs(self, states: np.ndarray) -> np.ndarray:
        return np.full((states.shape[0], self.n_actions), 1.0 / self.n_actions)


def _session_starts(cfg: SimulatorConfig, m: int, rng: np.random.Generator) -> list[int]:
    free = cfg.n_days * 86_400_000 - cfg.max_session_ms - (m - 1) * cfg.session_spacing_ms
    offsets = sorted(int(rng.random() * free) for _ in range(m))
    return [cfg.start_ms + k * cfg.session_spacing_ms + offsets[k] for k in range(m)]


def loop_simulate_events(cfg: SimulatorConfig, n_sessions: int, seed: int) -> pa.Table:
    """Baseline: the behaviour policy's logs, one session and one step at a time."""
    world = World(cfg)
    counts = allocate_sessions(world, n_sessions, seed)
    rng = np.random.default_rng([seed, 99])
    cat = world.catalog
    n_items = cat.n_items
    rows: list[tuple] = []
    for user in range(counts.shape[0]):
        users = world.users(np.array([user]))
        resp = world.responses(users)
        pb = world.behaviour_probs(users, resp.affinity)[0]
        uid = f"u{user:07d}"
        for rank, start in enumerate(_session_starts(cfg, int(counts[user]), rng)):
            sid = f"{uid}-s{rank:04d}"
            t = start
            for step in range(cfg.max_steps):
                pos = int(rng.integers(cfg.n_positions))
                item = int(rng.choice(n_items, p=pb))
                req = f"{sid}-t{step:03d}"
                iid = cat.item_ids[item]
                price = float(cat.price[item])
                rows.append(
                    (f"{req}-imp", t, uid, sid, "impression", iid, pos, float(pb[item]), price, req)
                )
                last = t
                click = rng.random() < world.examination[pos] * resp.click[0, item]
                cart = purchase = False
                if click:
                    last += int(rng.integers(MIN_CLICK_DELAY_MS, MAX_CLICK_DELAY_MS + 1))
                    rows.append(
                        (f"{req}-clk", last, uid, sid, "click", iid, None, None, price, req)
                    )
                    cart = rng.random() < resp.cart[0, item]
                if cart:
                    last += int(rng.integers(MIN_CART_DELAY_MS, MAX_CART_DELAY_MS + 1))
                    rows.append(
                        (f"{req}-atc", last, uid, sid, "add_to_cart", iid, None, None, price, req)
                    )
                    purchase = rng.random() < resp.purchase[0, item]
                if purchase:
                    last += int(rng.integers(MIN_PURCHASE_DELAY_MS, MAX_PURCHASE_DELAY_MS + 1))
                    rows.append(
                        (f"{req}-pur", last, uid, sid, "purchase", iid, None, None, price, req)
                    )
                logit = (
                    cfg.continue_bias
                    + cfg.continue_click * click
                    + cfg.continue_purchase * purchase
                )
                if rng.random() >= 1.0 / (1.0 + math.exp(-logit)):
                    break
                t = last + int(rng.integers(MIN_DWELL_MS, MAX_DWELL_MS + 1))
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in RAW_SCHEMA]
    arrays = [
        pa.array(list(col), type=f.type if f.name != "ts" else pa.int64())
        for col, f in zip(columns, RAW_SCHEMA, strict=True)
    ]
    arrays[1] = pc.multiply(arrays[1], 1000).cast(pa.timestamp("us", tz="UTC"))
    return pa.Table.from_arrays(arrays, schema=RAW_SCHEMA)


def loop_run_policy(
    policy: UniformPolicy,
    action_space: object,
    cfg: SimulatorConfig,
    n_sessions: int,
    seed: int,
    gamma: float,
) -> float:
    """Baseline ground truth: per-session loop, Python state features, one policy call a step.

    Returns the mean discounted realised return per session.
    """
    world = World(cfg)
    resolved = resolve_action_space(world.catalog, action_space)
    opts = StateOptions()
    k, n_act = opts.last_k, resolved.n_actions
    none = n_act
    weights = RewardWeights()
    counts = allocate_sessions(world, n_sessions, seed)
    rng = np.random.default_rng([seed, 98])
    price = world.catalog.price
    total = 0.0
    for user in range(counts.shape[0]):
        resp = world.responses(world.users(np.array([user])))
        purchases: list[tuple[int, float]] = []
        ends: list[int] = []
        for start in _session_starts(cfg, int(counts[user]), rng):
            lower = start - opts.lookback_ms
            hist = [
                sum(e >= lower for e in ends),
                sum(ts >= lower for ts, _ in purchases),
                sum(p for ts, p in purchases if ts >= lower),
            ]
            prev: list[int] = []
            recent: list[int] = []
            n_click = n_cart = n_purchase = 0
            t, last_event, ret = start, None, 0.0
            for step in range(cfg.max_steps):
                pos = int(rng.integers(cfg.n_positions))
                days = t // 86_400_000
                state = [step] + (prev + [none] * k)[:k] + (recent + [none] * k)[:k]
                state += [
                    0,
                    n_click,
                    n_cart,
                    n_purchase,
                    (t - start) / 1000,
                    0.0 if last_event is None else (t - last_event) / 1000,
                    (t - days * 86_400_000) // 3_600_000,
                    (days + 3) % 7,
                    pos,
                ] + hist
                bag = [0.0] * n_act
                for a in recent[:k]:
                    bag[a] += 1
                probs = policy.action_probs(np.array([state + bag], dtype=np.float32))[0]
                action = int(rng.choice(n_act, p=probs))
                if action == resolved.other:
                    item = int(resolved.other_index[rng.integers(resolved.other_index.size)])
                else:
                    item = int(resolved.top_index[action])
                item_action = int(resolved.item_action[item])
                last = t
                click = rng.random() < world.examination[pos] * resp.click[0, item]
                cart = click and rng.random() < resp.cart[0, item]
                purchase = cart and rng.random() < resp.purchase[0, item]
                reward = (
                    weights.click * click
                    + weights.add_to_cart * cart
                    + (weights.purchase + weights.revenue * price[item]) * purchase
                )
                ret += gamma**step * reward
                for flag, lo, hi in (
                    (click, MIN_CLICK_DELAY_MS, MAX_CLICK_DELAY_MS),
                    (cart, MIN_CART_DELAY_MS, MAX_CART_DELAY_MS),
                    (purchase, MIN_PURCHASE_DELAY_MS, MAX_PURCHASE_DELAY_MS),
                ):
                    if flag:
                        last += int(rng.integers(lo, hi + 1))
                        recent.insert(0, item_action)
                n_click, n_cart, n_purchase = n_click + click, n_cart + cart, n_purchase + purchase
                if purchase:
                    purchases.append((last, float(price[item])))
                prev.insert(0, item_action)
                last_event = last
                logit = (
                    cfg.continue_bias
                    + cfg.continue_click * click
                    + cfg.continue_purchase * purchase
                )
                if rng.random() >= 1.0 / (1.0 + math.exp(-logit)):
                    break
                t = last + int(rng.integers(MIN_DWELL_MS, MAX_DWELL_MS + 1))
            ends.append(last_event if last_event is not None else start)
            total += ret
    return total / n_sessions


def suite(opts: BenchOptions) -> BenchSuite:
    cfg = SimulatorConfig()
    n_logs = max(100, int(round(20_000 * opts.scale)))
    n_truth = max(100, int(round(5_000 * opts.scale)))
    world = World(cfg)
    from sql.dataset import ActionSpace

    top = tuple(world.catalog.item_ids[np.argsort(-world.catalog.popularity, kind="stable")][:50])
    space = ActionSpace(top)
    policy = UniformPolicy(space.n_actions)

    def ours_logs() -> dict[str, object]:
        logs = simulate_events(cfg, n_sessions=n_logs, seed=opts.seed)
        return {
            "events": logs.summary.n_events,
            "events_per_session": round(logs.summary.n_events / n_logs, 3),
        }

    def loop_logs() -> dict[str, object]:
        table = loop_simulate_events(cfg, n_logs, opts.seed)
        return {"events": table.num_rows, "events_per_session": round(table.num_rows / n_logs, 3)}

    def ours_truth() -> dict[str, object]:
        gt = run_policy(policy, space, n_sessions=n_truth, seed=opts.seed, gamma=_GAMMA, config=cfg)
        return {"value": round(float(gt.value), 4), "value_se": round(float(gt.value_se), 4)}

    def loop_truth() -> dict[str, object]:
        value = loop_run_policy(policy, space, cfg, n_truth, opts.seed, _GAMMA)
        return {"value": round(float(value), 4)}

    return BenchSuite(
        stage="simulate",
        comparisons=(
            Comparison(
                name="logs",
                ours=Contender("offrec vectorised", ours_logs),
                baselines=(Contender("per-session python loop", loop_logs),),
                n_items=n_logs,
                unit="sessions",
                goal="100k sessions well under a minute on 2 cores",
            ),
            Comparison(
                name="ground_truth",
                ours=Contender("offrec vectorised", ours_truth),
                baselines=(Contender("per-session python loop", loop_truth),),
                n_items=n_truth,
                unit="sessions",
                goal="uniform policy, states for every decision, gamma 0.95",
            ),
        ),
        notes=f"behaviour logs: {n_logs} sessions; ground truth: {n_truth} sessions "
        "(same model; compare events_per_session and value in --json extras)",
    )
