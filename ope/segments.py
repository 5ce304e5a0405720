"""The evaluation split by user segment: new-user sessions versus returning users' sessions.

A **new-user session** is one whose user has no other session with an event in the lookback
window before it: the state feature ``hist_sessions`` (docs/design.md §3, item 9; the build's
``episodes.is_new_user``) is 0. Every decision of a session carries the same history features,
so a segment always holds whole sessions and the session bootstrap stays valid inside it.

:func:`evaluate_segments` runs the given per-decision estimators
(:class:`ope.meta.OffPolicyEvaluation`) and per-session estimators
(:class:`ope.meta.SequentialOffPolicyEvaluation`) on each segment's rows separately. Each
segment's lift is against the logged behaviour *of that segment* (its own mean reward or mean
discounted return), and its interval comes from resampling that segment's sessions; so the
rows answer "how does the policy do for new users", not "how much of the overall lift comes
from new users".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ope.bootstrap import POISSON_MIN_SESSIONS
from ope.errors import OPEError
from ope.meta import OffPolicyEvaluation, SequentialOffPolicyEvaluation
from ope.types import AnyArray, RandomState
from ope.validation import (
    as_float_vector,
    as_id_vector,
    as_int_vector,
    check_same_length,
    make_rng,
    show,
)

__all__ = [
    "NEW",
    "RETURNING",
    "SEGMENT_ORDER",
    "new_user_segments",
    "check_segments",
    "segment_counts",
    "evaluate_segments",
    "segment_labels",
]

NEW = "new_user"
RETURNING = "returning_user"
SEGMENT_ORDER: tuple[str, ...] = (NEW, RETURNING)


def new_user_segments(hist_sessions: Any) -> AnyArray:
    """(n,) ``"new_user"`` where ``hist_sessions`` (n,) is 0, else ``"returning_user"``."""
    h = as_float_vector("hist_sessions", hist_sessions)
    bad = (h < 0) | (h != np.round(h))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise OPEError(
            f"hist_sessions[{i}] = {show(h[i])}; it counts earlier sessions, so it must be a whole "
            "number >= 0 (pass the raw state column, not a normalised one)"
        )
    return np.where(h == 0, NEW, RETURNING).astype(object)


def check_segments(segments: Any, episode_ids: Any) -> tuple[AnyArray, AnyArray]:
    """Validate (n,) segment labels against (n,) session ids: every session in one segment."""
    seg = as_id_vector("segments", segments)
    eps = as_id_vector("episode_ids", episode_ids)
    check_same_length(("episode_ids", eps), ("segments", seg))
    frame = pd.DataFrame({"e": eps, "s": seg})
    mixed = frame.groupby("e", sort=False)["s"].nunique()
    if (mixed > 1).any():
        e = mixed.index[int(np.flatnonzero(mixed.to_numpy() > 1)[0])]
        labels = sorted(map(str, frame.loc[frame["e"] == e, "s"].unique()))
        raise OPEError(
            f"segments: episode {e!r} has rows in segments {labels}; a segment must hold whole "
            "sessions (the bootstrap resamples sessions)"
        )
    return seg, eps


def segment_counts(
    segments: Any, episode_ids: Any, include: Sequence[str] = SEGMENT_ORDER
) -> pd.DataFrame:
    """Per segment: ``segment, n_decisions, n_episodes, decision_share, episode_share``.

    Segments named in ``include`` get a row even when no decision falls in them (zeros).
    """
    seg, eps = check_segments(segments, episode_ids)
    frame = pd.DataFrame({"segment": seg, "e": eps})
    g = frame.groupby("segment", sort=False)
    out = pd.DataFrame({"n_decisions": g.size(), "n_episodes": g["e"].nunique()})
    absent = [s for s in include if s not in out.index]
    if absent:
        zeros = pd.DataFrame({"n_decisions": 0, "n_episodes": 0}, index=pd.Index(absent))
        out = pd.concat([out, zeros])
    out = out.rename_axis("segment").reset_index()
    out["decision_share"] = out["n_decisions"] / len(seg)
    out["episode_share"] = out["n_episodes"] / frame["e"].nunique()
    return _ordered(out)


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    rank = {s: i for i, s in enumerate(SEGMENT_ORDER)}
    key = frame["segment"].map(lambda s: (rank.get(s, len(rank)), str(s)))
    return frame.iloc[np.argsort(key.to_numpy(), kind="stable")].reset_index(drop=True)


def evaluate_segments(
    segments: Any,
    *,
    episode_ids: Any,
    reward: Any,
    action: Any,
    pscore: Any,
    action_dist: Any,
    steps: Any = None,
    estimated_rewards_by_reg_model: Any = None,
    bandit: OffPolicyEvaluation | None = None,
    sequential: SequentialOffPolicyEvaluation | None = None,
    support_mask: Any = None,
    min_episodes: int = 10,
    alpha: float = 0.05,
    n_bootstrap: int = 1000,
    method: str = "percentile",
    scheme: str = "auto",
    random_state: RandomState = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run the estimators on each segment; return ``(results, counts)``.

    Args:
        segments: (n,) segment label of each decision (constant within a session).
        episode_ids, reward, action, pscore: (n,) logged decisions; ``steps`` (n,) their
            0-based step in the session (needed by ``sequential``).
        action_dist: (n, A) the target policy's probabilities;
            ``estimated_rewards_by_reg_model`` (n, A) a reward model (for DM/DR-type).
        bandit, sequential: the estimators to run (at least one of them).
        support_mask: (A,) actions the behaviour takes (for ``unsupported_mass``).
        min_episodes: segments with fewer sessions get no estimates (they are still counted).
        alpha, n_bootstrap, method, scheme, random_state: interval settings of
            :func:`ope.intervals.estimate_intervals`; each segment draws its resamples from
            its own generator seeded from ``random_state``. ``scheme="poisson"`` falls back to
            ``multinomial`` for a segment with fewer than 100 sessions.

    Returns:
        ``results``: the rows of :meth:`OffPolicyEvaluation.summarize` /
        :meth:`SequentialOffPolicyEvaluation.summarize` with ``segment`` and ``family``
        (``per_decision`` | ``per_session``) columns; ``counts``: :func:`segment_counts` plus
        ``evaluated`` (bool).
    """
    if bandit is None and sequential is None:
        raise OPEError("evaluate_segments: give bandit and/or sequential estimators")
    if sequential is not None and steps is None:
        raise OPEError("evaluate_segments: sequential estimators need steps (n,)")
    if isinstance(min_episodes, bool) or not isinstance(min_episodes, int) or min_episodes < 2:
        raise OPEError(f"min_episodes = {min_episodes!r}; must be a whole number >= 2")
    seg, eps = check_segments(segments, episode_ids)
    action = as_int_vector("action", action)
    if np.ndim(action_dist) != 2:
        raise OPEError(f"action_dist must be (n, n_actions), got shape {np.shape(action_dist)}")
    arrays = {
        "reward": reward,
        "action": action,
        "pscore": pscore,
        "action_dist": action_dist,
        "steps": steps,
        "estimated_rewards_by_reg_model": estimated_rewards_by_reg_model,
    }
    for name, arr in arrays.items():
        if arr is not None:
            check_same_length(("segments", seg), (name, np.asarray(arr)))
    counts = segment_counts(seg, eps, include=())
    rng = make_rng(random_state)
    seeds = rng.integers(0, 2**31 - 1, size=len(counts))
    frames: list[pd.DataFrame] = []
    evaluated = []
    for (label, n_eps), seed in zip(
        counts[["segment", "n_episodes"]].itertuples(index=False), seeds, strict=True
    ):
        ok = int(n_eps) >= min_episodes
        evaluated.append(ok)
        if not ok:
            continue
        mask = seg == label
        sub = {k: None if v is None else np.asarray(v)[mask] for k, v in arrays.items()}
        kw: dict[str, Any] = {
            "alpha": alpha,
            "n_bootstrap": n_bootstrap,
            "method": method,
            "scheme": "multinomial"
            if scheme == "poisson" and int(n_eps) < POISSON_MIN_SESSIONS
            else scheme,
            "support_mask": support_mask,
        }
        if bandit is not None:
            t = bandit.summarize(
                reward=sub["reward"],
                action=sub["action"],
                pscore=sub["pscore"],
                action_dist=sub["action_dist"],
                estimated_rewards_by_reg_model=sub["estimated_rewards_by_reg_model"],
                episode_ids=eps[mask],
                random_state=int(seed),
                **kw,
            )
            frames.append(t.assign(segment=label, family="per_decision"))
        if sequential is not None:
            dist = sub["action_dist"]
            act = sub["action"]
            if act.max() >= dist.shape[1]:
                raise OPEError(
                    f"action holds {act.max()}; actions must be < n_actions = {dist.shape[1]}"
                )
            target = dist[np.arange(act.shape[0]), act]
            t = sequential.summarize(
                reward=sub["reward"],
                episode_ids=eps[mask],
                steps=sub["steps"],
                pscore=sub["pscore"],
                target_prob=target,
                target_action_dist=dist if support_mask is not None else None,
                random_state=int(seed) + 1,
                **kw,
            )
            frames.append(t.assign(segment=label, family="per_session"))
    counts["evaluated"] = evaluated
    results = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return results, counts


def segment_labels(segments: Sequence[str]) -> list[str]:
    """Segment names in display order (new users first)."""
    rank = {s: i for i, s in enumerate(SEGMENT_ORDER)}
    return sorted(dict.fromkeys(segments), key=lambda s: (rank.get(s, len(rank)), s))
