"""``[build]`` section of offrec.toml."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["BuildConfig"]


@dataclass(frozen=True)
class BuildConfig:
    """Turning warehouse events into (state, action, reward, next_state) datasets."""

    mode: str = field(
        default="logged",
        metadata={"help": "decisions are impressions ('logged') or interactions ('organic')",
                  "choices": ("logged", "organic")},
    )
    top_n: int = field(default=50, metadata={"help": "items in the action space (+ 'other')",
                                             "min": 1})
    last_k: int = field(default=3, metadata={"help": "recent actions/items in the state", "min": 1})
