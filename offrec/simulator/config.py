"""``[simulate]`` section of offrec.toml: the world, the behaviour policy, the user model, output.

Every parameter of the generative model is a field here so that a simulation is reproducible
from its config alone (``offrec simulate`` writes the effective section next to its output as
``offrec-simulation.toml``). Two seeds: ``world_seed`` fixes the catalog and the user population,
``seed`` the sessions drawn from them; ground truth for a policy must use the same world.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

__all__ = [
    "SimulatorConfig",
    "RewardWeights",
    "StateOptions",
    "FORMATS",
    "COMPRESSIONS",
    "ITEM_ENCODINGS",
    "MAX_CLICK_DELAY_MS",
    "MAX_CART_DELAY_MS",
    "MAX_PURCHASE_DELAY_MS",
    "MAX_DWELL_MS",
    "MAX_STEP_MS",
]

FORMATS = ("parquet", "csv", "jsonl")
COMPRESSIONS = ("none", "gzip")
ITEM_ENCODINGS = ("onehot", "index")

# Timing of one step (milliseconds). A response follows the previous event of its step after a
# uniform delay in [min, max]; the next impression follows the step's last event after a dwell.
MIN_CLICK_DELAY_MS, MAX_CLICK_DELAY_MS = 1_000, 10_000
MIN_CART_DELAY_MS, MAX_CART_DELAY_MS = 3_000, 30_000
MIN_PURCHASE_DELAY_MS, MAX_PURCHASE_DELAY_MS = 5_000, 60_000
MIN_DWELL_MS, MAX_DWELL_MS = 3_000, 60_000
MAX_STEP_MS = MAX_CLICK_DELAY_MS + MAX_CART_DELAY_MS + MAX_PURCHASE_DELAY_MS + MAX_DWELL_MS


def _f(default: Any, help: str, **meta: Any) -> Any:
    return field(default=default, metadata={"help": help, **meta})


def _check_bounds(obj: object) -> None:
    """Check each field against its metadata (type, min/max/gt/lt, choices).

    The TOML parser checks the same bounds first (naming the file); this catches configs built
    in Python. Raises ValueError naming the field; the parser turns it into a ConfigError.
    """
    for f in fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        meta = f.metadata
        if f.type in ("int", "float"):
            kinds = (int, np.integer) if f.type == "int" else (int, float, np.integer, np.floating)
            ok_type = isinstance(value, kinds) and not isinstance(value, bool)
            if not ok_type:
                kind = "a whole number" if f.type == "int" else "a number"
                raise ValueError(f"{f.name} = {value!r}: must be {kind}")
            if not math.isfinite(value):
                raise ValueError(f"{f.name} = {value!r}: must be finite")
            for key, test, text in (
                ("min", lambda v, b: v >= b, ">="),
                ("max", lambda v, b: v <= b, "<="),
                ("gt", lambda v, b: v > b, ">"),
                ("lt", lambda v, b: v < b, "<"),
            ):
                bound = meta.get(key)
                if bound is not None and not test(value, bound):
                    raise ValueError(f"{f.name} = {value!r}: must be {text} {bound}")
        elif f.type == "bool" and not isinstance(value, bool):
            raise ValueError(f"{f.name} = {value!r}: must be true or false")
        elif f.type == "str":
            if not isinstance(value, str):
                raise ValueError(f"{f.name} = {value!r}: must be a string")
            choices = meta.get("choices")
            if choices and value not in choices:
                raise ValueError(f"{f.name} = {value!r}: must be one of {', '.join(choices)}")


@dataclass(frozen=True)
class SimulatorConfig:
    """The built-in e-commerce session simulator (docs/simulator.md has the model's formulas)."""

    # ---- run
    seed: int = _f(0, "random seed of the sessions (users' visits, shown items, responses)", min=0)
    n_sessions: int = _f(20000, "sessions to simulate", min=1)
    world_seed: int = _f(
        0,
        "random seed of the catalog and the user population; keep it fixed "
        "to compute ground truth for policies learned from these logs",
        min=0,
    )
    start_date: str = _f("2024-01-01", "first day (UTC, YYYY-MM-DD) of the simulated period")
    n_days: int = _f(28, "length of the simulated period in days", min=1, max=3650)
    sessions_per_user: float = _f(4.0, "mean sessions per user (users = sessions / this)", min=1.0)
    max_steps: int = _f(
        30, "a session ends after at most this many recommendations", min=1, max=999
    )
    n_positions: int = _f(
        3, "slots a recommendation can be shown in (position 0 .. n-1)", min=1, max=100
    )
    session_gap_s: float = _f(
        1800.0,
        "minimum inactivity between two sessions of one user; keep it >= [ingest] session_gap_s",
        min=1.0,
    )
    # ---- catalog
    n_items: int = _f(100, "items in the catalog", min=2, max=99999)
    n_categories: int = _f(8, "item categories (each user prefers one)", min=1, max=1000)
    popularity_exponent: float = _f(1.0, "Zipf exponent of item popularity", min=0.0, max=5.0)
    price_median: float = _f(25.0, "median item price", gt=0.0)
    price_spread: float = _f(0.6, "standard deviation of log price", min=0.0, max=3.0)
    # ---- users
    preference_strength: float = _f(
        2.5, "affinity bonus of a user's favourite category", min=0.0, max=20.0
    )
    preference_noise: float = _f(
        0.5, "sd of a user's affinity for the other categories", min=0.0, max=10.0
    )
    quality_weight: float = _f(
        0.5, "weight of the item's intrinsic quality in the affinity", min=0.0, max=10.0
    )
    # ---- responses
    click_bias: float = _f(-2.0, "logit offset of P(click | examined)", min=-20.0, max=20.0)
    cart_bias: float = _f(-2.0, "logit offset of P(add_to_cart | click)", min=-20.0, max=20.0)
    purchase_bias: float = _f(
        -1.5, "logit offset of P(purchase | add_to_cart)", min=-20.0, max=20.0
    )
    price_sensitivity: float = _f(
        0.5, "mean price sensitivity of purchase decisions", min=0.0, max=10.0
    )
    position_decay: float = _f(0.8, "P(examined) = position_decay ** position", gt=0.0, max=1.0)
    continue_bias: float = _f(
        0.5, "logit of continuing the session after an ignored item", min=-20.0, max=20.0
    )
    continue_click: float = _f(
        3.0, "added to the continuation logit after a click", min=-20.0, max=20.0
    )
    continue_purchase: float = _f(
        -1.0, "added to the continuation logit after a purchase", min=-20.0, max=20.0
    )
    # ---- behaviour (logging) policy
    behaviour_epsilon: float = _f(
        0.1,
        "share of uniformly random recommendations (> 0 gives every item a positive propensity)",
        gt=0.0,
        max=1.0,
    )
    behaviour_temperature: float = _f(
        1.0, "softmax temperature of the behaviour score", gt=0.0, max=100.0
    )
    behaviour_affinity_weight: float = _f(
        0.2,
        "weight of the user's affinity in the behaviour score (popularity has weight 1)",
        min=0.0,
        max=10.0,
    )
    # ---- output
    format: str = _f("parquet", "file format of the raw logs", choices=FORMATS)
    compress: str = _f(
        "none",
        "gzip: .csv.gz/.jsonl.gz files, or the gzip codec inside "
        "Parquet (none: Parquet keeps its default snappy codec)",
        choices=COMPRESSIONS,
    )
    partition_by_date: bool = _f(False, "write dt=YYYY-MM-DD/part-0.<ext> per event date")
    drop_session_id: bool = _f(False, "omit session_id (ingest re-sessionises by inactivity)")
    drop_propensity: bool = _f(False, "omit propensity (OPE must estimate it)")

    def __post_init__(self) -> None:
        _check_bounds(self)
        try:
            dt.date.fromisoformat(self.start_date)
        except (TypeError, ValueError):
            raise ValueError(
                f"start_date = {self.start_date!r}: not a date; write it as YYYY-MM-DD"
            ) from None
        if len(self.start_date) != 10:
            raise ValueError(
                f"start_date = {self.start_date!r}: write it as YYYY-MM-DD (10 characters)"
            )
        if self.n_categories > self.n_items:
            raise ValueError(
                f"n_categories = {self.n_categories} is more than n_items = {self.n_items}; "
                "every category needs at least one item"
            )
        if self.sessions_per_user * self.session_spacing_ms > self.n_days * 86_400_000:
            raise ValueError(
                f"sessions_per_user = {self.sessions_per_user} sessions of up to "
                f"{self.max_steps} steps do not fit in n_days = {self.n_days} days with a gap of "
                f"{self.session_gap_s:g} s; raise n_days or lower sessions_per_user or max_steps"
            )

    @property
    def start_ms(self) -> int:
        """``start_date`` 00:00 UTC in milliseconds since the Unix epoch."""
        day = dt.date.fromisoformat(self.start_date)
        return int((day - dt.date(1970, 1, 1)).days) * 86_400_000

    @property
    def max_session_ms(self) -> int:
        """An upper bound of a session's duration (first to last event)."""
        return self.max_steps * MAX_STEP_MS

    @property
    def session_spacing_ms(self) -> int:
        """Minimum distance between the starts of two sessions of one user."""
        return self.max_session_ms + int(math.ceil(self.session_gap_s * 1000)) + 1000


@dataclass(frozen=True)
class RewardWeights:
    """``reward = click*r_click + add_to_cart*r_cart + purchase*r_purchase + revenue*r_revenue``.

    The defaults equal ``[build.reward]``'s (docs/design.md §3).
    """

    click: float = _f(1.0, "weight of a click")
    add_to_cart: float = _f(2.0, "weight of an add_to_cart")
    purchase: float = _f(5.0, "weight of a purchase")
    revenue: float = _f(0.0, "weight of the revenue (price of purchased items)")

    def __post_init__(self) -> None:
        _check_bounds(self)

    @classmethod
    def coerce(cls, value: object) -> RewardWeights:
        """Accept a RewardWeights, a mapping or any object with matching attributes.

        Keys may be spelled ``click``/``add_to_cart``/``purchase``/``revenue``, with an optional
        ``w_`` prefix, and ``cart`` for ``add_to_cart`` (e.g. a ``[build.reward]`` dataclass).
        """
        if isinstance(value, cls):
            return value
        if value is None:
            return cls()
        if isinstance(value, dict):
            data = dict(value)
        else:
            data = {k: getattr(value, k) for k in dir(value) if not k.startswith("_")}
        aliases = {"cart": "add_to_cart"}
        kwargs: dict[str, float] = {}
        for key, v in data.items():
            name = key[2:] if key.startswith("w_") else key
            name = aliases.get(name, name)
            if name in ("click", "add_to_cart", "purchase", "revenue"):
                kwargs[name] = v
            elif isinstance(value, dict):
                raise ValueError(
                    f"unknown reward weight {key!r}; use click, add_to_cart, purchase, revenue"
                )
        return cls(**kwargs)


@dataclass(frozen=True)
class StateOptions:
    """How the section-3 state vector is built (must equal the ``[build]`` settings)."""

    last_k: int = _f(3, "recent actions/items in the state", min=1)
    item_encoding: str = _f(
        "onehot", "'onehot' adds bag_0..bag_{A-1}; 'index' omits it", choices=ITEM_ENCODINGS
    )
    lookback_days: float = _f(
        30.0, "user history window before the session start, days", min=0.0, max=3650.0
    )

    def __post_init__(self) -> None:
        _check_bounds(self)

    @property
    def lookback_ms(self) -> int:
        return int(round(self.lookback_days * 86_400_000))

    @classmethod
    def from_build(cls, build: object) -> StateOptions:
        """Read ``last_k``, ``item_encoding`` and ``lookback_days`` from a ``[build]`` config.

        Fields the build config does not have keep their defaults.
        """
        kwargs = {}
        for name in ("last_k", "item_encoding", "lookback_days"):
            if hasattr(build, name):
                kwargs[name] = getattr(build, name)
        return cls(**kwargs)
