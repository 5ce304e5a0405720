"""Ground truth: the value of any policy, run online in the simulator, and per-decision truth.

Sequential ground truth (:func:`run_policy`, :func:`run_behaviour`): sessions are simulated
exactly as the logs are (same users, schedule and response model; a different ``seed`` gives
independent sessions), the policy acting at every step. For session ``s`` with decisions
``t = 0..T_s-1`` the estimate uses the exact conditional expected reward of the step,

    r̄_t = exam[pos_t] * sum_a pi(a | x_t) R(u, a),   R(u, a) = E[reward | u, item(a)] at pos 0,

(``R(u, other)`` = mean over the other bucket), which has the same expectation as the realised
reward but less variance (responses only move the session forward). Then

    V = mean_s sum_{t < H} gamma^t r̄_t,    SE(V) = sd_s(...) / sqrt(S),

and the per-decision value ``rho = sum_s sum_t r̄_t / sum_s T_s`` with a delta-method SE that
treats sessions as the independent units.

Per-decision (bandit) truth (:func:`expected_rewards`): for logged decisions identified by
``user_id`` and ``position`` (columns of the ``transitions`` table) the exact ``(n, A)`` matrix
``E[reward | user, action, position]``; a target ``pi (n, A)`` then has exact expected
immediate reward ``sum_a pi[n, a] * R[n, a]`` per decision (:func:`per_decision_value`). The
response model does not depend on the session's history, so these two columns suffice.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from statistics import NormalDist

import numpy as np

from offrec.simulator.actions import resolve_action_space
from offrec.simulator.config import RewardWeights, SimulatorConfig, StateOptions
from offrec.simulator.engine import BehaviourChooser, Chooser, PolicyChooser, StateSetup
from offrec.simulator.errors import SimulatorError
from offrec.simulator.generate import _run_settings, iter_blocks
from offrec.simulator.world import World, parse_user_ids

__all__ = [
    "GroundTruth",
    "run_policy",
    "run_behaviour",
    "expected_rewards",
    "per_decision_value",
    "behaviour_action_probs",
    "behaviour_per_decision_value",
]


@dataclass(frozen=True)
class GroundTruth:
    """A policy's online value in the simulator.

    ``value``: mean per-session discounted return (first ``horizon`` steps); ``value_se`` its
    standard error. ``reward_per_decision``: mean expected reward per decision, ``_se`` its
    standard error. ``value_by_step[t]``: mean (undiscounted) expected reward at step ``t``
    per session (0 for sessions already ended). ``realised``: mean realised events per session.
    """

    policy: str
    value: float
    value_se: float
    reward_per_decision: float
    reward_per_decision_se: float
    mean_length: float
    n_sessions: int
    n_decisions: int
    gamma: float
    horizon: int | None
    seed: int
    value_by_step: np.ndarray = field(repr=False)
    realised: dict[str, float] = field(default_factory=dict)

    def interval(self, alpha: float = 0.05) -> tuple[float, float]:
        """Normal ``1 - alpha`` confidence interval of ``value``."""
        if not 0 < alpha < 1:
            raise SimulatorError(f"alpha = {alpha}: must be in (0, 1)")
        z = NormalDist().inv_cdf(1 - alpha / 2)
        return self.value - z * self.value_se, self.value + z * self.value_se

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["value_by_step"] = [float(v) for v in self.value_by_step]
        return out


def _check_gamma_horizon(gamma: float, horizon: int | None) -> None:
    if isinstance(gamma, bool) or not isinstance(gamma, int | float) or not 0 <= gamma <= 1:
        raise SimulatorError(f"gamma = {gamma!r}: must be a number in [0, 1]")
    if horizon is not None and (
        isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1
    ):
        raise SimulatorError(f"horizon = {horizon!r}: must be a whole number >= 1 or None")


def _aggregate(
    world: World,
    chooser: Chooser,
    name: str,
    n_sessions: int,
    seed: int,
    gamma: float,
    horizon: int | None,
    setup: StateSetup | None,
) -> GroundTruth:
    max_steps = world.cfg.max_steps
    returns: list[np.ndarray] = []
    totals: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    by_step = np.zeros(max_steps, dtype=np.float64)
    realised = dict.fromkeys(("clicks", "carts", "purchases", "revenue"), 0.0)
    price = world.catalog.price
    for plan, log in iter_blocks(world, n_sessions, seed, chooser, setup=setup):
        s = plan.n_sessions
        counted = log.step < horizon if horizon is not None else np.ones(len(log), bool)
        r = np.where(counted, log.expected_reward, 0.0)
        disc = r * np.power(gamma, log.step.astype(np.float64))
        returns.append(np.bincount(log.session, weights=disc, minlength=s))
        totals.append(np.bincount(log.session, weights=r, minlength=s))
        lengths.append(np.bincount(log.session, weights=counted.astype(np.float64), minlength=s))
        by_step += np.bincount(log.step, weights=log.expected_reward, minlength=max_steps)
        realised["clicks"] += float(log.click[counted].sum())
        realised["carts"] += float(log.cart[counted].sum())
        realised["purchases"] += float(log.purchase[counted].sum())
        realised["revenue"] += float(price[log.item[counted & log.purchase]].sum())
    ret = np.concatenate(returns)
    tot = np.concatenate(totals)
    length = np.concatenate(lengths)
    n = ret.shape[0]
    value = float(ret.mean())
    value_se = float(ret.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    n_dec = float(length.sum())
    rho = float(tot.sum() / n_dec)
    if n > 1:
        resid = tot - rho * length
        rho_se = float(math.sqrt((resid**2).sum() * n / (n - 1)) / n_dec)
    else:
        rho_se = math.nan
    return GroundTruth(
        policy=name,
        value=value,
        value_se=value_se,
        reward_per_decision=rho,
        reward_per_decision_se=rho_se,
        mean_length=float(length.mean()),
        n_sessions=n,
        n_decisions=int(n_dec),
        gamma=float(gamma),
        horizon=horizon,
        seed=seed,
        value_by_step=by_step / n,
        realised={k: v / n for k, v in realised.items()},
    )


def run_policy(
    policy: object,
    action_space: object,
    *,
    n_sessions: int | None = None,
    seed: int = 12345,
    weights: RewardWeights | dict[str, float] | object | None = None,
    gamma: float = 1.0,
    config: SimulatorConfig | None = None,
    state_options: StateOptions | None = None,
    horizon: int | None = None,
) -> GroundTruth:
    """Run ``policy`` online for ``n_sessions`` sessions and return its :class:`GroundTruth`.

    ``policy`` follows docs/design.md §4: ``action_probs(states (n, d) float32 raw) -> (n, A)``
    with ``A = action_space.n_actions``; it sees the section-3 raw states computed online
    with ``state_options`` (the build's ``last_k``, ``item_encoding``, ``lookback_days``).
    ``other`` shows a uniformly random item of ``action_space.other_items`` (all non-top
    catalog items when that is empty). ``config`` must be the ``[simulate]`` config of the logs
    (same world); ``seed`` should differ from the logs' seed for independent sessions.
    ``weights`` are the reward weights (a RewardWeights, a dict, or ``[build.reward]``).
    ``horizon`` counts only the first ``horizon`` decisions of a session (the build's
    ``max_episode_len``), ``gamma`` discounts step ``t`` by ``gamma**t``.
    """
    cfg = config or SimulatorConfig()
    n, s = _run_settings(cfg, n_sessions, seed)
    _check_gamma_horizon(gamma, horizon)
    if not callable(getattr(policy, "action_probs", None)):
        raise SimulatorError(
            f"policy {type(policy).__name__} has no action_probs(states) method (docs/design.md §4)"
        )
    world = World(cfg)
    resolved = resolve_action_space(world.catalog, action_space)
    declared = getattr(policy, "n_actions", None)
    if declared is not None and int(declared) != resolved.n_actions:
        raise SimulatorError(
            f"policy {getattr(policy, 'name', '?')!r} has n_actions = {declared} but the action "
            f"space has {resolved.n_actions} actions; use the action space it was trained on"
        )
    w = _weights(weights)
    setup = StateSetup(resolved.n_actions, resolved.item_action, state_options or StateOptions())
    chooser = PolicyChooser(world, policy, resolved.top_index, resolved.other_index, w)
    return _aggregate(world, chooser, chooser.name, n, s, gamma, horizon, setup)


def run_behaviour(
    *,
    n_sessions: int | None = None,
    seed: int = 12345,
    weights: RewardWeights | dict[str, float] | object | None = None,
    gamma: float = 1.0,
    config: SimulatorConfig | None = None,
    horizon: int | None = None,
) -> GroundTruth:
    """Ground truth of the logging (behaviour) policy itself; arguments as :func:`run_policy`."""
    cfg = config or SimulatorConfig()
    n, s = _run_settings(cfg, n_sessions, seed)
    _check_gamma_horizon(gamma, horizon)
    world = World(cfg)
    chooser = BehaviourChooser(world, _weights(weights))
    return _aggregate(world, chooser, "behaviour", n, s, gamma, horizon, None)


def _weights(weights: object) -> RewardWeights:
    try:
        return RewardWeights.coerce(weights)
    except (TypeError, ValueError) as exc:
        raise SimulatorError(f"weights: {exc}") from None


def _positions(positions: object, n: int, n_positions: int) -> np.ndarray:
    pos = np.asarray(positions)
    if pos.shape != (n,):
        raise SimulatorError(f"positions must have shape ({n},) like user_ids, got {pos.shape}")
    if pos.size and not np.issubdtype(pos.dtype, np.integer):
        as_float = pos.astype(np.float64)
        if not np.all(np.isfinite(as_float)) or not np.all(as_float == np.round(as_float)):
            row = int(np.flatnonzero(~np.isfinite(as_float) | (as_float != np.round(as_float)))[0])
            raise SimulatorError(f"positions[{row}] = {as_float[row]:g} is not a whole number")
        pos = as_float.astype(np.int64)
    bad = (pos < 0) | (pos >= n_positions)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise SimulatorError(
            f"positions[{row}] = {int(pos[row])} is outside 0..{n_positions - 1} "
            "([simulate] n_positions of the world that produced these logs)"
        )
    return pos.astype(np.int64)


def expected_rewards(
    user_ids: np.ndarray | list[str],
    positions: np.ndarray | list[int],
    action_space: object,
    *,
    weights: RewardWeights | dict[str, float] | object | None = None,
    config: SimulatorConfig | None = None,
) -> np.ndarray:
    """``(n, A)`` exact ``E[reward | user, action, position]`` for logged decisions.

    ``user_ids``/``positions`` are the ``transitions`` columns of the decisions. Action ``a <
    A-1`` shows ``top_items[a]``; ``other`` a uniform item of the other bucket.
    """
    cfg = config or SimulatorConfig()
    world = World(cfg)
    index = parse_user_ids(user_ids)
    pos = _positions(positions, index.shape[0], cfg.n_positions)
    resolved = resolve_action_space(world.catalog, action_space)
    w = _weights(weights)
    uniq, inverse = np.unique(index, return_inverse=True)
    responses = world.responses(world.users(uniq))
    reward = responses.expected_reward(world.catalog.price, w)
    other = (
        reward[:, resolved.other_index].mean(axis=1)
        if resolved.other_index.size
        else np.zeros(uniq.shape[0])
    )
    per_action = np.concatenate([reward[:, resolved.top_index], other[:, None]], axis=1)
    return world.examination[pos][:, None] * per_action[inverse]


def per_decision_value(
    user_ids: np.ndarray | list[str],
    positions: np.ndarray | list[int],
    action_probs: np.ndarray,
    action_space: object,
    *,
    weights: RewardWeights | dict[str, float] | object | None = None,
    config: SimulatorConfig | None = None,
) -> np.ndarray:
    """``(n,)`` exact expected immediate reward of target distributions ``action_probs (n, A)``.

    The mean of the result is the bandit ground truth a per-decision OPE estimate (IPS, DR …
    of the immediate reward) should recover on the same logged contexts.
    """
    from offrec.simulator.engine import check_action_probs

    matrix = expected_rewards(user_ids, positions, action_space, weights=weights, config=config)
    probs = check_action_probs(action_probs, matrix.shape[0], matrix.shape[1], "target")
    return (probs * matrix).sum(axis=1)


def behaviour_action_probs(
    user_ids: np.ndarray | list[str],
    positions: np.ndarray | list[int],
    action_space: object,
    *,
    config: SimulatorConfig | None = None,
) -> np.ndarray:
    """``(n, A)`` true probabilities the logging policy gives each action at these decisions.

    ``other`` gets the total probability of every catalog item that is not a top item (the
    logging policy can show any catalog item). The logging policy depends on the user only;
    ``positions`` are validated for symmetry with :func:`expected_rewards`. Note that inside
    the other bucket the logging policy is not uniform, so for its exact per-decision value use
    :func:`behaviour_per_decision_value`, not ``per_decision_value`` of these probabilities.
    """
    cfg = config or SimulatorConfig()
    world = World(cfg)
    index = parse_user_ids(user_ids)
    _positions(positions, index.shape[0], cfg.n_positions)
    resolved = resolve_action_space(world.catalog, action_space)
    uniq, inverse = np.unique(index, return_inverse=True)
    probs = world.behaviour_probs(world.users(uniq))
    top = probs[:, resolved.top_index]
    other = 1.0 - top.sum(axis=1)
    return np.concatenate([top, np.clip(other, 0.0, 1.0)[:, None]], axis=1)[inverse]


def behaviour_per_decision_value(
    user_ids: np.ndarray | list[str],
    positions: np.ndarray | list[int],
    *,
    weights: RewardWeights | dict[str, float] | object | None = None,
    config: SimulatorConfig | None = None,
) -> np.ndarray:
    """``(n,)`` exact expected immediate reward of the logging policy at these decisions.

    ``exam[pos] * sum_i pi_b(i | u) G(u, i)`` over every catalog item — the per-decision
    ground truth of the behaviour policy (what the on-policy average of logged rewards
    estimates).
    """
    cfg = config or SimulatorConfig()
    world = World(cfg)
    index = parse_user_ids(user_ids)
    pos = _positions(positions, index.shape[0], cfg.n_positions)
    uniq, inverse = np.unique(index, return_inverse=True)
    users = world.users(uniq)
    responses = world.responses(users)
    probs = world.behaviour_probs(users, responses.affinity)
    reward = responses.expected_reward(world.catalog.price, _weights(weights))
    return world.examination[pos] * (probs * reward).sum(axis=1)[inverse]
