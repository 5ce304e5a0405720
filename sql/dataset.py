"""Datasets as numpy arrays: the containers every later stage reads.

:class:`Transitions` holds one dataset version (optionally one split) in episode/step order;
:class:`FeatureSpec` names the state columns and carries the train-split normalisation.
``load_transitions`` reads them back from the warehouse (see docs/design.md §3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sql.errors import BuildError

__all__ = ["ActionSpace", "FeatureSpec", "Transitions", "COMPONENTS"]

COMPONENTS: tuple[str, ...] = ("r_click", "r_cart", "r_purchase", "r_revenue")


@dataclass(frozen=True)
class ActionSpace:
    """Action ids: ``0 .. n_top-1`` are ``top_items`` in order; ``other`` (= n_top) is the rest.

    ``other_items`` are the items known to fall in the ``other`` bucket; a policy choosing
    ``other`` shows one of them uniformly at random, so
    ``pi(item | s) = pi(other | s) / len(other_items)`` (docs/design.md §3).
    """

    top_items: tuple[str, ...]
    other_items: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(set(self.top_items)) != len(self.top_items):
            raise BuildError("action space top_items contain duplicates")
        overlap = set(self.top_items) & set(self.other_items)
        if overlap:
            raise BuildError(f"items both in top_items and other_items: {sorted(overlap)[:5]}")

    @property
    def n_actions(self) -> int:
        return len(self.top_items) + 1

    @property
    def other(self) -> int:
        return len(self.top_items)

    def action_of(self, items: np.ndarray | list[str]) -> np.ndarray:
        """(n,) item ids -> (n,) int64 action ids (unknown items -> ``other``)."""
        index = {item: i for i, item in enumerate(self.top_items)}
        return np.fromiter(
            (index.get(item, self.other) for item in items), dtype=np.int64, count=len(items)
        )

    def to_dict(self) -> dict[str, object]:
        return {"top_items": list(self.top_items), "other_items": list(self.other_items)}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ActionSpace:
        return cls(tuple(data["top_items"]), tuple(data.get("other_items", ())))  # type: ignore[arg-type]


@dataclass(frozen=True)
class FeatureSpec:
    """Names, kinds and train-split normalisation of the state vector.

    ``normalise(x) = (x - mean) / std`` column-wise; ``std`` is 1 where the train std was 0
    and for ``index``/``onehot`` features (mean 0).
    """

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    mean: np.ndarray  # (d,) float64
    std: np.ndarray  # (d,) float64
    n_actions: int
    last_k: int
    item_encoding: str

    def __post_init__(self) -> None:
        d = len(self.names)
        if len(self.kinds) != d or self.mean.shape != (d,) or self.std.shape != (d,):
            raise BuildError(
                f"feature_spec is inconsistent: {d} names, {len(self.kinds)} kinds, "
                f"mean {self.mean.shape}, std {self.std.shape}"
            )
        if np.any(self.std <= 0) or not np.all(np.isfinite(self.std)):
            raise BuildError("feature_spec std must be finite and > 0 for every feature")

    @property
    def dim(self) -> int:
        return len(self.names)

    def offset(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise BuildError(f"feature {name!r} is not in the feature_spec") from None

    def normalise(self, states: np.ndarray) -> np.ndarray:
        """(n, d) raw -> (n, d) float32 normalised with the train statistics."""
        states = np.asarray(states, dtype=np.float64)
        if states.ndim != 2 or states.shape[1] != self.dim:
            raise BuildError(f"expected states of shape (n, {self.dim}), got {states.shape}")
        return ((states - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict[str, object]:
        return {
            "names": list(self.names),
            "kinds": list(self.kinds),
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "n_actions": self.n_actions,
            "last_k": self.last_k,
            "item_encoding": self.item_encoding,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> FeatureSpec:
        try:
            return cls(
                names=tuple(data["names"]),  # type: ignore[arg-type]
                kinds=tuple(data["kinds"]),  # type: ignore[arg-type]
                mean=np.asarray(data["mean"], dtype=np.float64),
                std=np.asarray(data["std"], dtype=np.float64),
                n_actions=int(data["n_actions"]),  # type: ignore[arg-type]
                last_k=int(data["last_k"]),  # type: ignore[arg-type]
                item_encoding=str(data["item_encoding"]),
            )
        except KeyError as exc:
            raise BuildError(f"feature_spec is missing key {exc.args[0]!r}") from None

    def same_as(self, other: FeatureSpec) -> list[str]:
        """Human-readable differences (empty when compatible)."""
        diffs = []
        if self.names != other.names:
            diffs.append(f"feature names differ ({self.dim} vs {other.dim} features)")
        if self.n_actions != other.n_actions:
            diffs.append(f"n_actions differs ({self.n_actions} vs {other.n_actions})")
        if self.dim == other.dim and not (
            np.allclose(self.mean, other.mean) and np.allclose(self.std, other.std)
        ):
            diffs.append("normalisation statistics differ")
        return diffs


@dataclass(frozen=True)
class Transitions:
    """One dataset (or split) in episode/step order. ``n`` rows, state dimension ``d``."""

    states: np.ndarray  # (n, d) float32, raw
    next_states: np.ndarray  # (n, d) float32, zeros on each episode's last row
    actions: np.ndarray  # (n,) int64 in [0, n_actions)
    rewards: np.ndarray  # (n,) float64
    components: dict[str, np.ndarray]  # COMPONENTS -> (n,) float64
    terminals: np.ndarray  # (n,) bool
    timeouts: np.ndarray  # (n,) bool
    episode_ids: np.ndarray  # (n,) object (str)
    steps: np.ndarray  # (n,) int64
    propensities: np.ndarray  # (n,) float64, nan when unknown
    positions: np.ndarray  # (n,) int64
    user_ids: np.ndarray  # (n,) object (str)
    split: np.ndarray  # (n,) object: 'train' | 'validation' | 'test'
    item_ids: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))  # (n,) raw
    version: str = ""

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    @property
    def n_episodes(self) -> int:
        return int(len(np.unique(self.episode_ids)))

    @property
    def episode_index(self) -> np.ndarray:
        """(n,) int64 dense episode index 0..n_episodes-1 in order of first appearance."""
        _, first, inverse = np.unique(self.episode_ids, return_index=True, return_inverse=True)
        order = np.argsort(np.argsort(first))
        return order[inverse].astype(np.int64)

    @property
    def is_first(self) -> np.ndarray:
        """(n,) bool: the row is the first decision of its episode."""
        return self.steps == 0

    @property
    def is_last(self) -> np.ndarray:
        """(n,) bool: the row ends its episode (terminal or timeout)."""
        return self.terminals | self.timeouts

    def select(self, mask: np.ndarray) -> Transitions:
        """Rows where ``mask`` is true (keep whole episodes, e.g. a split)."""
        mask = np.asarray(mask, dtype=bool)
        return Transitions(
            states=self.states[mask],
            next_states=self.next_states[mask],
            actions=self.actions[mask],
            rewards=self.rewards[mask],
            components={k: v[mask] for k, v in self.components.items()},
            terminals=self.terminals[mask],
            timeouts=self.timeouts[mask],
            episode_ids=self.episode_ids[mask],
            steps=self.steps[mask],
            propensities=self.propensities[mask],
            positions=self.positions[mask],
            user_ids=self.user_ids[mask],
            split=self.split[mask],
            item_ids=self.item_ids[mask] if len(self.item_ids) else self.item_ids,
            version=self.version,
        )

    def for_split(self, name: str) -> Transitions:
        if name not in ("train", "validation", "test"):
            raise BuildError(f"split must be train, validation or test, got {name!r}")
        return self.select(self.split == name)
