"""Online computation of the section-3 raw state features (docs/design.md §3), vectorised.

The SQL build computes the same vector offline from logged events; this module keeps, for a
batch of concurrently running sessions, exactly the running quantities the definition needs:

* ``step``, the last ``k`` action ids shown, the action ids of the last ``k`` interaction events
  (click, add_to_cart, purchase — most recent first; a step whose click led to a cart and a
  purchase contributes three events on the same item), per-type event counts;
* the session's first timestamp and its latest event timestamp;
* the user-history features fixed at session start (``hist_sessions, hist_purchases,
  hist_spend`` over the user's *other* sessions with events in
  ``[session_start - lookback, session_start)``).

Within a session every event has a distinct, increasing timestamp, so "strictly before the
decision" is simply "every event already recorded".
"""

from __future__ import annotations

import numpy as np

from offrec.simulator.config import StateOptions

__all__ = ["feature_names", "feature_kinds", "SessionStates", "UserHistory", "hour_and_weekday"]

_MS_PER_DAY = 86_400_000


def feature_names(n_actions: int, opts: StateOptions) -> tuple[str, ...]:
    """Names of the state vector in order (design §3), for ``n_actions`` actions."""
    k = opts.last_k
    names = ["step"]
    names += [f"prev_action_{j}" for j in range(1, k + 1)]
    names += [f"last_item_{j}" for j in range(1, k + 1)]
    names += ["n_view", "n_click", "n_add_to_cart", "n_purchase"]
    names += ["secs_since_session_start", "secs_since_prev_event", "hour_of_day", "day_of_week"]
    names += ["position", "hist_sessions", "hist_purchases", "hist_spend"]
    if opts.item_encoding == "onehot":
        names += [f"bag_{a}" for a in range(n_actions)]
    return tuple(names)


def feature_kinds(n_actions: int, opts: StateOptions) -> tuple[str, ...]:
    """``feature_spec.kind`` of each feature: 'count', 'numeric', 'index' or 'onehot'."""
    k = opts.last_k
    kinds = ["count"] + ["index"] * (2 * k) + ["count"] * 4
    kinds += ["numeric", "numeric", "numeric", "numeric", "numeric"]
    kinds += ["count", "count", "numeric"]
    if opts.item_encoding == "onehot":
        kinds += ["onehot"] * n_actions
    return tuple(kinds)


def hour_and_weekday(ts_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UTC hour (0-23) and weekday (0 = Monday) of epoch-millisecond timestamps."""
    days = np.floor_divide(ts_ms, _MS_PER_DAY)
    hour = np.floor_divide(ts_ms - days * _MS_PER_DAY, 3_600_000)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday
    return hour, weekday


class UserHistory:
    """Completed sessions and purchases of a block of users, for the ``hist_*`` features.

    Sessions of one user are simulated in order (wave by wave), so when a session starts every
    earlier session of its user is complete and recorded here.
    """

    def __init__(self, n_users: int) -> None:
        self.n_users = n_users
        self._end_user: list[np.ndarray] = []
        self._end_ts: list[np.ndarray] = []
        self._pur_user: list[np.ndarray] = []
        self._pur_ts: list[np.ndarray] = []
        self._pur_price: list[np.ndarray] = []

    def add_sessions(self, user: np.ndarray, last_ts: np.ndarray) -> None:
        """Record finished sessions: ``user`` (block-local) and the ts of their last event."""
        self._end_user.append(user)
        self._end_ts.append(last_ts)

    def add_purchases(self, user: np.ndarray, ts: np.ndarray, price: np.ndarray) -> None:
        self._pur_user.append(user)
        self._pur_ts.append(ts)
        self._pur_price.append(price)

    def features(self, user: np.ndarray, start_ms: np.ndarray, lookback_ms: int) -> np.ndarray:
        """``(n, 3)`` [hist_sessions, hist_purchases, hist_spend] for sessions starting now.

        ``user`` are distinct block-local users, ``start_ms`` their sessions' first ts.
        A past session counts when any of its events lies in ``[start - lookback, start)``;
        since it ended before ``start``, that is: its last event is ``>= start - lookback``.
        """
        n = user.shape[0]
        out = np.zeros((n, 3), dtype=np.float64)
        if n == 0:
            return out
        row_of = np.full(self.n_users, -1, dtype=np.int64)
        row_of[user] = np.arange(n)
        lower = start_ms - lookback_ms
        if self._end_user:
            eu = np.concatenate(self._end_user)
            et = np.concatenate(self._end_ts)
            rows = row_of[eu]
            keep = rows >= 0
            keep[keep] &= et[keep] >= lower[rows[keep]]
            out[:, 0] = np.bincount(rows[keep], minlength=n)
        if self._pur_user:
            pu = np.concatenate(self._pur_user)
            pt = np.concatenate(self._pur_ts)
            pp = np.concatenate(self._pur_price)
            rows = row_of[pu]
            keep = rows >= 0
            keep[keep] &= pt[keep] >= lower[rows[keep]]
            out[:, 1] = np.bincount(rows[keep], minlength=n)
            out[:, 2] = np.bincount(rows[keep], weights=pp[keep], minlength=n)
        return out


class SessionStates:
    """Running feature state of ``n`` concurrent sessions (one wave of a block).

    Row ``r`` is session ``r`` of the wave. Action ids are in ``[0, n_actions)``;
    ``NONE = n_actions`` pads missing history.
    """

    def __init__(
        self,
        n_actions: int,
        opts: StateOptions,
        start_ms: np.ndarray,
        hist: np.ndarray,
    ) -> None:
        n = start_ms.shape[0]
        k = opts.last_k
        self.n_actions = n_actions
        self.none = n_actions
        self.opts = opts
        self.step = np.zeros(n, dtype=np.int64)
        self.prev_actions = np.full((n, k), self.none, dtype=np.int64)
        self.last_items = np.full((n, k), self.none, dtype=np.int64)
        self.counts = np.zeros((n, 4), dtype=np.int64)  # view, click, add_to_cart, purchase
        self.start_ms = start_ms.astype(np.int64)
        self.last_ms = np.full(n, -1, dtype=np.int64)  # -1: no event yet
        self.hist = hist
        self.dim = len(feature_names(n_actions, opts))

    def states(self, rows: np.ndarray, tau_ms: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """``(m, d)`` float64 raw states of sessions ``rows`` deciding at ``tau_ms``."""
        k = self.opts.last_k
        m = rows.shape[0]
        out = np.zeros((m, self.dim), dtype=np.float64)
        out[:, 0] = self.step[rows]
        out[:, 1 : 1 + k] = self.prev_actions[rows]
        last = self.last_items[rows]
        out[:, 1 + k : 1 + 2 * k] = last
        c = 1 + 2 * k
        out[:, c : c + 4] = self.counts[rows]
        last_ms = self.last_ms[rows]
        out[:, c + 4] = (tau_ms - self.start_ms[rows]) / 1000.0
        out[:, c + 5] = np.where(last_ms >= 0, (tau_ms - last_ms) / 1000.0, 0.0)
        hour, weekday = hour_and_weekday(tau_ms)
        out[:, c + 6] = hour
        out[:, c + 7] = weekday
        out[:, c + 8] = positions
        out[:, c + 9 : c + 12] = self.hist[rows]
        if self.opts.item_encoding == "onehot":
            base = c + 12
            width = self.n_actions + 1
            flat = (np.arange(m)[:, None] * width + last).ravel()
            bag = np.bincount(flat, minlength=m * width).reshape(m, width)
            out[:, base : base + self.n_actions] = bag[:, : self.n_actions]
        return out

    def update(
        self,
        rows: np.ndarray,
        item_action: np.ndarray,
        n_interactions: np.ndarray,
        clicks: np.ndarray,
        carts: np.ndarray,
        purchases: np.ndarray,
        last_event_ms: np.ndarray,
    ) -> None:
        """Record one step of sessions ``rows``.

        ``item_action``: the shown item's action id (what the offline build derives from the
        logged item: a top item's id, else ``other``); ``n_interactions``: interaction events of the step (0-3, all on the shown item).
        """
        k = self.opts.last_k
        self.step[rows] += 1
        prev = self.prev_actions[rows]
        self.prev_actions[rows] = np.concatenate([item_action[:, None], prev[:, : k - 1]], axis=1)
        old = self.last_items[rows]
        shift = np.arange(k)[None, :] - n_interactions[:, None]
        moved = np.take_along_axis(old, np.maximum(shift, 0), axis=1)
        self.last_items[rows] = np.where(shift < 0, item_action[:, None], moved)
        self.counts[rows, 1] += clicks
        self.counts[rows, 2] += carts
        self.counts[rows, 3] += purchases
        self.last_ms[rows] = last_event_ms
