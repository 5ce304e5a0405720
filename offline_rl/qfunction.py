"""Learned networks behind the policies, on RAW states.

:class:`QFunction` wraps the Q-networks of a trained DQN / Double DQN / CQL / BCQ model (or the
critics of a ``sac`` model), :class:`Imitator` the action classifier of a behaviour-cloning
model (or of BCQ) and :class:`Actor` the policy network of a ``sac`` model. Both take raw
``(n, d)`` states, encode them like training did (:class:`offline_rl.encoding.StateEncoder`:
the stored :class:`sql.dataset.FeatureSpec`, index features scaled; then the d3rlpy
``observation_scaler`` when one was configured), evaluate in chunks without gradients
and return float64 numpy arrays.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from offline_rl.encoding import as_encoder
from offline_rl.errors import TrainError

__all__ = ["QFunction", "Imitator", "Actor", "check_states"]

_CHUNK = 8192


def check_states(states: Any, dim: int, who: str) -> np.ndarray:
    """``states`` as a finite (n, dim) float array, or a :class:`TrainError` saying what is off."""
    arr = np.asarray(states, dtype=np.float64)
    if arr.ndim == 1 and arr.shape[0] == dim:
        raise TrainError(f"{who}: states must be 2-D (n, {dim}); wrap one state as states[None]")
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise TrainError(f"{who}: expected raw states of shape (n, {dim}), got {arr.shape}")
    if not np.isfinite(arr).all():
        row = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise TrainError(f"{who}: state row {row} has NaN or infinite values")
    return arr


class _Network:
    """Raw states -> normalised tensor -> ``fn`` in chunks, eval mode, no gradients."""

    def __init__(self, algo: Any, spec: Any, name: str) -> None:
        self.algo = algo
        self.encoder = as_encoder(spec)
        self.spec = self.encoder.spec
        self.name = name

    @property
    def n_actions(self) -> int:
        return int(self.algo.impl.action_size)

    def _run(self, states: Any, fn: Any) -> list[np.ndarray]:
        import torch

        arr = check_states(states, self.spec.dim, self.name)
        impl = self.algo.impl
        impl.modules.set_eval()
        scaler = self.algo.config.observation_scaler
        outs: list[list[np.ndarray]] = []
        with torch.no_grad():
            for start in range(0, arr.shape[0], _CHUNK):
                x = torch.as_tensor(self.encoder(arr[start : start + _CHUNK]), device=impl.device)
                if scaler is not None:
                    x = scaler.transform(x)
                outs.append([o.detach().cpu().numpy().astype(np.float64) for o in fn(x)])
        if not outs:
            return [np.zeros((0, self.n_actions))]
        return [np.concatenate(parts, axis=0) for parts in zip(*outs, strict=True)]


class QFunction(_Network):
    """Q(s, ·) of a trained model: ``q_values(raw_states) -> (n, A)``.

    Values are in reward units: training's ``MultiplyRewardScaler`` (``[train] reward_scale``)
    is undone; with another d3rlpy reward scaler they stay on its scale (see ``units``). For a
    ``sac`` model these are its critics: the soft Q of its actor (the discounted entropy bonus
    of later decisions included).

    For BCQ, ``allowed(raw_states)`` is BCQ's action filter: action ``a`` is allowed when
    ``pi_imitator(a|s) / max_b pi_imitator(b|s) > action_flexibility``; other models allow
    every action. Greedy heads maximise Q over allowed actions.
    """

    def __init__(self, algo: Any, spec: Any, name: str, *, bcq: bool = False) -> None:
        super().__init__(algo, spec, name)
        self.bcq = bcq
        scaler = algo.config.reward_scaler
        multiplier = getattr(scaler, "multiplier", None) if scaler is not None else None
        if scaler is None or (type(scaler).__name__ == "MultiplyRewardScaler" and multiplier):
            # Q was learned on reward * multiplier: divide to report reward units
            self.scale = float(multiplier) if scaler is not None else 1.0
            self.units = "reward"
        else:  # a shifting/clipping scaler: values stay on the scaler's scale
            self.scale = 1.0
            self.units = f"scaled ({scaler.get_type()} reward scaler)"

    def _q(self, x: Any) -> Any:
        import torch

        q_funcs = self.algo.impl.q_function
        q = torch.stack([q(x).q_value for q in q_funcs], dim=0).mean(dim=0)
        return q / self.scale if self.scale != 1.0 else q

    def q_values(self, states: Any) -> np.ndarray:
        """(n, d) raw states -> (n, A) float64 expected Q-values (mean over critics)."""
        return self._run(states, lambda x: (self._q(x),))[0]

    def q_and_allowed(self, states: Any) -> tuple[np.ndarray, np.ndarray]:
        """One pass: ((n, A) Q-values, (n, A) bool allowed-action mask)."""
        if not self.bcq:
            q = self.q_values(states)
            return q, np.ones(q.shape, dtype=bool)
        import torch
        import torch.nn.functional as F

        threshold = math.log(self.algo.config.action_flexibility)
        imitator = self.algo.impl.modules.imitator

        def both(x: Any) -> tuple[Any, Any]:
            log_probs = F.log_softmax(imitator(x).logits, dim=1)
            ratio = log_probs - log_probs.max(dim=1, keepdim=True).values
            return self._q(x), (ratio > threshold).to(torch.float32)

        q, mask = self._run(states, both)
        return q, mask > 0.5

    def allowed(self, states: Any) -> np.ndarray:
        return self.q_and_allowed(states)[1]

    def greedy_actions(self, states: Any) -> np.ndarray:
        """(n,) int64 argmax of Q over allowed actions (ties: lowest action id)."""
        q, allowed = self.q_and_allowed(states)
        return np.where(allowed, q, -np.inf).argmax(axis=1).astype(np.int64)


class Imitator(_Network):
    """pi(a | s) of a behaviour-cloning model (d3rlpy ``DiscreteBC``) or of BCQ's imitator."""

    _module = "imitator"  # the d3rlpy module (a categorical policy network) on impl.modules

    def logits(self, states: Any) -> np.ndarray:
        """(n, d) raw states -> (n, A) float64 log-probabilities (up to a constant per row)."""
        network = getattr(self.algo.impl.modules, self._module)
        return self._run(states, lambda x: (network(x).logits,))[0]

    def probs(self, states: Any, temperature: float = 1.0) -> np.ndarray:
        """(n, A) softmax(logits / temperature); rows sum to 1."""
        z = self.logits(states) / temperature
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)


class Actor(Imitator):
    """pi(a | s) of a ``sac`` model's actor (a categorical policy network)."""

    _module = "policy"
