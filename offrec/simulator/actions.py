"""Map a dataset's action space (``sql.dataset.ActionSpace``) onto the simulator's catalog."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from offrec.simulator.errors import SimulatorError
from offrec.simulator.world import Catalog

__all__ = ["ResolvedActions", "resolve_action_space"]


@dataclass(frozen=True)
class ResolvedActions:
    """Catalog indices behind the actions.

    ``top_index[a]`` is the item of top action ``a``; ``other_index`` the items the ``other``
    action shows uniformly at random: the action space's ``other_items``, or, when it lists none,
    every catalog item that is not a top item. ``item_action[i]`` is the action id the offline
    build assigns to catalog item ``i`` (its top action, else ``other``).
    """

    top_index: np.ndarray  # (n_top,) int64
    other_index: np.ndarray  # (n_other,) int64
    item_action: np.ndarray  # (N,) int64

    @property
    def n_actions(self) -> int:
        return int(self.top_index.shape[0]) + 1

    @property
    def other(self) -> int:
        return int(self.top_index.shape[0])


def resolve_action_space(catalog: Catalog, action_space: object) -> ResolvedActions:
    """Check ``action_space`` against the catalog; raise SimulatorError on unknown items."""
    top = getattr(action_space, "top_items", None)
    other = getattr(action_space, "other_items", ())
    if top is None:
        raise SimulatorError(
            f"action_space must be a sql.dataset.ActionSpace (with top_items and other_items), "
            f"got {type(action_space).__name__}"
        )
    top_index = catalog.index_of(tuple(top), what="action_space.top_items")
    if len(set(top_index.tolist())) != top_index.shape[0]:
        raise SimulatorError("action_space.top_items contains duplicate items")
    if other:
        other_index = catalog.index_of(tuple(other), what="action_space.other_items")
        if np.isin(other_index, top_index).any():
            raise SimulatorError("action_space.other_items overlaps its top_items")
    else:
        other_index = np.setdiff1d(np.arange(catalog.n_items), top_index)
    item_action = np.full(catalog.n_items, top_index.shape[0], dtype=np.int64)
    item_action[top_index] = np.arange(top_index.shape[0])
    return ResolvedActions(
        top_index.astype(np.int64), np.asarray(other_index, dtype=np.int64), item_action
    )
