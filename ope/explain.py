"""What changes if we ship: how a policy's recommendations differ from the logged behaviour.

Everything here works on arrays of one evaluation split (``n`` decisions, ``A`` actions):

* **shares** — the behaviour's share of action ``a`` is its logged frequency
  :math:`b_a = \\#\\{i : a_i = a\\} / n`; the policy's share is the mean of its action
  probabilities over the same states, :math:`p_a = \\frac{1}{n} \\sum_i \\pi(a \\mid s_i)`.
  Both are distributions over the ``A`` actions (the ``other`` bucket counts as one action).
* **movers** (:func:`top_movers`) — the actions (or categories, :func:`group_shares`) whose
  share changes most, :math:`\\Delta_a = p_a - b_a`, largest gains and largest losses.
* **concentration** (:func:`concentration`) of a share vector ``x`` (A,):
  the share of the ``k`` largest entries; the Gini coefficient
  :math:`G = \\sum_{i=1}^{A} (2i - A - 1)\\, x_{(i)} / (A \\sum_i x_i)` with ``x`` sorted
  ascending (0 = every action equally often, :math:`(A-1)/A` = one action only); the entropy
  :math:`H = -\\sum_a x_a \\ln x_a` (nats, :math:`0 \\ln 0 = 0`), its normalised form
  :math:`H / \\ln A` and the effective number of actions :math:`e^{H}`.
* **examples** (:func:`pick_examples`) — a few decisions picked with a seeded generator, most
  of them where the policy's first choice differs from the behaviour's, each with both top-3
  lists and the state decoded into plain words (:func:`describe_state`, using the state
  feature names of docs/design.md §3).

:func:`explain_policy` puts these together into a :class:`PolicyExplanation` whose
``to_dict()`` is what ``evaluation/explain.json`` stores per policy (docs/reports.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ope.errors import OPEError
from ope.types import FloatArray, IntArray, RandomState
from ope.validation import (
    as_action_dist,
    as_int_vector,
    check_same_length,
    make_rng,
    show,
)

__all__ = [
    "Concentration",
    "Mover",
    "RankedItem",
    "Example",
    "PolicyExplanation",
    "logged_shares",
    "policy_shares",
    "concentration",
    "top_movers",
    "group_shares",
    "top_actions",
    "pick_examples",
    "describe_state",
    "explain_policy",
]

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


# --------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class Concentration:
    """How concentrated a distribution over actions is (formulas in the module docstring)."""

    top_k: int
    top_k_share: float
    gini: float
    entropy: float
    normalised_entropy: float
    effective_actions: float

    def to_dict(self) -> dict[str, float | int]:
        return {
            "top_k": self.top_k,
            "top_k_share": self.top_k_share,
            "gini": self.gini,
            "entropy": self.entropy,
            "normalised_entropy": self.normalised_entropy,
            "effective_actions": self.effective_actions,
        }


@dataclass(frozen=True)
class Mover:
    """One action (or category) whose share changes: ``before`` (behaviour) -> ``after``."""

    label: str
    before: float
    after: float

    @property
    def change(self) -> float:
        return self.after - self.before

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "before": self.before,
            "after": self.after,
            "change": self.change,
        }


@dataclass(frozen=True)
class RankedItem:
    """One entry of a top-k list: the item label and its probability."""

    label: str
    prob: float

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "prob": self.prob}


@dataclass(frozen=True)
class Example:
    """One evaluation decision shown to an analyst."""

    row: int
    history: str
    logged: str
    behaviour_top: tuple[RankedItem, ...]
    policy_top: tuple[RankedItem, ...]
    agree: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "history": self.history,
            "logged": self.logged,
            "behaviour_top": [r.to_dict() for r in self.behaviour_top],
            "policy_top": [r.to_dict() for r in self.policy_top],
            "agree": self.agree,
        }


@dataclass(frozen=True)
class PolicyExplanation:
    """How one policy's recommendations differ from the behaviour on one split.

    ``shares``/``behaviour_shares`` (A,); ``gains``/``losses`` the top movers by action;
    ``category_gains``/``category_losses`` by category (empty when no categories are known);
    ``disagreement`` = :math:`\\frac{1}{n}\\sum_i (1 - \\pi(b_i \\mid s_i))` with :math:`b_i`
    the behaviour's first choice: how often, on average, the policy would recommend something
    else (well defined when the policy has ties at the top, e.g. uniform: :math:`1 - 1/A`).
    """

    concentration: Concentration
    behaviour_concentration: Concentration
    shares: FloatArray
    behaviour_shares: FloatArray
    gains: tuple[Mover, ...]
    losses: tuple[Mover, ...]
    category_gains: tuple[Mover, ...]
    category_losses: tuple[Mover, ...]
    disagreement: float
    examples: tuple[Example, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "concentration": self.concentration.to_dict(),
            "behaviour_concentration": self.behaviour_concentration.to_dict(),
            "gains": [m.to_dict() for m in self.gains],
            "losses": [m.to_dict() for m in self.losses],
            "category_gains": [m.to_dict() for m in self.category_gains],
            "category_losses": [m.to_dict() for m in self.category_losses],
            "disagreement": self.disagreement,
            "examples": [e.to_dict() for e in self.examples],
        }


# --------------------------------------------------------------------------------------------
# shares and concentration


def _check_n_actions(n_actions: Any) -> int:
    if isinstance(n_actions, bool) or not isinstance(n_actions, int | np.integer) or n_actions < 1:
        raise OPEError(f"n_actions = {n_actions!r}; must be a whole number >= 1")
    return int(n_actions)


def logged_shares(actions: Any, n_actions: int) -> FloatArray:
    """(A,) share of each action among the logged decisions ``actions`` (n,)."""
    a = as_int_vector("actions", actions)
    n_actions = _check_n_actions(n_actions)
    if a.max() >= n_actions:
        i = int(np.flatnonzero(a >= n_actions)[0])
        raise OPEError(f"actions[{i}] = {a[i]}; actions must be < n_actions = {n_actions}")
    return np.bincount(a, minlength=n_actions).astype(np.float64) / a.shape[0]


def policy_shares(action_dist: Any) -> FloatArray:
    """(A,) mean of a policy's ``action_dist`` (n, A) over the n states."""
    dist = as_action_dist("action_dist", action_dist)
    if dist.shape[2] != 1:
        raise OPEError(f"action_dist must be (n, n_actions), got shape {dist.shape}")
    return dist[:, :, 0].mean(axis=0)


def _as_shares(name: str, shares: Any) -> FloatArray:
    x = np.asarray(shares, dtype=np.float64) if not isinstance(shares, np.ndarray) else shares
    if x.ndim != 1 or x.shape[0] == 0:
        raise OPEError(f"{name} must be a non-empty 1-d array of shares, got shape {x.shape}")
    x = x.astype(np.float64, copy=False)
    bad = ~np.isfinite(x) | (x < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise OPEError(f"{name}[{i}] = {show(x[i])}; shares must be finite and >= 0")
    if abs(x.sum() - 1.0) > 1e-6:
        raise OPEError(f"{name} sums to {x.sum():.8g}; shares must sum to 1")
    return x


def concentration(shares: Any, top_k: int = 10) -> Concentration:
    """Top-``top_k`` share, Gini, entropy (nats), normalised entropy, ``exp(entropy)``.

    ``shares`` (A,) is a distribution over actions. With ``A = 1`` the normalised entropy is 0.
    """
    x = _as_shares("shares", shares)
    if isinstance(top_k, bool) or not isinstance(top_k, int | np.integer) or top_k < 1:
        raise OPEError(f"top_k = {top_k!r}; must be a whole number >= 1")
    a = x.shape[0]
    ordered = np.sort(x)
    ranks = np.arange(1, a + 1, dtype=np.float64)
    gini = float(np.sum((2 * ranks - a - 1) * ordered) / (a * ordered.sum()))
    nz = x[x > 0]
    entropy = max(float(-np.sum(nz * np.log(nz))), 0.0)
    return Concentration(
        top_k=int(top_k),
        top_k_share=float(ordered[::-1][: int(top_k)].sum()),
        gini=max(gini, 0.0),
        entropy=entropy,
        normalised_entropy=entropy / math.log(a) if a > 1 else 0.0,
        effective_actions=math.exp(entropy),
    )


def top_movers(
    before: Any, after: Any, labels: Sequence[str], k: int = 5
) -> tuple[tuple[Mover, ...], tuple[Mover, ...]]:
    """The ``k`` largest gains (``after - before > 0``, largest first) and losses (``< 0``,
    most negative first). Ties (changes equal to 12 decimals) go to the label that sorts
    first. ``before``/``after`` (m,)."""
    b = _as_shares("before", before)
    a = _as_shares("after", after)
    if b.shape != a.shape:
        raise OPEError(f"expected before.shape == after.shape, got {b.shape} and {a.shape}")
    if len(labels) != b.shape[0]:
        raise OPEError(f"labels has {len(labels)} entries for {b.shape[0]} shares")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        raise OPEError(f"k = {k!r}; must be a whole number >= 0")
    delta = a - b
    names = [str(x) for x in labels]
    movers = [Mover(names[i], float(b[i]), float(a[i])) for i in range(len(names))]
    gains = sorted(
        (m for m, d in zip(movers, delta, strict=True) if d > 0),
        key=lambda m: (-round(m.change, 12), m.label),
    )
    losses = sorted(
        (m for m, d in zip(movers, delta, strict=True) if d < 0),
        key=lambda m: (round(m.change, 12), m.label),
    )
    return tuple(gains[:k]), tuple(losses[:k])


def group_shares(shares: Any, groups: Sequence[str]) -> dict[str, float]:
    """Sum ``shares`` (A,) by ``groups`` (A,) labels (e.g. each action's category)."""
    x = _as_shares("shares", shares)
    if len(groups) != x.shape[0]:
        raise OPEError(f"groups has {len(groups)} entries for {x.shape[0]} shares")
    out: dict[str, float] = {}
    for g, v in zip(groups, x, strict=True):
        if not isinstance(g, str) or not g:
            raise OPEError(f"groups holds {g!r}; every action needs a non-empty group label")
        out[g] = out.get(g, 0.0) + float(v)
    return dict(sorted(out.items()))


# --------------------------------------------------------------------------------------------
# examples


def top_actions(probs: Any, k: int = 3) -> IntArray:
    """(n, k) the ``k`` most probable actions of each row of ``probs`` (n, A), best first
    (ties: lower action id first)."""
    dist = as_action_dist("probs", probs)[:, :, 0]
    k = min(int(k), dist.shape[1])
    return np.argsort(-dist, axis=1, kind="stable")[:, :k].astype(np.int64)


def pick_examples(
    first_policy: Any,
    first_behaviour: Any,
    n_examples: int = 6,
    *,
    disagree_share: float = 2 / 3,
    random_state: RandomState = None,
) -> IntArray:
    """Row indices of ``n_examples`` decisions, sorted ascending.

    ``first_policy``/``first_behaviour`` (n,) are the two first choices. About
    ``disagree_share`` of the picks come from rows where they differ (fewer if there are not
    enough), the rest from rows where they agree; each group is sampled without replacement
    by the seeded generator, so the same inputs and seed give the same rows.
    """
    p = as_int_vector("first_policy", first_policy)
    b = as_int_vector("first_behaviour", first_behaviour)
    check_same_length(("first_policy", p), ("first_behaviour", b))
    if isinstance(n_examples, bool) or not isinstance(n_examples, int) or n_examples < 0:
        raise OPEError(f"n_examples = {n_examples!r}; must be a whole number >= 0")
    if not 0.0 <= float(disagree_share) <= 1.0:
        raise OPEError(f"disagree_share = {disagree_share!r}; must be in [0, 1]")
    rng = make_rng(random_state)
    n = min(n_examples, p.shape[0])
    differ = np.flatnonzero(p != b)
    same = np.flatnonzero(p == b)
    want = min(differ.size, int(round(n * float(disagree_share))))
    want = max(want, n - same.size)  # not enough agreeing rows: take more disagreeing ones
    picked = np.concatenate(
        [
            rng.choice(differ, size=want, replace=False) if want else np.empty(0, np.int64),
            rng.choice(same, size=n - want, replace=False) if n - want else np.empty(0, np.int64),
        ]
    )
    return np.sort(picked.astype(np.int64))


def _ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def _count(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 90:
        return _count(s, "second")
    if s < 90 * 60:
        return _count(int(round(s / 60)), "minute")
    return f"{s / 3600:.1f} hours"


def describe_state(
    state: Any,
    feature_names: Sequence[str],
    item_labels: Sequence[str],
    mode: str = "logged",
) -> str:
    """One state vector (d,) in plain words, e.g. ``"3rd recommendation of the session; was
    shown item A, item B; recently interacted with item C; 2 views, 1 click so far; 4 minutes
    into the session; Tuesday 14:00 UTC; returning user: 2 earlier sessions, 1 purchase"``.

    ``feature_names`` (d,) are the state feature names of docs/design.md §3 (features with
    other names are ignored); ``item_labels`` (A,) names each action id; an index equal to
    ``A`` (the padding ``NONE``) means "none". ``mode`` is the dataset's (docs/design.md §3):
    in ``logged`` mode a decision is an impression ("recommendation", ``prev_action_j`` were
    shown); in ``organic`` mode it is the user's next interaction, whose previous ones are
    already the ``last_item_j``, so ``prev_action_j`` is not repeated.
    """
    if mode not in ("logged", "organic"):
        raise OPEError(f"mode = {mode!r}; must be 'logged' or 'organic'")
    x = np.asarray(state, dtype=np.float64)
    if x.ndim != 1 or x.shape[0] != len(feature_names):
        raise OPEError(
            f"state must be 1-d with one value per feature name ({len(feature_names)}), got "
            f"shape {x.shape}"
        )
    if not np.all(np.isfinite(x)):
        raise OPEError("state holds NaN or inf; states must be finite")
    if not item_labels:
        raise OPEError("item_labels is empty; give one label per action id")
    f = {name: float(v) for name, v in zip(feature_names, x, strict=True)}
    n_actions = len(item_labels)

    def items(prefix: str) -> list[str]:
        out = []
        for j in range(1, 1000):
            key = f"{prefix}{j}"
            if key not in f:
                break
            a = int(round(f[key]))
            if 0 <= a < n_actions:
                out.append(str(item_labels[a]))
        return out

    parts = []
    if "step" in f:
        noun = "recommendation" if mode == "logged" else "interaction"
        parts.append(f"{_ordinal(int(f['step']) + 1)} {noun} of the session")
    shown = items("prev_action_") if mode == "logged" else []
    if shown:
        parts.append("was just shown " + ", ".join(shown))
    touched = items("last_item_")
    parts.append(
        ("recently interacted with " + ", ".join(touched) + " (latest first)")
        if touched
        else "no interaction yet in this session"
    )
    counts = [
        (int(f[k]), w, pl)
        for k, w, pl in (
            ("n_view", "view", None),
            ("n_click", "click", None),
            ("n_add_to_cart", "add to cart", "adds to cart"),
            ("n_purchase", "purchase", None),
        )
        if k in f and f[k] > 0
    ]
    if counts:
        parts.append(", ".join(_count(n, w, pl) for n, w, pl in counts) + " so far")
    if "secs_since_session_start" in f:
        parts.append(f"{_duration(f['secs_since_session_start'])} into the session")
    if "hour_of_day" in f and "day_of_week" in f:
        day = int(f["day_of_week"])
        if 0 <= day < 7:
            parts.append(f"{_WEEKDAYS[day]} {int(f['hour_of_day']):02d}:00 UTC")
    if "hist_sessions" in f:
        hs = int(f["hist_sessions"])
        if hs == 0:
            parts.append("new user (no earlier session in the lookback)")
        else:
            hist = [_count(hs, "earlier session")]
            if f.get("hist_purchases", 0) > 0:
                hist.append(_count(int(f["hist_purchases"]), "purchase"))
            if f.get("hist_spend", 0) > 0:
                hist.append(f"spent {f['hist_spend']:.2f}")
            parts.append("returning user: " + ", ".join(hist))
    return "; ".join(parts)


# --------------------------------------------------------------------------------------------
# everything for one policy


def explain_policy(
    *,
    states: Any,
    actions: Any,
    action_dist: Any,
    feature_names: Sequence[str],
    item_labels: Sequence[str],
    behaviour_dist: Any = None,
    history_labels: Sequence[str] | None = None,
    categories: Mapping[str, str] | None = None,
    mode: str = "logged",
    n_movers: int = 5,
    n_examples: int = 6,
    top_k: int = 10,
    random_state: RandomState = None,
) -> PolicyExplanation:
    """How the policy ``action_dist`` (n, A) differs from the logged ``actions`` (n,).

    ``states`` (n, d) raw, named by ``feature_names``; ``item_labels`` (A,) one label per action
    (the last is the ``other`` bucket); ``behaviour_dist`` (n, A) an estimate of the behaviour's
    probabilities (e.g. a behaviour model), used for its top-3 in the examples — without it the
    behaviour's first choice is the logged action and its top-3 list is empty.
    ``mode`` (``logged`` | ``organic``) words the history (:func:`describe_state`).
    ``history_labels`` (A,) names actions inside the plain-words history (default
    ``item_labels``; e.g. "an item outside the top-N" for the ``other`` bucket).
    ``categories`` maps an item label to its category; labels it does not cover (and the
    ``other`` bucket) go to ``"(unknown)"`` / their own label. Without it no category movers.
    """
    dist = as_action_dist("action_dist", action_dist)
    if dist.shape[2] != 1:
        raise OPEError(f"action_dist must be (n, n_actions), got shape {dist.shape}")
    dist2 = dist[:, :, 0]
    n, n_actions = dist2.shape
    a = as_int_vector("actions", actions)
    s = np.asarray(states)
    check_same_length(("action_dist", dist2), ("actions", a), ("states", s))
    if s.ndim != 2 or s.shape[1] != len(feature_names):
        raise OPEError(
            f"states must be (n, {len(feature_names)}) (one column per feature name), got "
            f"shape {s.shape}"
        )
    if len(item_labels) != n_actions:
        raise OPEError(
            f"item_labels has {len(item_labels)} entries; action_dist has {n_actions} actions"
        )
    if history_labels is not None and len(history_labels) != n_actions:
        raise OPEError(
            f"history_labels has {len(history_labels)} entries; action_dist has {n_actions} actions"
        )
    before = logged_shares(a, n_actions)
    after = dist2.mean(axis=0)
    after = after / after.sum()  # validated rows sum to 1 up to rounding
    labels = [str(x) for x in item_labels]
    words = labels if history_labels is None else [str(x) for x in history_labels]
    gains, losses = top_movers(before, after, labels, n_movers)
    cat_gains: tuple[Mover, ...] = ()
    cat_losses: tuple[Mover, ...] = ()
    if categories:
        groups = [categories.get(lab, "(unknown)") for lab in labels[:-1]] + [labels[-1]]
        gb, ga = group_shares(before, groups), group_shares(after, groups)
        names = list(gb)
        cat_gains, cat_losses = top_movers(
            np.array([gb[g] for g in names]), np.array([ga[g] for g in names]), names, n_movers
        )
    bdist = None
    if behaviour_dist is not None:
        bdist = as_action_dist("behaviour_dist", behaviour_dist)[:, :, 0]
        if bdist.shape != dist2.shape:
            raise OPEError(
                f"expected behaviour_dist.shape == action_dist.shape, got {bdist.shape} and "
                f"{dist2.shape}"
            )
    p_top = top_actions(dist2, 3)
    b_first = a if bdist is None else np.argmax(bdist, axis=1).astype(np.int64)
    rows = pick_examples(p_top[:, 0], b_first, n_examples, random_state=random_state)
    b_top = top_actions(bdist, 3) if bdist is not None else None
    examples = []
    for i in rows.tolist():
        examples.append(
            Example(
                row=int(i),
                history=describe_state(s[i], feature_names, words, mode),
                logged=labels[int(a[i])],
                behaviour_top=()
                if b_top is None
                else tuple(RankedItem(labels[j], float(bdist[i, j])) for j in b_top[i]),  # type: ignore[index]
                policy_top=tuple(RankedItem(labels[j], float(dist2[i, j])) for j in p_top[i]),
                agree=bool(p_top[i, 0] == b_first[i]),
            )
        )
    return PolicyExplanation(
        concentration=concentration(after, top_k),
        behaviour_concentration=concentration(before, top_k),
        shares=after,
        behaviour_shares=before,
        gains=gains,
        losses=losses,
        category_gains=cat_gains,
        category_losses=cat_losses,
        disagreement=float(np.mean(1.0 - dist2[np.arange(n), b_first])),
        examples=tuple(examples),
    )
