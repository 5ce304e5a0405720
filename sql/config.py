"""``[build]`` section of offrec.toml: how warehouse events become RL datasets.

Every field here except ``threads`` and ``memory_limit`` enters the dataset version id, so two
builds with the same config over the same events get the same version (docs/datasets.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sql.errors import BuildError

__all__ = ["BuildConfig", "RewardConfig", "parse_instant", "RUNTIME_FIELDS"]

#: BuildConfig fields that change how fast a build runs, never what it produces.
RUNTIME_FIELDS: tuple[str, ...] = ("threads", "memory_limit")

_WEIGHT = {"help": "", "min": -1e6, "max": 1e6}


def _weight(default: float, help_text: str) -> float:
    return field(default=default, metadata={**_WEIGHT, "help": help_text})


@dataclass(frozen=True)
class RewardConfig:
    """Reward = click*r_click + add_to_cart*r_cart + purchase*r_purchase + revenue*r_revenue."""

    click: float = _weight(1.0, "weight of each click or view attributed to a decision")
    add_to_cart: float = _weight(2.0, "weight of each add_to_cart attributed to a decision")
    purchase: float = _weight(5.0, "weight of each purchase attributed to a decision")
    revenue: float = _weight(0.0, "weight of each unit of purchase revenue (price)")

    def __post_init__(self) -> None:
        for name in ("click", "add_to_cart", "purchase", "revenue"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise BuildError(f"{name} = {value!r}: must be a number")
            if not math.isfinite(value):
                raise BuildError(f"{name} = {value!r}: must be finite")
        if all(getattr(self, n) == 0 for n in ("click", "add_to_cart", "purchase", "revenue")):
            raise BuildError(
                "reward weights click, add_to_cart, purchase, revenue are all 0, so every reward "
                "would be 0; "
                "give at least one of them a non-zero weight"
            )


def parse_instant(value: str, key: str) -> datetime:
    """``"2024-03-01"`` or ``"2024-03-01T06:00:00"`` (UTC, offset allowed) -> naive UTC datetime."""
    if not isinstance(value, str) or not value.strip():
        raise BuildError(f'{key} = {value!r}: must be a date like "2024-03-01"')
    text = value.strip()
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BuildError(
            f'{key} = {value!r}: not an ISO date; write "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SS" (UTC)'
        ) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


@dataclass(frozen=True)
class BuildConfig:
    """Turning warehouse events into (state, action, reward, next_state) datasets."""

    mode: str = field(
        default="logged",
        metadata={
            "help": "decisions are impressions ('logged') or interaction events ('organic')",
            "choices": ("logged", "organic"),
        },
    )
    top_n: int = field(
        default=50,
        metadata={
            "help": "most-decided train items that get their own action (+ 'other')",
            "min": 1,
            "max": 100000,
        },
    )
    last_k: int = field(
        default=3,
        metadata={
            "help": "recent actions / interacted items kept in the state",
            "min": 1,
            "max": 50,
        },
    )
    item_encoding: str = field(
        default="onehot",
        metadata={
            "help": "'onehot' adds a bag of the last_k items over all actions; 'index' omits it",
            "choices": ("onehot", "index"),
        },
    )
    attribution_window_s: float = field(
        default=1800.0,
        metadata={
            "help": "responses count for an impression only this many seconds after it",
            "gt": 0,
            "max": 365 * 86400,
        },
    )
    reward: RewardConfig = field(default_factory=RewardConfig)
    max_episode_len: int = field(
        default=0,
        metadata={"help": "keep at most this many decisions per session (0 = no cap)", "min": 0},
    )
    session_gap_s: float = field(
        default=1800.0,
        metadata={
            "help": "a session whose last event is closer than this to the data watermark "
            "may still continue: its last decision is a timeout, not terminal",
            "gt": 0,
        },
    )
    lookback_days: float = field(
        default=30.0,
        metadata={
            "help": "days of a user's earlier sessions summed into hist_* features",
            "min": 0,
            "max": 3650,
        },
    )
    train_frac: float = field(
        default=0.8,
        metadata={
            "help": "share of episodes (earliest by session start) in the train split",
            "gt": 0,
            "max": 1,
        },
    )
    validation_frac: float = field(
        default=0.1,
        metadata={
            "help": "share of episodes in the validation split (after train)",
            "min": 0,
            "max": 1,
        },
    )
    test_frac: float = field(
        default=0.1,
        metadata={"help": "share of episodes in the test split (the latest)", "min": 0, "max": 1},
    )
    validation_start: str | None = field(
        default=None,
        metadata={
            "help": "split by date instead of fractions: sessions starting at or after "
            "this UTC date/time are validation (needs test_start)"
        },
    )
    test_start: str | None = field(
        default=None,
        metadata={"help": "sessions starting at or after this UTC date/time are test"},
    )
    start_date: str | None = field(
        default=None,
        metadata={"help": "only sessions starting at or after this UTC date/time (inclusive)"},
    )
    end_date: str | None = field(
        default=None,
        metadata={"help": "ignore events at or after this UTC date/time (exclusive data end)"},
    )
    threads: int = field(
        default=2, metadata={"help": "DuckDB threads (not part of the version id)", "min": 1}
    )
    memory_limit: str = field(
        default="1500MB",
        metadata={
            "help": "DuckDB memory_limit when build opens the warehouse itself "
            "(not part of the version id)"
        },
    )

    def __post_init__(self) -> None:
        if self.mode not in ("logged", "organic"):
            raise BuildError(f"mode = {self.mode!r}: must be 'logged' or 'organic'")
        if self.item_encoding not in ("onehot", "index"):
            raise BuildError(f"item_encoding = {self.item_encoding!r}: must be 'onehot' or 'index'")
        for name, lo in (("top_n", 1), ("last_k", 1), ("max_episode_len", 0), ("threads", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise BuildError(f"{name} = {value!r}: must be a whole number >= {lo}")
        for name in ("attribution_window_s", "session_gap_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise BuildError(f"{name} = {value!r}: must be a number > 0")
        if not (math.isfinite(self.lookback_days) and self.lookback_days >= 0):
            raise BuildError(f"lookback_days = {self.lookback_days!r}: must be >= 0")
        fracs = (self.train_frac, self.validation_frac, self.test_frac)
        if any(not (math.isfinite(f) and 0 <= f <= 1) for f in fracs) or self.train_frac <= 0:
            raise BuildError(
                f"train_frac, validation_frac, test_frac = {fracs}: each must be in "
                "[0, 1] and train_frac > 0"
            )
        if abs(sum(fracs) - 1.0) > 1e-9:
            raise BuildError(
                f"train_frac + validation_frac + test_frac = {sum(fracs):g}: must sum "
                f"to 1 (got {self.train_frac:g} + {self.validation_frac:g} + "
                f"{self.test_frac:g})"
            )
        if (self.validation_start is None) != (self.test_start is None):
            raise BuildError(
                "validation_start and test_start go together: set both (equal values "
                "give an empty validation split) or neither (to split by fractions)"
            )
        if self.validation_start is not None and self.test_start is not None:
            v = parse_instant(self.validation_start, "validation_start")
            t = parse_instant(self.test_start, "test_start")
            if t < v:
                raise BuildError(
                    f"test_start = {self.test_start!r} is before validation_start = "
                    f"{self.validation_start!r}; test must come last"
                )
        start = parse_instant(self.start_date, "start_date") if self.start_date else None
        end = parse_instant(self.end_date, "end_date") if self.end_date else None
        if start is not None and end is not None and end <= start:
            raise BuildError(
                f"end_date = {self.end_date!r} must be after start_date = {self.start_date!r}"
            )
        if not isinstance(self.memory_limit, str) or not self.memory_limit.strip():
            raise BuildError('memory_limit must be a size such as "1500MB" or "2GB"')

    @property
    def uses_split_dates(self) -> bool:
        return self.validation_start is not None

    @property
    def window(self) -> tuple[datetime | None, datetime | None]:
        """(start, end) of the data window as naive UTC datetimes (None = unbounded)."""
        start = parse_instant(self.start_date, "start_date") if self.start_date else None
        end = parse_instant(self.end_date, "end_date") if self.end_date else None
        return start, end
