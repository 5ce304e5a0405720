"""Policies: the one interface OPE, the simulator and users call (docs/design.md §4).

Every policy has ``name``, ``n_actions`` and ``action_probs(states) -> (n, A)`` on RAW
``(n, d)`` states, rows summing to 1. On top of that :class:`BasePolicy` gives
``sample_actions`` (draw one action per row), ``top_k_actions`` and ``top_k_items``
(recommendation lists).

Heads over a learned :class:`~offline_rl.qfunction.QFunction` (``Q`` of shape (n, A), ``M`` the
allowed-action mask, all-true except for BCQ):

* greedy: ``pi(a|s) = 1[a = argmax_{b in M} Q(s, b)]`` (ties: lowest action id);
* epsilon-greedy: ``pi(a|s) = (1 - eps) * greedy(a|s) + eps / A`` (uniform over *all* actions,
  so every logged action keeps support, which IPS-type estimators need);
* softmax: ``pi(a|s) = exp(Q(s,a)/T) / sum_{b in M} exp(Q(s,b)/T)`` for ``a in M``, else 0.

Heads over an actor's categorical distribution ``pi_theta(.|s)`` (``sac``,
:class:`ActorPolicy`): softmax ``pi(a|s) = pi_theta(a|s)^(1/T) / sum_b pi_theta(b|s)^(1/T)``
(``T = 1``: the actor itself, the default), greedy ``1[a = argmax_b pi_theta(b|s)]`` and
epsilon-greedy ``(1 - eps) * greedy + eps / A``.

Baselines: :class:`BehaviorCloningPolicy` (softmax of a cloned classifier), :class:`UniformPolicy`,
:class:`MostPopularPolicy` (from train counts) and :class:`LoggedBehaviourPolicy` (the logging
policy's own propensities, known at the logged rows only).

The ``other`` action (id ``A - 1``, all items outside the top-N) is skipped by top-k lists by
default; ``expand_other=True`` splits its probability uniformly over the bucket's items
(``pi(item|s) = pi(other|s) / n_items(other)``, docs/design.md §3) and ranks those items
alongside the top items, breaking ties among them at random.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from offline_rl.errors import TrainError
from offline_rl.qfunction import Actor, Imitator, QFunction, check_states

__all__ = [
    "Policy",
    "BasePolicy",
    "GreedyPolicy",
    "EpsilonGreedyPolicy",
    "SoftmaxPolicy",
    "ActorPolicy",
    "BehaviorCloningPolicy",
    "UniformPolicy",
    "MostPopularPolicy",
    "LoggedBehaviourPolicy",
]


@runtime_checkable
class Policy(Protocol):
    """What every policy offers (docs/design.md §4)."""

    name: str
    n_actions: int

    def action_probs(self, states: np.ndarray) -> np.ndarray: ...


class BasePolicy:
    """Shared behaviour: input checks, sampling and top-k lists.

    Subclasses implement ``_probs(states) -> (n, A)`` on checked float64 raw states.
    ``dim`` is the expected state dimension (``None``: any).
    """

    def __init__(
        self, name: str, n_actions: int, *, dim: int | None = None, actions: Any = None
    ) -> None:
        if (
            isinstance(n_actions, bool)
            or not isinstance(n_actions, int | np.integer)
            or n_actions < 1
        ):
            raise TrainError(f"{name}: n_actions = {n_actions!r}, must be a whole number >= 1")
        if actions is not None and actions.n_actions != n_actions:
            raise TrainError(
                f"{name}: the action space has {actions.n_actions} actions but the policy "
                f"has {n_actions}"
            )
        self.name = name
        self.n_actions = int(n_actions)
        self.dim = dim
        self.actions = actions

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, n_actions={self.n_actions})"

    def _states(self, states: Any) -> np.ndarray:
        if self.dim is None:
            arr = np.asarray(states, dtype=np.float64)
            if arr.ndim != 2:
                raise TrainError(f"{self.name}: expected states of shape (n, d), got {arr.shape}")
            return arr
        return check_states(states, self.dim, self.name)

    def _probs(self, states: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def action_probs(self, states: np.ndarray) -> np.ndarray:
        """(n, d) raw states -> (n, A) float64 probabilities, rows summing to 1."""
        return self._probs(self._states(states))

    def sample_actions(self, states: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(n,) int64 actions drawn from ``action_probs`` with ``rng``."""
        probs = self.action_probs(states)
        cdf = np.cumsum(probs, axis=1)
        u = rng.random(probs.shape[0]) * cdf[:, -1]
        picks = (cdf <= u[:, None]).sum(axis=1)
        return np.minimum(picks, self.n_actions - 1).astype(np.int64)

    def top_k_actions(
        self, states: np.ndarray, k: int, *, include_other: bool = False
    ) -> np.ndarray:
        """(n, k) int64 action ids by decreasing probability (ties: lower id first).

        The ``other`` action (``A - 1``) is left out unless ``include_other``.
        """
        probs = self.action_probs(states)
        limit = self.n_actions if include_other else self.n_actions - 1
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= limit:
            raise TrainError(
                f"{self.name}: k = {k!r}, must be between 1 and {limit} "
                f"({'with' if include_other else 'without'} the other action)"
            )
        ranked = np.argsort(-probs[:, :limit], axis=1, kind="stable")
        return ranked[:, :k].astype(np.int64)

    def top_k_items(
        self,
        states: np.ndarray,
        k: int,
        *,
        expand_other: bool = False,
        rng: np.random.Generator | None = None,
    ) -> list[list[str]]:
        """Top-k item ids per state (needs the policy's ``ActionSpace``).

        Without ``expand_other`` only the top items are ranked. With it, each item of the
        ``other`` bucket gets ``pi(other|s) / n_items(other)`` and competes for the k slots;
        ``rng`` breaks ties among bucket items (required then).
        """
        if self.actions is None:
            raise TrainError(
                f"{self.name}: top_k_items needs the action space; build the "
                f"policy with actions=ActionSpace(...) or use top_k_actions"
            )
        top = list(self.actions.top_items)
        if not expand_other or not self.actions.other_items:
            if expand_other and not self.actions.other_items:
                raise TrainError(
                    f"{self.name}: expand_other=True but the action space lists "
                    f"no items in the other bucket"
                )
            ids = self.top_k_actions(states, k)
            return [[top[a] for a in row] for row in ids]
        if rng is None:
            raise TrainError(
                f"{self.name}: expand_other=True needs rng= (a numpy Generator) "
                f"to break ties among the other bucket's items"
            )
        others = list(self.actions.other_items)
        n_items = len(top) + len(others)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n_items:
            raise TrainError(f"{self.name}: k = {k!r}, must be between 1 and {n_items}")
        probs = self.action_probs(states)
        out: list[list[str]] = []
        for row in probs:
            per_other = row[-1] / len(others)
            shuffled = rng.permutation(len(others))
            scores = np.concatenate([row[:-1], np.full(len(others), per_other)])
            names = top + [others[i] for i in shuffled]
            order = np.argsort(-scores, kind="stable")[:k]
            out.append([names[i] for i in order])
        return out


# --------------------------------------------------------------------------------------------
# heads over a learned Q-function


def _q_name(q: Any, suffix: str) -> str:
    if not isinstance(q, QFunction):
        raise TrainError(f"expected a QFunction, got {type(q).__name__}")
    return f"{q.name}:{suffix}"


class _QHead(BasePolicy):
    def __init__(self, q: QFunction, name: str, actions: Any = None) -> None:
        _q_name(q, "")
        super().__init__(name, q.n_actions, dim=q.spec.dim, actions=actions)
        self.q = q

    def _greedy(self, states: np.ndarray) -> np.ndarray:
        q, allowed = self.q.q_and_allowed(states)
        best = np.where(allowed, q, -np.inf).argmax(axis=1)
        probs = np.zeros(q.shape, dtype=np.float64)
        probs[np.arange(q.shape[0]), best] = 1.0
        return probs


class GreedyPolicy(_QHead):
    """argmax_a Q(s, a) over allowed actions, as one-hot probabilities."""

    def __init__(self, q: QFunction, name: str | None = None, actions: Any = None) -> None:
        super().__init__(q, name or _q_name(q, "greedy"), actions)

    def _probs(self, states: np.ndarray) -> np.ndarray:
        return self._greedy(states)


class EpsilonGreedyPolicy(_QHead):
    """``(1 - epsilon) * greedy + epsilon * uniform`` (uniform over all A actions)."""

    def __init__(
        self, q: QFunction, epsilon: float = 0.1, name: str | None = None, actions: Any = None
    ) -> None:
        if (
            isinstance(epsilon, bool)
            or not isinstance(epsilon, int | float)
            or not 0.0 <= epsilon <= 1.0
        ):
            raise TrainError(f"epsilon = {epsilon!r}, must be between 0 and 1")
        super().__init__(q, name or _q_name(q, f"eps{epsilon:g}"), actions)
        self.epsilon = float(epsilon)

    def _probs(self, states: np.ndarray) -> np.ndarray:
        return (1.0 - self.epsilon) * self._greedy(states) + self.epsilon / self.n_actions


class SoftmaxPolicy(_QHead):
    """``softmax(Q(s, ·) / temperature)`` over allowed actions."""

    def __init__(
        self, q: QFunction, temperature: float = 1.0, name: str | None = None, actions: Any = None
    ) -> None:
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, int | float)
            or not temperature > 0
            or not np.isfinite(temperature)
        ):
            raise TrainError(f"temperature = {temperature!r}, must be a finite number > 0")
        super().__init__(q, name or _q_name(q, f"softmax{temperature:g}"), actions)
        self.temperature = float(temperature)

    def _probs(self, states: np.ndarray) -> np.ndarray:
        q, allowed = self.q.q_and_allowed(states)
        z = np.where(allowed, q / self.temperature, -np.inf)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------------------------
# heads over an actor (sac)

ACTOR_HEADS: tuple[str, ...] = ("softmax", "greedy", "epsilon_greedy")


class ActorPolicy(BasePolicy):
    """A policy from a ``sac`` actor's distribution ``pi_theta(a|s)`` (module docstring).

    ``head = "softmax"`` with ``temperature = 1`` returns the actor's own probabilities;
    ``"greedy"`` its most likely action (ties: lowest id); ``"epsilon_greedy"`` mixes that
    with ``epsilon`` of uniform mass over all A actions.
    """

    def __init__(
        self,
        actor: Actor,
        head: str = "softmax",
        *,
        epsilon: float = 0.1,
        temperature: float = 1.0,
        name: str | None = None,
        actions: Any = None,
    ) -> None:
        if not isinstance(actor, Actor):
            raise TrainError(f"expected an Actor, got {type(actor).__name__}")
        if head not in ACTOR_HEADS:
            raise TrainError(f"head = {head!r}: choose one of {', '.join(ACTOR_HEADS)}")
        if (
            isinstance(epsilon, bool)
            or not isinstance(epsilon, int | float)
            or not 0.0 <= epsilon <= 1.0
        ):
            raise TrainError(f"epsilon = {epsilon!r}, must be between 0 and 1")
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, int | float)
            or not temperature > 0
            or not np.isfinite(temperature)
        ):
            raise TrainError(f"temperature = {temperature!r}, must be a finite number > 0")
        suffix = {
            "softmax": "actor" if temperature == 1 else f"actor{temperature:g}",
            "greedy": "greedy",
            "epsilon_greedy": f"eps{epsilon:g}",
        }[head]
        super().__init__(
            name or f"{actor.name}:{suffix}", actor.n_actions, dim=actor.spec.dim, actions=actions
        )
        self.actor = actor
        self.head = head
        self.epsilon = float(epsilon)
        self.temperature = float(temperature)

    def _probs(self, states: np.ndarray) -> np.ndarray:
        if self.head == "softmax":
            return self.actor.probs(states, self.temperature)
        logits = self.actor.logits(states)
        probs = np.zeros(logits.shape, dtype=np.float64)
        probs[np.arange(logits.shape[0]), logits.argmax(axis=1)] = 1.0
        if self.head == "epsilon_greedy":
            probs = (1.0 - self.epsilon) * probs + self.epsilon / self.n_actions
        return probs


# --------------------------------------------------------------------------------------------
# baselines


class BehaviorCloningPolicy(BasePolicy):
    """``softmax(logits / temperature)`` of a cloned behaviour classifier (d3rlpy DiscreteBC)."""

    def __init__(
        self,
        imitator: Imitator,
        temperature: float = 1.0,
        name: str | None = None,
        actions: Any = None,
    ) -> None:
        if not isinstance(imitator, Imitator):
            raise TrainError(f"expected an Imitator, got {type(imitator).__name__}")
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, int | float)
            or not temperature > 0
            or not np.isfinite(temperature)
        ):
            raise TrainError(f"temperature = {temperature!r}, must be a finite number > 0")
        super().__init__(
            name or imitator.name, imitator.n_actions, dim=imitator.spec.dim, actions=actions
        )
        self.imitator = imitator
        self.temperature = float(temperature)

    def _probs(self, states: np.ndarray) -> np.ndarray:
        return self.imitator.probs(states, self.temperature)


class UniformPolicy(BasePolicy):
    """``pi(a|s) = 1 / A`` for every action."""

    def __init__(
        self, n_actions: int, name: str = "uniform", dim: int | None = None, actions: Any = None
    ) -> None:
        super().__init__(name, n_actions, dim=dim, actions=actions)

    def _probs(self, states: np.ndarray) -> np.ndarray:
        return np.full((states.shape[0], self.n_actions), 1.0 / self.n_actions)


class MostPopularPolicy(BasePolicy):
    """Recommend the most frequent action of the train split, whatever the state.

    ``pi = (1 - epsilon) * onehot(most popular) + epsilon * counts / sum(counts)``; with the
    default ``epsilon = 0`` it is deterministic. ``other`` is never the most popular pick
    (it is a bucket, not an item) unless it is the only action seen. ``top_k_*`` rank actions
    by count through the probabilities' tie-free order (see ``ranking``).
    """

    def __init__(
        self,
        counts: np.ndarray,
        epsilon: float = 0.0,
        name: str = "most_popular",
        dim: int | None = None,
        actions: Any = None,
    ) -> None:
        counts = np.asarray(counts, dtype=np.float64)
        if counts.ndim != 1 or counts.shape[0] < 1:
            raise TrainError(f"{name}: counts must be a 1-D array with one entry per action")
        if (counts < 0).any() or not np.isfinite(counts).all() or counts.sum() <= 0:
            raise TrainError(f"{name}: counts must be finite, >= 0 and not all zero")
        if (
            isinstance(epsilon, bool)
            or not isinstance(epsilon, int | float)
            or not 0.0 <= epsilon <= 1.0
        ):
            raise TrainError(f"{name}: epsilon = {epsilon!r}, must be between 0 and 1")
        super().__init__(name, int(counts.shape[0]), dim=dim, actions=actions)
        self.counts = counts
        self.epsilon = float(epsilon)
        items = counts[:-1] if counts.shape[0] > 1 and counts[:-1].sum() > 0 else counts
        best = int(np.argmax(items))
        base = np.zeros(counts.shape[0])
        base[best] = 1.0
        self.best_action = best
        self._row = (1.0 - self.epsilon) * base + self.epsilon * counts / counts.sum()
        # strictly decreasing tie-free scores for top-k: probability, then count, then low id
        order = np.lexsort((np.arange(counts.shape[0]), -counts, -self._row))
        self.ranking = order.astype(np.int64)

    @classmethod
    def from_transitions(
        cls,
        train: Any,
        n_actions: int,
        epsilon: float = 0.0,
        dim: int | None = None,
        actions: Any = None,
    ) -> MostPopularPolicy:
        """Count the logged actions of ``train`` (an :class:`sql.dataset.Transitions`)."""
        acts = np.asarray(train.actions, dtype=np.int64)
        if acts.size == 0:
            raise TrainError("most_popular: the train split has no transitions to count")
        if acts.min() < 0 or acts.max() >= n_actions:
            raise TrainError(f"most_popular: train actions fall outside 0..{n_actions - 1}")
        counts = np.bincount(acts, minlength=n_actions)
        return cls(counts, epsilon=epsilon, dim=dim, actions=actions)

    def _probs(self, states: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._row, (states.shape[0], self.n_actions)).copy()

    def top_k_actions(
        self, states: np.ndarray, k: int, *, include_other: bool = False
    ) -> np.ndarray:
        n = self._states(states).shape[0]
        ranking = (
            self.ranking if include_other else self.ranking[self.ranking != self.n_actions - 1]
        )
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= ranking.shape[0]:
            raise TrainError(f"{self.name}: k = {k!r}, must be between 1 and {ranking.shape[0]}")
        return np.broadcast_to(ranking[:k], (n, k)).copy()


class LoggedBehaviourPolicy(BasePolicy):
    """The logging policy, known through the logged propensities of the logged rows.

    Built from logged :class:`sql.dataset.Transitions`; ``action_probs(states)`` accepts exactly
    those rows' states (same order) and returns, per row ``i`` with logged action ``a_i``:

    * ``mu(a_i | s_i)`` = the logged propensity for a top item; for an item in the ``other``
      bucket, ``min(1, propensity * n_items(other))`` (the bucket convention of design §3);
    * the remaining ``1 - mu(a_i|s_i)`` spread over the other actions in proportion to the
      logged action frequencies (the part the logs cannot tell; only ``mu(a_i|s_i)`` is exact).

    ``logged_propensities()`` returns the exact per-row action-level values.
    """

    def __init__(
        self, logged: Any, n_actions: int, actions: Any = None, name: str = "behaviour"
    ) -> None:
        super().__init__(
            name, n_actions, dim=int(np.asarray(logged.states).shape[1]), actions=actions
        )
        props = np.asarray(logged.propensities, dtype=np.float64)
        acts = np.asarray(logged.actions, dtype=np.int64)
        if props.shape != acts.shape:
            raise TrainError(f"{name}: {props.shape[0]} propensities for {acts.shape[0]} actions")
        missing = np.flatnonzero(~np.isfinite(props))
        if missing.size:
            raise TrainError(
                f"{name}: propensity unknown for {missing.size} of {props.size} rows (first: "
                f"row {missing[0]}, episode {logged.episode_ids[missing[0]]!r}); organic data "
                f"has no logging propensities: use a BehaviorCloningPolicy (estimated) instead"
            )
        bad = np.flatnonzero((props <= 0) | (props > 1))
        if bad.size:
            raise TrainError(
                f"{name}: propensity {props[bad[0]]} in row {bad[0]} is outside (0, 1]"
            )
        if acts.size and (acts.min() < 0 or acts.max() >= n_actions):
            raise TrainError(f"{name}: logged actions fall outside 0..{n_actions - 1}")
        other = n_actions - 1
        n_other_items = len(actions.other_items) if actions is not None else 0
        mu = props.copy()
        if n_other_items > 0:
            in_other = acts == other
            mu[in_other] = np.minimum(1.0, props[in_other] * n_other_items)
        self.states = np.asarray(logged.states, dtype=np.float64)
        self.logged_actions = acts
        self._mu = mu
        freq = np.bincount(acts, minlength=n_actions).astype(np.float64) + 1.0
        self._freq = freq / freq.sum()

    def logged_propensities(self) -> np.ndarray:
        """(n,) action-level ``mu(a_i | s_i)`` of every logged row."""
        return self._mu.copy()

    def _probs(self, states: np.ndarray) -> np.ndarray:
        if states.shape != self.states.shape or not np.array_equal(states, self.states):
            raise TrainError(
                f"{self.name}: the logging policy is known only at the {self.states.shape[0]} "
                f"logged rows it was built from; pass exactly those states, in order "
                f"(got {states.shape[0]} rows that differ)"
            )
        n = states.shape[0]
        rows = np.arange(n)
        rest = np.broadcast_to(self._freq, (n, self.n_actions)).copy()
        rest[rows, self.logged_actions] = 0.0
        total = rest.sum(axis=1)
        rest *= ((1.0 - self._mu) / np.where(total > 0, total, 1.0))[:, None]
        rest[rows, self.logged_actions] = self._mu
        return rest
