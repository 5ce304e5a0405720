"""The network input: raw state -> normalised state (+ index features scaled to [0, 1]).

``FeatureSpec.normalise`` gives ``(x - mean) / std`` with train statistics, but ``index``
features (``prev_action_j``, ``last_item_j``: action ids ``0 .. A-1`` and ``A`` for "none")
keep mean 0 and std 1 by contract, so they enter a network as integers up to ``A`` (~50) beside
unit-scale features. On the simulator that made CQL's result depend on the seed (value per
session 3.30 / 2.89 / 0.93 for seeds 0 / 1 / 2); dividing them by ``A`` gave 3.14 / 2.93 / 3.08
(one-hot encoding them instead: 3.02 / 2.72 / 2.86, and 5x wider inputs). So by default the
network input divides index features by ``A`` (``[train] scale_index_features``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["StateEncoder", "as_encoder"]


@dataclass(frozen=True)
class StateEncoder:
    """``encode(raw (n, d)) -> (n, d) float32`` network input for one feature spec."""

    spec: Any  # sql.dataset.FeatureSpec
    scale_index: bool = True

    @property
    def dim(self) -> int:
        return int(self.spec.dim)

    @property
    def index_columns(self) -> np.ndarray:
        return np.flatnonzero(np.asarray(self.spec.kinds) == "index")

    def __call__(self, states: Any) -> np.ndarray:
        x = self.spec.normalise(states)
        if self.scale_index:
            cols = self.index_columns
            if cols.size:
                x[:, cols] /= np.float32(self.spec.n_actions)
        return x

    def to_dict(self) -> dict[str, Any]:
        return {"scale_index_features": self.scale_index, "index_divisor": int(self.spec.n_actions)}


def as_encoder(spec_or_encoder: Any, scale_index: bool = True) -> StateEncoder:
    """A :class:`StateEncoder` (a FeatureSpec gets the default encoding)."""
    if isinstance(spec_or_encoder, StateEncoder):
        return spec_or_encoder
    return StateEncoder(spec_or_encoder, scale_index)
