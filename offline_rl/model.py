"""A trained (or loaded) model: the d3rlpy learner plus everything needed to use it safely."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from offline_rl.algorithms import algorithm_spec
from offline_rl.encoding import StateEncoder
from offline_rl.errors import TrainError
from offline_rl.policies import (
    ActorPolicy,
    BasePolicy,
    BehaviorCloningPolicy,
    EpsilonGreedyPolicy,
    GreedyPolicy,
    SoftmaxPolicy,
)
from offline_rl.qfunction import Actor, Imitator, QFunction

__all__ = ["TrainedModel", "POLICY_HEADS"]

POLICY_HEADS: tuple[str, ...] = ("greedy", "epsilon_greedy", "softmax")


@dataclass
class TrainedModel:
    """One model of a run.

    ``algo`` is the d3rlpy learner (networks on ``algo.impl``); ``spec`` and ``actions`` are the
    feature spec and action space it was trained with; ``metrics`` holds one dict per epoch
    (validation metrics and mean losses); ``path`` is its directory once saved or loaded;
    ``encoder`` turns raw states into the network input exactly as in training.
    """

    name: str
    algorithm: str
    algo: Any
    spec: Any
    actions: Any
    dataset_version: str
    train_config: dict[str, Any]
    metrics: list[dict[str, Any]] = field(default_factory=list)
    n_updates: int = 0
    dataset_info: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    encoder: StateEncoder | None = None  # None: the default encoding of ``spec``

    def __post_init__(self) -> None:
        if self.encoder is None:
            self.encoder = StateEncoder(self.spec)

    @property
    def kind(self) -> str:
        """``q`` (DQN, Double DQN, CQL), ``bcq``, ``bc`` or ``sac``."""
        return algorithm_spec(self.algorithm).kind

    @property
    def has_q(self) -> bool:
        """Q-learners and ``sac`` (its critics: the soft Q of its actor) have a Q-function."""
        return self.kind in ("q", "bcq", "sac")

    @property
    def n_actions(self) -> int:
        return int(self.actions.n_actions)

    @property
    def q_function(self) -> QFunction:
        """The learned Q-function (raw states in); behaviour cloning has none."""
        if not self.has_q:
            raise TrainError(
                f"model {self.name!r} ({self.algorithm}) learns a policy, not a Q-function; "
                f"use .policy() or pick a Q-learning model (dqn, double_dqn, cql, bcq, sac)"
            )
        return QFunction(self.algo, self.encoder, self.name, bcq=self.kind == "bcq")

    @property
    def imitator(self) -> Imitator:
        """The behaviour classifier of a ``bc`` model (or BCQ's imitator)."""
        if self.kind not in ("bc", "bcq"):
            raise TrainError(f"model {self.name!r} ({self.algorithm}) has no imitator network")
        return Imitator(self.algo, self.encoder, self.name)

    @property
    def actor(self) -> Actor:
        """The policy network of a ``sac`` model."""
        if self.kind != "sac":
            raise TrainError(
                f"model {self.name!r} ({self.algorithm}) has no actor network; only sac has one"
            )
        return Actor(self.algo, self.encoder, self.name)

    def q_values(self, states: np.ndarray) -> np.ndarray:
        """(n, d) raw states -> (n, A) float64 Q-values."""
        return self.q_function.q_values(states)

    def policy(
        self, head: str | None = None, *, epsilon: float = 0.1, temperature: float = 1.0
    ) -> BasePolicy:
        """A :class:`~offline_rl.policies.Policy` from this model.

        Q-models: ``head`` is ``greedy`` (the default), ``epsilon_greedy`` (``epsilon``) or
        ``softmax`` (``temperature``) over Q. ``sac``: the same heads over its actor's
        distribution (``softmax``, the default, at temperature 1 is the actor itself; ``greedy``
        its most likely action). Behaviour cloning: always its softmax classifier
        (``temperature``).
        """
        if self.kind == "bc":
            return BehaviorCloningPolicy(
                self.imitator, temperature, name=self.name, actions=self.actions
            )
        if self.kind == "sac":
            return ActorPolicy(
                self.actor,
                head or "softmax",
                epsilon=epsilon,
                temperature=temperature,
                name=self.name if head in (None, "softmax") and temperature == 1 else None,
                actions=self.actions,
            )
        head = head or "greedy"
        q = self.q_function
        if head == "greedy":
            return GreedyPolicy(q, name=self.name, actions=self.actions)
        if head == "epsilon_greedy":
            return EpsilonGreedyPolicy(q, epsilon, actions=self.actions)
        if head == "softmax":
            return SoftmaxPolicy(q, temperature, actions=self.actions)
        raise TrainError(f"head = {head!r}: choose one of {', '.join(POLICY_HEADS)}")

    @property
    def final_metrics(self) -> dict[str, Any]:
        return dict(self.metrics[-1]) if self.metrics else {}
