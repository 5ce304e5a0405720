"""The vectorised session loop shared by log generation and ground truth.

For one block of users, sessions run in *waves*: wave ``w`` holds every user's ``w``-th session,
so a session starts only after all earlier sessions of its user are complete (the ``hist_*``
features need them). Within a wave all sessions advance one step at a time with numpy:

1. draw the slot ``position ~ Uniform{0..n_positions-1}``;
2. (if states are needed) compute the raw state of every active session;
3. the chooser picks an item (behaviour policy, or a :class:`Policy` over the action space)
   and reports its propensity and the exact expected immediate reward of its distribution;
4. draw click, add_to_cart, purchase in that order (each only after the previous one) and
   their delays; the session continues with ``P = sigmoid(continue_bias + continue_click *
   click + continue_purchase * purchase)`` and at most ``max_steps`` steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

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
    StateOptions,
)
from offrec.simulator.errors import SimulatorError
from offrec.simulator.features import SessionStates, UserHistory, feature_names
from offrec.simulator.schedule import BlockPlan
from offrec.simulator.world import ResponseModel, Users, World

__all__ = [
    "Chooser",
    "BehaviourChooser",
    "PolicyChooser",
    "StateSetup",
    "StepLog",
    "simulate_block",
    "check_action_probs",
]

_DELAY_LOW = np.array(
    [MIN_CLICK_DELAY_MS, MIN_CART_DELAY_MS, MIN_PURCHASE_DELAY_MS, MIN_DWELL_MS], dtype=np.int64
)
_DELAY_HIGH = np.array(
    [MAX_CLICK_DELAY_MS, MAX_CART_DELAY_MS, MAX_PURCHASE_DELAY_MS, MAX_DWELL_MS], dtype=np.int64
)


class Chooser(Protocol):
    """Picks the shown item for each active session of a step."""

    def prepare(self, users: Users, responses: ResponseModel) -> None:
        """Called once per block with the block's users and their response model."""

    def choose(
        self,
        user_rows: np.ndarray,
        states: np.ndarray | None,
        positions: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """-> (item index (m,), propensity (m,), expected immediate reward (m,))."""
        ...


def _sample_rows(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of ``probs`` (rows sum to one), by inverse CDF."""
    u = rng.random(probs.shape[0])
    cdf = np.cumsum(probs, axis=1)
    idx = (cdf <= u[:, None]).sum(axis=1)
    # guard against rounding in the last cumulative value: never pick a zero-probability column
    last_positive = probs.shape[1] - 1 - np.argmax(probs[:, ::-1] > 0, axis=1)
    return np.minimum(idx, last_positive)


class BehaviourChooser:
    """The logging policy: item ``i`` with probability ``pi_b(i | u)`` (see World)."""

    def __init__(self, world: World, weights: RewardWeights) -> None:
        self.world = world
        self.weights = weights

    def prepare(self, users: Users, responses: ResponseModel) -> None:
        self.probs = self.world.behaviour_probs(users, responses.affinity)
        reward = responses.expected_reward(self.world.catalog.price, self.weights)
        self.value = (self.probs * reward).sum(axis=1)
        # Row r's CDF shifted by r: one increasing array, so one searchsorted samples all rows.
        n, n_items = self.probs.shape
        self.flat_cdf = (np.cumsum(self.probs, axis=1) + np.arange(n)[:, None]).ravel()

    def choose(
        self,
        user_rows: np.ndarray,
        states: np.ndarray | None,
        positions: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n_items = self.probs.shape[1]
        u = rng.random(user_rows.shape[0])
        flat = np.searchsorted(self.flat_cdf, user_rows + u, side="right")
        item = np.clip(flat - user_rows * n_items, 0, n_items - 1)
        propensity = self.probs[user_rows, item]
        expected = self.world.examination[positions] * self.value[user_rows]
        return item, propensity, expected


def check_action_probs(probs: object, n_rows: int, n_actions: int, name: str) -> np.ndarray:
    """Validate a policy's ``action_probs`` output; return it as float64 rows summing to one.

    Raises SimulatorError naming the policy, the problem and the first offending row.
    """
    try:
        arr = np.asarray(probs, dtype=np.float64)
    except (TypeError, ValueError):
        raise SimulatorError(
            f"policy {name!r}: action_probs returned {type(probs).__name__}, not a numeric "
            f"array of shape ({n_rows}, {n_actions})"
        ) from None
    if arr.shape != (n_rows, n_actions):
        raise SimulatorError(
            f"policy {name!r}: action_probs returned shape {arr.shape}, expected "
            f"({n_rows}, {n_actions}) = (states, actions of the action space)"
        )
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise SimulatorError(f"policy {name!r}: action_probs row {row} has NaN or inf values")
    if (arr < -1e-6).any():
        row = int(np.flatnonzero((arr < -1e-6).any(axis=1))[0])
        raise SimulatorError(
            f"policy {name!r}: action_probs row {row} has a negative probability "
            f"({arr[row].min():.3g})"
        )
    sums = arr.sum(axis=1)
    off = np.abs(sums - 1.0) > 1e-4
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise SimulatorError(
            f"policy {name!r}: action_probs row {row} sums to {sums[row]:.6g}, not 1; "
            "return probabilities (e.g. a softmax), not scores"
        )
    arr = np.clip(arr, 0.0, None)
    return arr / arr.sum(axis=1, keepdims=True)


class PolicyChooser:
    """A :class:`Policy` over an action space: top action ``a`` shows item ``top[a]``; ``other``
    shows an item of ``other_items`` uniformly at random.

    Propensity of the shown item: ``pi(a | s)`` for a top item, ``pi(other | s) / n_other`` for
    an item of the other bucket. Expected reward: ``exam[pos] * sum_a pi(a | s) R(u, a)`` with
    ``R(u, other)`` the mean of ``G(u, i)`` over the other bucket.
    """

    def __init__(
        self,
        world: World,
        policy: object,
        top_index: np.ndarray,
        other_index: np.ndarray,
        weights: RewardWeights,
    ) -> None:
        self.world = world
        self.policy = policy
        self.name = str(getattr(policy, "name", type(policy).__name__))
        self.top_index = top_index
        self.other_index = other_index
        self.n_actions = top_index.shape[0] + 1
        self.weights = weights

    def prepare(self, users: Users, responses: ResponseModel) -> None:
        reward = responses.expected_reward(self.world.catalog.price, self.weights)
        other = (
            reward[:, self.other_index].mean(axis=1)
            if self.other_index.size
            else np.zeros(len(users))
        )
        self.action_reward = np.concatenate([reward[:, self.top_index], other[:, None]], axis=1)

    def choose(
        self,
        user_rows: np.ndarray,
        states: np.ndarray | None,
        positions: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if states is None:
            raise SimulatorError("internal: a policy run needs states (StateSetup missing)")
        m = user_rows.shape[0]
        raw = self.policy.action_probs(states.astype(np.float32))  # type: ignore[attr-defined]
        probs = check_action_probs(raw, m, self.n_actions, self.name)
        other = self.n_actions - 1
        n_other = self.other_index.shape[0]
        if n_other == 0 and (probs[:, other] > 0).any():
            row = int(np.flatnonzero(probs[:, other] > 0)[0])
            raise SimulatorError(
                f"policy {self.name!r}: row {row} gives probability {probs[row, other]:.3g} to "
                "'other', but the action space has no other items (and every catalog item is a "
                "top item); give 'other' zero probability"
            )
        action = _sample_rows(probs, rng)
        pick = rng.integers(0, max(n_other, 1), size=m)
        is_other = action == other
        n_top = self.top_index.shape[0]
        top_pick = self.top_index[np.minimum(action, n_top - 1)] if n_top else np.zeros(m, int)
        other_pick = self.other_index[pick] if n_other else np.zeros(m, int)
        item = np.where(is_other, other_pick, top_pick)
        propensity = probs[np.arange(m), action] / np.where(is_other, max(n_other, 1), 1)
        expected = self.world.examination[positions] * (probs * self.action_reward[user_rows]).sum(
            axis=1
        )
        return item.astype(np.int64), propensity, expected


@dataclass(frozen=True)
class StateSetup:
    """What the state features need: action ids of the catalog items and the options."""

    n_actions: int
    item_action: np.ndarray  # (N,) int64 action id of each catalog item
    opts: StateOptions


@dataclass
class StepLog:
    """One row per decision of a block (wave, then step, then session order).

    ``session`` indexes the block's sessions (``BlockPlan`` order). Response timestamps are -1
    when the response did not happen. ``states`` is ``(n, d)`` when recorded.
    """

    session: np.ndarray
    step: np.ndarray
    ts: np.ndarray
    position: np.ndarray
    item: np.ndarray
    propensity: np.ndarray
    expected_reward: np.ndarray
    click: np.ndarray
    cart: np.ndarray
    purchase: np.ndarray
    click_ts: np.ndarray
    cart_ts: np.ndarray
    purchase_ts: np.ndarray
    states: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.session.shape[0])


def simulate_block(
    world: World,
    plan: BlockPlan,
    rng: np.random.Generator,
    chooser: Chooser,
    *,
    setup: StateSetup | None = None,
    record_states: bool = False,
) -> StepLog:
    """Run every session of ``plan``; states are computed when ``setup`` is given."""
    cfg = world.cfg
    responses = world.responses(plan.users)
    chooser.prepare(plan.users, responses)
    exam = world.examination
    price = world.catalog.price
    history = UserHistory(len(plan.users)) if setup is not None else None
    parts: dict[str, list[np.ndarray]] = {name: [] for name in _LOG_FIELDS}
    state_parts: list[np.ndarray] = []
    max_rank = int(plan.session_rank.max()) if plan.n_sessions else -1
    for wave in range(max_rank + 1):
        sess = np.flatnonzero(plan.session_rank == wave)
        user = plan.session_user[sess]
        start = plan.session_start[sess]
        tracker = None
        if setup is not None and history is not None:
            hist = history.features(user, start, setup.opts.lookback_ms)
            tracker = SessionStates(setup.n_actions, setup.opts, start, hist)
        t_next = start.copy()
        last_ts = start.copy()
        active = np.arange(sess.shape[0])
        for step in range(cfg.max_steps):
            m = active.shape[0]
            if m == 0:
                break
            u = user[active]
            tau = t_next[active]
            pos = rng.integers(0, cfg.n_positions, size=m)
            states = tracker.states(active, tau, pos) if tracker is not None else None
            item, propensity, expected = chooser.choose(u, states, pos, rng)
            draws = rng.random((3, m))
            click = draws[0] < exam[pos] * responses.click[u, item]
            cart = click & (draws[1] < responses.cart[u, item])
            purchase = cart & (draws[2] < responses.purchase[u, item])
            delay = rng.integers(_DELAY_LOW[:, None], _DELAY_HIGH[:, None] + 1, size=(4, m))
            click_ts = tau + delay[0]
            cart_ts = click_ts + delay[1]
            purchase_ts = cart_ts + delay[2]
            last = np.where(
                purchase, purchase_ts, np.where(cart, cart_ts, np.where(click, click_ts, tau))
            )
            parts["session"].append(sess[active])
            parts["step"].append(np.full(m, step, dtype=np.int64))
            parts["ts"].append(tau)
            parts["position"].append(pos)
            parts["item"].append(item)
            parts["propensity"].append(propensity)
            parts["expected_reward"].append(expected)
            parts["click"].append(click)
            parts["cart"].append(cart)
            parts["purchase"].append(purchase)
            parts["click_ts"].append(np.where(click, click_ts, -1))
            parts["cart_ts"].append(np.where(cart, cart_ts, -1))
            parts["purchase_ts"].append(np.where(purchase, purchase_ts, -1))
            if tracker is not None and setup is not None:
                if record_states and states is not None:
                    state_parts.append(states)
                n_int = click.astype(np.int64) + cart + purchase
                tracker.update(active, setup.item_action[item], n_int, click, cart, purchase, last)
            if history is not None and purchase.any():
                history.add_purchases(u[purchase], purchase_ts[purchase], price[item[purchase]])
            last_ts[active] = last
            t_next[active] = last + delay[3]
            keep = rng.random(m) < world.continue_prob(click, purchase)
            active = active[keep]
        if history is not None:
            history.add_sessions(user, last_ts)
    arrays = {
        name: (np.concatenate(vals) if vals else np.empty(0, dtype=_LOG_FIELDS[name]))
        for name, vals in parts.items()
    }
    states_all = None
    if record_states:
        dim = 0 if setup is None else len(feature_names(setup.n_actions, setup.opts))
        states_all = (
            np.concatenate(state_parts) if state_parts else np.empty((0, dim), dtype=np.float64)
        )
    return StepLog(**arrays, states=states_all)


_LOG_FIELDS: dict[str, type] = {
    "session": np.int64,
    "step": np.int64,
    "ts": np.int64,
    "position": np.int64,
    "item": np.int64,
    "propensity": np.float64,
    "expected_reward": np.float64,
    "click": np.bool_,
    "cart": np.bool_,
    "purchase": np.bool_,
    "click_ts": np.int64,
    "cart_ts": np.int64,
    "purchase_ts": np.int64,
}
