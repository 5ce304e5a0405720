"""From :class:`sql.dataset.Transitions` to what d3rlpy trains on.

Two views of the same rows, with the same semantics:

* :func:`to_mdp_dataset` builds a d3rlpy ``MDPDataset`` (episode/step order, terminals,
  timeouts, explicit ``action_size``) for users who want d3rlpy's own tools, and for fitting
  d3rlpy scalers;
* :class:`TransitionTensors` holds the rows as torch tensors once and samples mini-batches with
  one ``torch.randint`` and a gather, instead of d3rlpy's per-transition Python loop.

Timeouts. A row that ends an episode by ``timeout`` (cut by ``max_episode_len`` or by the data
window) has no known next state. d3rlpy drops such a row from TD learning
(``Episode.transition_count = size - 1``) and so do we: it is excluded from the TD-learning
rows of :class:`TransitionTensors` (``td_rows``) and counted in ``n_timeout_rows``. Behaviour
cloning loses nothing: it samples from every row (``all_rows``). Terminal rows bootstrap from
nothing (``terminal = 1``, next state zeros), exactly like d3rlpy's ``BasicTransitionPicker``.

The next state of a non-final row is the state of the following row of the same episode (what
d3rlpy uses too). States are encoded by :class:`offline_rl.encoding.StateEncoder` (normalised
with the feature spec, index features divided by the number of actions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from offline_rl._d3 import d3rlpy_module, quiet
from offline_rl.encoding import StateEncoder, as_encoder
from offline_rl.errors import TrainError

__all__ = [
    "check_transitions",
    "to_mdp_dataset",
    "TransitionTensors",
    "episode_bounds",
    "make_generator",
]


def check_transitions(tr: Any, n_actions: int, dim: int, what: str = "train") -> None:
    """Validate shapes, values and episode structure; raise :class:`TrainError` naming the row.

    Rows must be in episode/step order: each episode's rows contiguous with consecutive steps,
    exactly its last row flagged ``terminal`` or ``timeout`` (never both).
    """
    n = len(tr)
    if n == 0:
        raise TrainError(f"{what} split has no transitions; build a dataset with data in it")
    states = np.asarray(tr.states)
    if states.ndim != 2 or states.shape != (n, dim):
        raise TrainError(
            f"{what}: expected states of shape ({n}, {dim}) (rows, feature_spec dim), "
            f"got {states.shape}"
        )
    for name in ("actions", "rewards", "terminals", "timeouts", "episode_ids", "steps"):
        arr = np.asarray(getattr(tr, name))
        if arr.shape != (n,):
            raise TrainError(f"{what}: expected {name} of shape ({n},), got {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(states).all(axis=1))
    if bad.size:
        raise TrainError(
            f"{what}: state of row {bad[0]} (episode {tr.episode_ids[bad[0]]!r}) "
            f"has NaN or infinite values ({bad.size} rows); fix the build"
        )
    rewards = np.asarray(tr.rewards, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(rewards))
    if bad.size:
        raise TrainError(
            f"{what}: reward of row {bad[0]} (episode {tr.episode_ids[bad[0]]!r}) "
            f"is {rewards[bad[0]]} ({bad.size} rows); rewards must be finite"
        )
    actions = np.asarray(tr.actions)
    bad = np.flatnonzero((actions < 0) | (actions >= n_actions))
    if bad.size:
        raise TrainError(
            f"{what}: action {actions[bad[0]]} in row {bad[0]} is outside 0..{n_actions - 1} "
            f"({bad.size} rows); the dataset and the action space disagree"
        )
    terminals = np.asarray(tr.terminals, dtype=bool)
    timeouts = np.asarray(tr.timeouts, dtype=bool)
    both = np.flatnonzero(terminals & timeouts)
    if both.size:
        raise TrainError(
            f"{what}: row {both[0]} (episode {tr.episode_ids[both[0]]!r}) is both "
            f"terminal and timeout; an episode ends one way"
        )
    ids = np.asarray(tr.episode_ids)
    steps = np.asarray(tr.steps, dtype=np.int64)
    starts, ends = episode_bounds(ids)
    if len(np.unique(ids)) != len(starts):
        seen: set[Any] = set()
        for s in starts:
            if ids[s] in seen:
                raise TrainError(
                    f"{what}: rows of episode {ids[s]!r} are not contiguous (again at row {s}); "
                    f"sort transitions by episode and step"
                )
            seen.add(ids[s])
    same_episode = np.ones(n, dtype=bool)
    same_episode[starts] = False
    gap = np.flatnonzero(same_episode[1:] & (steps[1:] != steps[:-1] + 1)) + 1
    if gap.size:
        r = gap[0]
        raise TrainError(
            f"{what}: episode {ids[r]!r} goes from step {steps[r - 1]} to {steps[r]} at row {r}; "
            f"rows must be in step order with no gaps"
        )
    last = np.zeros(n, dtype=bool)
    last[ends - 1] = True
    ended = terminals | timeouts
    bad = np.flatnonzero(ended & ~last)
    if bad.size:
        raise TrainError(
            f"{what}: row {bad[0]} (episode {ids[bad[0]]!r}, step {steps[bad[0]]}) is flagged "
            f"terminal/timeout but is not the episode's last row"
        )
    bad = np.flatnonzero(last & ~ended)
    if bad.size:
        raise TrainError(
            f"{what}: episode {ids[bad[0]]!r} ends at row {bad[0]} without terminal or timeout; "
            f"every episode's last row must be one of them"
        )


def episode_bounds(episode_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) row indices of runs of equal ``episode_ids`` (ends exclusive)."""
    ids = np.asarray(episode_ids)
    n = len(ids)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    change = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    starts = np.concatenate([[0], change]).astype(np.int64)
    ends = np.concatenate([change, [n]]).astype(np.int64)
    return starts, ends


def to_mdp_dataset(tr: Any, spec: Any, action_size: int) -> Any:
    """A d3rlpy ``MDPDataset`` of the network inputs (validated first).

    ``spec`` is a FeatureSpec (default :class:`~offline_rl.encoding.StateEncoder`) or an encoder.

    d3rlpy keeps every row as an observation but drops the last row of each timeout episode
    from its transitions (no next state); ``dataset.transition_count`` is therefore
    ``len(tr) - tr.timeouts.sum()``.
    """
    encode = as_encoder(spec)
    check_transitions(tr, action_size, encode.dim)
    d3 = d3rlpy_module()
    with quiet():
        return d3.dataset.MDPDataset(
            observations=encode(tr.states),
            actions=np.asarray(tr.actions, dtype=np.int64),
            rewards=np.asarray(tr.rewards, dtype=np.float32),
            terminals=np.asarray(tr.terminals, dtype=np.float32),
            timeouts=np.asarray(tr.timeouts, dtype=np.float32),
            action_space=d3.constants.ActionSpace.DISCRETE,
            action_size=int(action_size),
        )


@dataclass
class TransitionTensors:
    """Every row of a split as tensors on one device, ready for vectorised sampling.

    Shapes (``n`` rows, ``d`` features): ``observations``/``next_observations`` (n, d) float32
    normalised; ``actions``, ``rewards``, ``terminals`` (n, 1) float32 (d3rlpy's layout);
    ``td_rows`` (m,) int64 — rows with a known next state (all but timeout-final rows);
    ``all_rows`` (n,) int64; ``is_first`` (n,) bool.
    """

    observations: Any
    next_observations: Any
    actions: Any
    next_actions: Any
    rewards: Any
    terminals: Any
    td_rows: Any
    all_rows: Any
    is_first: Any
    n_timeout_rows: int
    device: str
    encoder: StateEncoder | None = None
    _cache: dict[int, tuple[Any, Any]] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, tr: Any, spec: Any, action_size: int, device: str) -> TransitionTensors:
        """``spec``: a FeatureSpec (default encoding) or a :class:`StateEncoder`."""
        import torch

        encode = as_encoder(spec)
        check_transitions(tr, action_size, encode.dim)
        obs = encode(tr.states)
        n = obs.shape[0]
        terminals = np.asarray(tr.terminals, dtype=bool)
        timeouts = np.asarray(tr.timeouts, dtype=bool)
        last = terminals | timeouts
        nxt = np.zeros_like(obs)
        nxt[:-1] = obs[1:]
        nxt[last] = 0.0
        acts = np.asarray(tr.actions, dtype=np.float32)
        next_acts = np.zeros_like(acts)
        next_acts[:-1] = acts[1:]
        next_acts[last] = 0.0
        td_rows = np.flatnonzero(~timeouts)
        starts, _ = episode_bounds(np.asarray(tr.episode_ids))
        is_first = np.zeros(n, dtype=bool)
        is_first[starts] = True

        def t(a: np.ndarray, dtype: Any = torch.float32) -> Any:
            return torch.as_tensor(np.ascontiguousarray(a)).to(device=device, dtype=dtype)

        return cls(
            observations=t(obs),
            next_observations=t(nxt),
            actions=t(acts.reshape(-1, 1)),
            next_actions=t(next_acts.reshape(-1, 1)),
            rewards=t(np.asarray(tr.rewards, dtype=np.float32).reshape(-1, 1)),
            terminals=t(terminals.astype(np.float32).reshape(-1, 1)),
            td_rows=t(td_rows, torch.int64),
            all_rows=t(np.arange(n), torch.int64),
            is_first=t(is_first, torch.bool),
            n_timeout_rows=int(timeouts.sum()),
            device=device,
            encoder=encode,
        )

    def __len__(self) -> int:
        return int(self.observations.shape[0])

    def apply_scalers(self, observation_scaler: Any = None, reward_scaler: Any = None) -> None:
        """Apply fitted d3rlpy scalers once to the stored tensors (they are element-wise)."""
        import torch

        with torch.no_grad():
            if observation_scaler is not None:
                self.observations = observation_scaler.transform(self.observations)
                self.next_observations = observation_scaler.transform(self.next_observations)
            if reward_scaler is not None:
                self.rewards = reward_scaler.transform(self.rewards)

    def sample(self, batch_size: int, generator: Any, *, td: bool = True) -> Any:
        """A d3rlpy ``TorchMiniBatch`` of ``batch_size`` rows drawn uniformly with replacement.

        ``td=True`` draws from ``td_rows`` (Q-learning), ``td=False`` from every row (BC).
        """
        import torch

        d3rlpy_module()
        from d3rlpy.torch_utility import TorchMiniBatch

        pool = self.td_rows if td else self.all_rows
        if pool.shape[0] == 0:
            raise TrainError(
                "no transition has a known next state (every episode is a single timeout row); "
                "TD learning needs episodes of two or more decisions"
            )
        pick = torch.randint(
            0, pool.shape[0], (batch_size,), generator=generator, device=pool.device
        )
        idx = pool[pick]
        ones, zeros = self._constants(batch_size)
        return TorchMiniBatch(
            observations=self.observations[idx],
            actions=self.actions[idx],
            rewards=self.rewards[idx],
            next_observations=self.next_observations[idx],
            next_actions=self.next_actions[idx],
            returns_to_go=zeros,  # no algorithm we train reads returns-to-go
            terminals=self.terminals[idx],
            intervals=ones,
            device=self.device,
        )

    def _constants(self, batch_size: int) -> tuple[Any, Any]:
        import torch

        cached = self._cache.get(batch_size)
        if cached is None:
            dev = self.observations.device
            cached = (
                torch.ones((batch_size, 1), device=dev),
                torch.zeros((batch_size, 1), device=dev),
            )
            self._cache[batch_size] = cached
        return cached


def make_generator(seed: int, device: str) -> Any:
    """A torch generator on ``device`` seeded with ``seed`` (mini-batch sampling only)."""
    import torch

    gen = torch.Generator(device=torch.device(device).type)
    gen.manual_seed(int(seed))
    return gen
