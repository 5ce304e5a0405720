"""The state vector's layout (docs/design.md §3): names, kinds and offsets of every feature.

One definition shared by the SQL build (``fct_transitions.sql`` assembles the vector in this
order), the feature_spec table and anyone computing the same features online (the simulator).

Layout for ``k = last_k`` and ``A = n_actions`` (``NONE = A`` pads missing ids)::

    step | prev_action_1..k | last_item_1..k | n_view n_click n_add_to_cart n_purchase |
    secs_since_session_start secs_since_prev_event | hour_of_day day_of_week | position |
    hist_sessions hist_purchases hist_spend | bag_0..bag_{A-1} (item_encoding = "onehot")

so ``d = 13 + 2k`` (+ ``A`` with the one-hot bag).
"""

from __future__ import annotations

from sql.errors import BuildError

__all__ = [
    "KINDS",
    "SCALAR_FEATURES",
    "HEAD_FEATURES",
    "TAIL_FEATURES",
    "state_layout",
    "state_dim",
]

#: Allowed feature kinds: ``count``/``numeric`` are normalised with train mean/std;
#: ``index``/``onehot`` keep mean 0, std 1.
KINDS: tuple[str, ...] = ("count", "numeric", "index", "onehot")

#: Scalar features before the lists (name, kind).
HEAD_FEATURES: tuple[tuple[str, str], ...] = (("step", "count"),)

#: Scalar features after the two id lists (name, kind), in vector order.
TAIL_FEATURES: tuple[tuple[str, str], ...] = (
    ("n_view", "count"),
    ("n_click", "count"),
    ("n_add_to_cart", "count"),
    ("n_purchase", "count"),
    ("secs_since_session_start", "numeric"),
    ("secs_since_prev_event", "numeric"),
    ("hour_of_day", "numeric"),
    ("day_of_week", "numeric"),
    ("position", "numeric"),
    ("hist_sessions", "count"),
    ("hist_purchases", "count"),
    ("hist_spend", "numeric"),
)

#: Every normalised (count/numeric) feature; each is a column of ``int_features``.
SCALAR_FEATURES: tuple[str, ...] = tuple(n for n, _ in HEAD_FEATURES + TAIL_FEATURES)


def state_layout(
    last_k: int, n_actions: int, item_encoding: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(names, kinds) of the state vector, in order; ``len(names) == state_dim(...)``."""
    if isinstance(last_k, bool) or not isinstance(last_k, int) or last_k < 1:
        raise BuildError(f"last_k = {last_k!r}: must be a whole number >= 1")
    if isinstance(n_actions, bool) or not isinstance(n_actions, int) or n_actions < 1:
        raise BuildError(f"n_actions = {n_actions!r}: must be a whole number >= 1")
    if item_encoding not in ("onehot", "index"):
        raise BuildError(f"item_encoding = {item_encoding!r}: must be 'onehot' or 'index'")
    names: list[str] = []
    kinds: list[str] = []
    for name, kind in HEAD_FEATURES:
        names.append(name)
        kinds.append(kind)
    for prefix in ("prev_action", "last_item"):
        for j in range(1, last_k + 1):
            names.append(f"{prefix}_{j}")
            kinds.append("index")
    for name, kind in TAIL_FEATURES:
        names.append(name)
        kinds.append(kind)
    if item_encoding == "onehot":
        for a in range(n_actions):
            names.append(f"bag_{a}")
            kinds.append("onehot")
    return tuple(names), tuple(kinds)


def state_dim(last_k: int, n_actions: int, item_encoding: str) -> int:
    """Length of the state vector: ``13 + 2*last_k`` (+ ``n_actions`` for onehot)."""
    return len(state_layout(last_k, n_actions, item_encoding)[0])
