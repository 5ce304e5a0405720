"""Who visits when: users, their number of sessions, and session start times.

* ``n_users = clip(round(n_sessions / sessions_per_user), 1, n_sessions)``; users are numbered
  ``0 .. n_users-1`` (so the population is the same for every session seed);
* session counts: ``1 + Multinomial(n_sessions - n_users, activity / sum(activity))`` drawn from
  ``default_rng([seed, 0])`` — every user has at least one session, active users more;
* a user's ``m`` session starts: ``start + k * spacing + sort(U_k) `` with
  ``U_k ~ Uniform[0, free)``, ``free = n_days * 1 day - max_session - (m - 1) * spacing``, where
  ``spacing = max_session + session_gap + 1 s``. Hence sessions of one user never overlap and are
  separated by more than ``session_gap`` of inactivity, and every session ends inside the period.

Users are simulated in blocks (``block_size(cfg)`` users each) with their own random stream
``default_rng([seed, 1, block])``; a block is independent of the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from offrec.errors import ConfigError
from offrec.simulator.config import SimulatorConfig
from offrec.simulator.world import Users, World

__all__ = [
    "BlockPlan",
    "allocate_sessions",
    "block_size",
    "plan_block",
    "n_blocks",
    "n_users_for",
]

_DAY_MS = 86_400_000


def block_size(cfg: SimulatorConfig) -> int:
    """Users simulated together: bounded so that the (users, items) matrices stay small."""
    return int(np.clip(2**21 // cfg.n_items, 16, 4096))


def n_blocks(cfg: SimulatorConfig, n_users: int) -> int:
    size = block_size(cfg)
    return (n_users + size - 1) // size


def n_users_for(cfg: SimulatorConfig, n_sessions: int) -> int:
    """Users of a simulation of ``n_sessions`` sessions."""
    return int(np.clip(round(n_sessions / cfg.sessions_per_user), 1, n_sessions))


def allocate_sessions(world: World, n_sessions: int, seed: int) -> np.ndarray:
    """``(n_users,)`` int64 number of sessions of each user; they sum to ``n_sessions``."""
    cfg = world.cfg
    if isinstance(n_sessions, bool) or not isinstance(n_sessions, int | np.integer):
        raise ConfigError(f"n_sessions = {n_sessions!r}: must be a whole number")
    if n_sessions < 1:
        raise ConfigError(f"n_sessions = {n_sessions}: must be >= 1")
    n_users = n_users_for(cfg, n_sessions)
    activity = world.users(np.arange(n_users)).activity
    rng = np.random.default_rng([seed, 0])
    counts = 1 + rng.multinomial(n_sessions - n_users, activity / activity.sum())
    counts = counts.astype(np.int64)
    worst = int(counts.max())
    need = (worst - 1) * cfg.session_spacing_ms + cfg.max_session_ms
    if need > cfg.n_days * _DAY_MS:
        raise ConfigError(
            f"[simulate] n_days = {cfg.n_days}: a user drew {worst} sessions, which need "
            f"{need / _DAY_MS:.1f} days at one session per {cfg.session_spacing_ms / 3.6e6:.2f} "
            "h at most; raise n_days, or lower sessions_per_user or max_steps"
        )
    return counts


@dataclass(frozen=True)
class BlockPlan:
    """The sessions of one block of users, in (rank, user) order.

    ``users`` are the block's users (block-local row = position here); session arrays are
    ``(S,)``: the block-local user, the session's rank among the user's sessions, its start ms.
    """

    block: int
    users: Users
    session_user: np.ndarray
    session_rank: np.ndarray
    session_start: np.ndarray

    @property
    def n_sessions(self) -> int:
        return int(self.session_user.shape[0])


def plan_block(world: World, counts: np.ndarray, block: int, rng: np.random.Generator) -> BlockPlan:
    """Users and session start times of ``block`` (draws the start times from ``rng``)."""
    cfg = world.cfg
    size = block_size(cfg)
    lo, hi = block * size, min((block + 1) * size, counts.shape[0])
    index = np.arange(lo, hi, dtype=np.int64)
    users = world.users(index)
    m = counts[lo:hi]
    user = np.repeat(np.arange(hi - lo, dtype=np.int64), m)
    first = np.concatenate([[0], np.cumsum(m)[:-1]])
    rank = np.arange(user.shape[0], dtype=np.int64) - np.repeat(first, m)
    free = cfg.n_days * _DAY_MS - cfg.max_session_ms - (m - 1) * cfg.session_spacing_ms
    offsets = np.floor(rng.random(user.shape[0]) * free[user]).astype(np.int64)
    # sort offsets within each user; (user, offset) lexsort keeps users contiguous
    order = np.lexsort((offsets, user))
    offsets = offsets[order]
    start = cfg.start_ms + rank * cfg.session_spacing_ms + offsets
    wave_order = np.lexsort((user, rank))
    return BlockPlan(block, users, user[wave_order], rank[wave_order], start[wave_order])
