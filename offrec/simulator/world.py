"""The simulated world: a catalog, a user population and the users' response model.

Everything here is a deterministic function of ``SimulatorConfig`` (its ``world_seed`` and model
parameters); nothing depends on the session seed. Notation (docs/simulator.md):

* items ``i = 0..N-1`` with category ``c_i``, price ``p_i``, quality ``q_i`` and popularity
  logit ``pop_i = -popularity_exponent * log(rank_i)``;
* user ``u`` with category preferences ``pref_u`` (C,), purchase bias ``b_u`` and price
  sensitivity ``s_u``; affinity ``a(u, i) = pref_u[c_i] + quality_weight * q_i``;
* ``P(click | u, i, pos) = position_decay**pos * sigmoid(a + click_bias)``,
  ``P(cart | click) = sigmoid(a + b_u + cart_bias)``,
  ``P(purchase | cart) = sigmoid(a + b_u - s_u * log(p_i / price_median) + purchase_bias)``.

Users are numbered ``0, 1, 2, ...``; user ``j``'s latent traits are drawn in blocks of
``USER_BLOCK`` users from ``default_rng([world_seed, 1, j // USER_BLOCK])``, so any user can be
re-created from its id alone (the per-decision ground truth needs that).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from offrec.simulator.config import RewardWeights, SimulatorConfig
from offrec.simulator.errors import SimulatorError

__all__ = [
    "Catalog",
    "Users",
    "ResponseModel",
    "World",
    "USER_BLOCK",
    "user_id_strings",
    "parse_user_ids",
    "item_id_strings",
    "sigmoid",
]

USER_BLOCK = 1024
USER_ID_WIDTH = 7
ITEM_ID_WIDTH = 5
_USER_RE = re.compile(r"^u(\d+)$")


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function ``1 / (1 + exp(-x))``, elementwise; stable for any finite ``x``."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


def user_id_strings(index: np.ndarray) -> list[str]:
    """Global user numbers -> ids ``u0000042``."""
    return [f"u{int(j):0{USER_ID_WIDTH}d}" for j in index]


def item_id_strings(n_items: int) -> np.ndarray:
    """``(N,)`` object array of item ids ``i00000 .. i{N-1}`` (lexical order = numeric order)."""
    return np.array([f"i{j:0{ITEM_ID_WIDTH}d}" for j in range(n_items)], dtype=object)


def parse_user_ids(user_ids: np.ndarray | list[str]) -> np.ndarray:
    """Ids ``u0000042`` -> ``(n,)`` int64 user numbers; anything else is a SimulatorError."""
    arr = np.asarray(user_ids, dtype=object)
    if arr.ndim != 1:
        raise SimulatorError(f"user_ids must be one-dimensional, got shape {arr.shape}")
    out = np.empty(arr.shape[0], dtype=np.int64)
    cache: dict[object, int] = {}
    for row, uid in enumerate(arr):
        j = cache.get(uid)
        if j is None:
            m = _USER_RE.match(uid) if isinstance(uid, str) else None
            if m is None:
                raise SimulatorError(
                    f"user_ids[{row}] = {uid!r} is not a simulator user id (expected 'u' "
                    "followed by digits, e.g. 'u0000042'); per-decision ground truth exists only "
                    "for data written by offrec simulate"
                )
            j = int(m.group(1))
            cache[uid] = j
        out[row] = j
    return out


@dataclass(frozen=True)
class Catalog:
    """The items. All arrays have shape ``(N,)``."""

    item_ids: np.ndarray  # object (str)
    category: np.ndarray  # int64 in [0, C)
    price: np.ndarray  # float64, cents-rounded, > 0
    quality: np.ndarray  # float64
    popularity: np.ndarray  # float64 logit, -exponent * log(rank)

    @property
    def n_items(self) -> int:
        return int(self.item_ids.shape[0])

    @cached_property
    def _index(self) -> dict[str, int]:
        return {item: i for i, item in enumerate(self.item_ids)}

    def index_of(self, items: tuple[str, ...] | list[str], *, what: str) -> np.ndarray:
        """Item ids -> ``(n,)`` int64 catalog indices; unknown ids raise a SimulatorError."""
        out = np.empty(len(items), dtype=np.int64)
        for k, item in enumerate(items):
            j = self._index.get(item)
            if j is None:
                raise SimulatorError(
                    f"{what}[{k}] = {item!r} is not an item of the simulator catalog "
                    f"({self.item_ids[0]} .. {self.item_ids[-1]}); build the action space "
                    "from logs of this simulator config (same n_items)"
                )
            out[k] = j
        return out


@dataclass(frozen=True)
class Users:
    """Latent traits of ``n`` users (rows), in the order they were asked for."""

    index: np.ndarray  # (n,) int64 global user number
    favourite: np.ndarray  # (n,) int64 favourite category
    preference: np.ndarray  # (n, C) float64 affinity per category
    buy_bias: np.ndarray  # (n,) float64
    price_sensitivity: np.ndarray  # (n,) float64 >= 0
    activity: np.ndarray  # (n,) float64 > 0, relative visit rate

    def __len__(self) -> int:
        return int(self.index.shape[0])


@dataclass(frozen=True)
class ResponseModel:
    """Per (user, item) response probabilities for ``n`` users; arrays of shape ``(n, N)``.

    ``click`` excludes the position factor: ``P(click | pos) = exam[pos] * click``.
    """

    affinity: np.ndarray
    click: np.ndarray
    cart: np.ndarray
    purchase: np.ndarray

    def expected_reward(self, price: np.ndarray, weights: RewardWeights) -> np.ndarray:
        """``(n, N)``: E[reward | u, i] at an examined position (multiply by exam[pos]).

        ``G = P(click) * (w_click + P(cart) * (w_cart + P(purchase) * (w_purchase +
        w_revenue * price)))``.
        """
        inner = weights.purchase + weights.revenue * price[None, :]
        return self.click * (
            weights.click + self.cart * (weights.add_to_cart + self.purchase * inner)
        )


class World:
    """Catalog + user population + response model of one :class:`SimulatorConfig`."""

    def __init__(self, cfg: SimulatorConfig) -> None:
        self.cfg = cfg
        self.catalog = self._make_catalog()
        self.examination = cfg.position_decay ** np.arange(cfg.n_positions, dtype=np.float64)

    # ---------------------------------------------------------------------------- catalog
    def _make_catalog(self) -> Catalog:
        cfg = self.cfg
        rng = np.random.default_rng([cfg.world_seed, 0])
        n, c = cfg.n_items, cfg.n_categories
        category = rng.permutation(np.arange(n) % c).astype(np.int64)
        quality = rng.standard_normal(n)
        # Popular items tend to be good ones: rank by a noisy view of quality.
        noisy = quality + rng.standard_normal(n)
        rank = np.empty(n, dtype=np.int64)
        rank[np.argsort(-noisy, kind="stable")] = np.arange(1, n + 1)
        popularity = -cfg.popularity_exponent * np.log(rank.astype(np.float64))
        price = cfg.price_median * np.exp(cfg.price_spread * rng.standard_normal(n))
        price = np.maximum(np.round(price, 2), 0.01)
        return Catalog(item_id_strings(n), category, price, quality, popularity)

    # ---------------------------------------------------------------------------- users
    def users(self, index: np.ndarray) -> Users:
        """Latent traits of the users numbered ``index`` (any order, repeats allowed)."""
        index = np.asarray(index, dtype=np.int64)
        if index.ndim != 1:
            raise SimulatorError(f"user index must be one-dimensional, got {index.shape}")
        if index.size and index.min() < 0:
            raise SimulatorError(f"user numbers must be >= 0, got {int(index.min())}")
        c = self.cfg.n_categories
        fav = np.empty(index.shape[0], dtype=np.int64)
        pref = np.empty((index.shape[0], c), dtype=np.float64)
        buy = np.empty(index.shape[0], dtype=np.float64)
        sens = np.empty(index.shape[0], dtype=np.float64)
        act = np.empty(index.shape[0], dtype=np.float64)
        block_of = index // USER_BLOCK
        order = np.argsort(block_of, kind="stable")
        blocks, starts = np.unique(block_of[order], return_index=True)
        ends = np.append(starts[1:], order.shape[0])
        for b, lo, hi in zip(blocks, starts, ends, strict=True):
            f_b, p_b, buy_b, s_b, a_b = self._user_block(int(b))
            rows = order[lo:hi]
            local = index[rows] - b * USER_BLOCK
            fav[rows], pref[rows], buy[rows] = f_b[local], p_b[local], buy_b[local]
            sens[rows], act[rows] = s_b[local], a_b[local]
        return Users(index, fav, pref, buy, sens, act)

    def _user_block(self, block: int) -> tuple[np.ndarray, ...]:
        cfg = self.cfg
        rng = np.random.default_rng([cfg.world_seed, 1, block])
        n, c = USER_BLOCK, cfg.n_categories
        fav = rng.integers(0, c, size=n)
        pref = cfg.preference_noise * rng.standard_normal((n, c))
        pref[np.arange(n), fav] += cfg.preference_strength
        buy = 0.7 * rng.standard_normal(n)
        sens = cfg.price_sensitivity * np.exp(0.5 * rng.standard_normal(n))
        activity = np.exp(0.5 * rng.standard_normal(n))
        return fav.astype(np.int64), pref, buy, sens, activity

    # ---------------------------------------------------------------------------- responses
    def responses(self, users: Users) -> ResponseModel:
        """Response probabilities of ``users`` for every item: arrays ``(n, N)``."""
        cfg, cat = self.cfg, self.catalog
        affinity = users.preference[:, cat.category] + cfg.quality_weight * cat.quality[None, :]
        click = sigmoid(affinity + cfg.click_bias)
        cart = sigmoid(affinity + users.buy_bias[:, None] + cfg.cart_bias)
        log_rel_price = np.log(cat.price / cfg.price_median)
        purchase = sigmoid(
            affinity
            + users.buy_bias[:, None]
            - users.price_sensitivity[:, None] * log_rel_price[None, :]
            + cfg.purchase_bias
        )
        return ResponseModel(affinity, click, cart, purchase)

    def behaviour_probs(self, users: Users, affinity: np.ndarray | None = None) -> np.ndarray:
        """``(n, N)`` item probabilities of the logging policy; rows sum to one.

        ``pi_b(i | u) = (1 - eps) * softmax_i((pop_i + w * a(u, i)) / T) + eps / N``.
        It does not depend on the session's history, only on the user.
        """
        cfg = self.cfg
        if affinity is None:
            affinity = self.responses(users).affinity
        score = self.catalog.popularity[None, :] + cfg.behaviour_affinity_weight * affinity
        score = score / cfg.behaviour_temperature
        score -= score.max(axis=1, keepdims=True)
        soft = np.exp(score)
        soft /= soft.sum(axis=1, keepdims=True)
        n_items = self.catalog.n_items
        return (1.0 - cfg.behaviour_epsilon) * soft + cfg.behaviour_epsilon / n_items

    def continue_prob(self, click: np.ndarray, purchase: np.ndarray) -> np.ndarray:
        """P(session continues after a step) given that step's click and purchase flags."""
        cfg = self.cfg
        logit = (
            cfg.continue_bias
            + cfg.continue_click * click.astype(np.float64)
            + cfg.continue_purchase * purchase.astype(np.float64)
        )
        return sigmoid(logit)
