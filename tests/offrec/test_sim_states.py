"""Online states vs a literal, per-decision reading of docs/design.md §3 over the logged events.

The reference below recomputes every feature of every impression from the event log alone
(slowly, one decision at a time), so a mistake in the simulator's vectorised bookkeeping
(ordering, "strictly before", history window, padding) shows up as a mismatch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from offrec.simulator import SimulatorConfig, StateOptions, simulate_events
from offrec.simulator.errors import SimulatorError
from offrec.simulator.features import feature_kinds, feature_names, hour_and_weekday
from sql.dataset import ActionSpace

INTERACTIONS = ("view", "click", "add_to_cart", "purchase")
CFG = SimulatorConfig(n_days=6, sessions_per_user=5.0)


def action_space_of(frame: pd.DataFrame, top_n: int) -> ActionSpace:
    """Top items by impression count (ties: item id), the rest in ``other`` (design §3)."""
    counts = frame[frame.event_type == "impression"].item_id.value_counts()
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    top = tuple(item for item, _ in ranked[:top_n])
    return ActionSpace(top, tuple(sorted(set(frame.item_id) - set(top))))


def reference_states(frame: pd.DataFrame, space: ActionSpace, opts: StateOptions) -> pd.DataFrame:
    a_count = space.n_actions
    none = a_count
    action = {item: a for a, item in enumerate(space.top_items)}
    k = opts.last_k
    lookback_us = round(opts.lookback_days * 86_400e6)
    ev = frame.assign(pos_key=frame.position.fillna(-1), t=frame.ts.astype("int64")).sort_values(
        ["ts", "pos_key", "event_id"], kind="stable"
    )
    # every event of a user: (t, session, type, price), in time order
    per_user: dict[str, list[tuple]] = {}
    for rec in ev[["user_id", "t", "session_id", "event_type", "price"]].itertuples(index=False):
        per_user.setdefault(rec.user_id, []).append(tuple(rec)[1:])
    rows, ids = [], []
    cols = ["event_id", "t", "event_type", "item_id", "position"]
    for (user, session), g in ev.groupby(["user_id", "session_id"], sort=False):
        events = list(g[cols].itertuples(index=False, name=None))
        start = events[0][1]
        window = [
            e for e in per_user[user] if e[1] != session and start - lookback_us <= e[0] < start
        ]
        purchases = [e for e in window if e[2] == "purchase"]
        hist = [len({e[1] for e in window}), len(purchases), sum(e[3] for e in purchases)]
        decisions = [e for e in events if e[2] == "impression"]
        for step, (event_id, tau, _, _, position) in enumerate(decisions):
            before = [e for e in events if e[1] < tau]
            prev = [action.get(e[3], a_count - 1) for e in decisions[:step][::-1]]
            last = [action.get(e[3], a_count - 1) for e in before[::-1] if e[2] in INTERACTIONS]
            prev = (prev + [none] * k)[:k]
            last = (last + [none] * k)[:k]
            counts = [sum(1 for e in before if e[2] == t) for t in INTERACTIONS]
            secs_prev = (tau - max(e[1] for e in before)) / 1e6 if before else 0.0
            moment = pd.Timestamp(tau, unit="us")
            row = [
                step,
                *prev,
                *last,
                *counts,
                (tau - start) / 1e6,
                secs_prev,
                moment.hour,
                moment.day_of_week,
                position,
                *hist,
            ]
            if opts.item_encoding == "onehot":
                row += [sum(1 for x in last if x == a) for a in range(a_count)]
            rows.append(row)
            ids.append(event_id)
    return pd.DataFrame(rows, index=ids, columns=list(feature_names(a_count, opts)))


@pytest.mark.parametrize(
    ("opts", "top_n"),
    [
        (StateOptions(), 30),
        (StateOptions(last_k=2, item_encoding="index", lookback_days=2.0), 10),
        (StateOptions(last_k=4, lookback_days=0.0), 80),
    ],
)
def test_online_states_equal_the_offline_definition(opts: StateOptions, top_n: int) -> None:
    first = simulate_events(CFG, n_sessions=500, seed=3)
    frame = first.to_pandas()
    space = action_space_of(frame, top_n)
    logs = simulate_events(
        CFG, n_sessions=500, seed=3, record_states=True, action_space=space, state_options=opts
    )
    assert logs.events.equals(first.events), "recording states must not change the events"
    online = logs.states.to_frame().set_index("event_id")
    expected = reference_states(frame, space, opts)
    assert list(online.columns) == list(expected.columns)
    assert sorted(online.index) == sorted(expected.index)
    online = online.loc[expected.index]
    np.testing.assert_allclose(
        online.to_numpy(), expected.to_numpy(dtype=np.float64), rtol=1e-12, atol=1e-9
    )
    # the data exercise every part of the definition
    assert (expected.step > 3).any() and (expected.hist_sessions > 0).any() == (
        opts.lookback_days > 0
    )
    assert (expected.hist_purchases > 0).any() == (opts.lookback_days > 0)
    assert (expected[f"last_item_{opts.last_k}"] < space.n_actions).any()
    assert (expected.prev_action_1 == space.n_actions - 1).any(), "other-bucket items shown"


def test_lookup_by_event_id_and_unknown_ids() -> None:
    frame = simulate_events(CFG, n_sessions=50, seed=1).to_pandas()
    space = action_space_of(frame, 20)
    logs = simulate_events(CFG, n_sessions=50, seed=1, record_states=True, action_space=space)
    ids = list(logs.states.event_ids[[3, 0]])
    np.testing.assert_array_equal(logs.states.lookup(ids), logs.states.states[[3, 0]])
    with pytest.raises(SimulatorError, match=r"event_ids\[0\] = 'nope' is not a recorded"):
        logs.states.lookup(["nope"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"record_states": True}, r"record_states=True needs action_space="),
        (
            {"record_states": True, "action_space": ActionSpace(("i00001", "x9"))},
            r"action_space.top_items\[1\] = 'x9' is not an item of the simulator catalog",
        ),
        (
            {"record_states": True, "action_space": ActionSpace(("i00001",), ("i99999",))},
            r"action_space.other_items\[0\] = 'i99999' is not an item",
        ),
        ({"n_sessions": 0}, r"n_sessions = 0: must be >= 1"),
        ({"seed": -3}, r"seed = -3: must be >= 0"),
    ],
)
def test_bad_generation_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(SimulatorError, match=match):
        simulate_events(CFG, **{"n_sessions": 10, **kwargs})


def test_names_and_kinds_match_the_sql_layout() -> None:
    features = pytest.importorskip("sql.features")
    for opts, a in [(StateOptions(), 51), (StateOptions(last_k=5, item_encoding="index"), 7)]:
        names, kinds = features.state_layout(opts.last_k, a, opts.item_encoding)
        assert feature_names(a, opts) == names
        assert feature_kinds(a, opts) == kinds


def test_hour_and_weekday_of_epoch_ms() -> None:
    ts = pd.to_datetime(
        ["2024-01-01T00:00:00Z", "2024-03-09T23:59:59.999Z", "1969-12-31T13:00:00Z"],
        format="ISO8601",
    )
    ms = (ts.as_unit("ms").asi8).astype(np.int64)
    hour, weekday = hour_and_weekday(ms)
    assert list(hour) == list(ts.hour) and list(weekday) == list(ts.day_of_week)
