"""Leakage property: changing any event at or after a decision never changes its state.

For a random log and a random decision ``d`` at time ``tau`` we derive a second log in which
every event with ``ts > tau`` may be changed (type, item, position, price, request), deleted or
joined by new ones, events at ``tau`` that come after ``d`` keep their place but may change item,
price and request, and ``d`` itself may change item, price, request and propensity. Both logs go
into one warehouse (the copy under renamed users and sessions) and one build; ``d``'s state must
be the same in both, compared after decoding action ids back to items (the action space may
rank items differently once later events change).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sql.build import build_dataset
from sql.config import BuildConfig
from sql.dataset import load_action_space, load_feature_spec

TYPES = ("impression", "view", "click", "add_to_cart", "purchase")
ITEMS = ("A", "B", "C", "D")
ORDER_KEY = lambda r: (r["t"], r["position"] is not None, r["position"] or 0, r["id"])  # noqa: E731


@st.composite
def logs(draw):
    rows = []
    n_sessions = draw(st.integers(1, 3))
    for s in range(n_sessions):
        user = f"u{draw(st.integers(0, 1))}"
        start = s * draw(st.sampled_from([0, 30, 5000]))
        for i in range(draw(st.integers(1, 6))):
            kind = draw(st.sampled_from(TYPES))
            rows.append(
                dict(
                    id=f"s{s}e{i}",
                    t=start + draw(st.integers(0, 12)),
                    user=user,
                    session=f"s{s}",
                    type=kind,
                    item=draw(st.sampled_from(ITEMS)),
                    position=draw(st.sampled_from([None, 0, 1, 2]))
                    if kind == "impression"
                    else None,
                    propensity=draw(st.sampled_from([0.2, 0.5, 1.0]))
                    if kind == "impression"
                    else None,
                    price=draw(st.sampled_from([1.0, 7.5])),
                    request=draw(st.sampled_from([None, "r1", "r2"])),
                )
            )
    return rows


def _load(con, rows):
    con.execute("DROP TABLE IF EXISTS events")
    con.execute(
        "CREATE TABLE events (event_id VARCHAR, ts TIMESTAMP, user_id VARCHAR, session_id VARCHAR,"
        " event_type VARCHAR, item_id VARCHAR, position INTEGER, propensity DOUBLE, price DOUBLE,"
        " request_id VARCHAR)"
    )
    base = datetime(2024, 3, 4, 10, 0, 0)
    con.executemany(
        "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                r["id"],
                base + timedelta(seconds=r["t"]),
                r["user"],
                r["session"],
                r["type"],
                r["item"],
                r["position"],
                r["propensity"],
                r["price"],
                r["request"],
            )
            for r in rows
        ],
    )


def _decode(con, version):
    """event_id -> state with id features as items ('NONE'/'other') and the bag by item."""
    spec = load_feature_spec(con, version)
    space = load_action_space(con, version)
    names = {a: item for a, item in enumerate(space.top_items)}
    names[space.other] = "<other>"
    names[space.n_actions] = "<none>"
    out = {}
    for event_id, state in con.execute(
        "SELECT event_id, state FROM transitions WHERE dataset_version = $v", {"v": version}
    ).fetchall():
        dec = {}
        for name, kind, value in zip(spec.names, spec.kinds, state, strict=True):
            if kind == "index":
                dec[name] = names[int(value)]
            elif kind == "onehot":
                if value:
                    dec[f"bag:{names[int(name.split('_')[1])]}"] = value
            else:
                dec[name] = value
        out[event_id] = dec
    return out


@pytest.mark.slow
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=logs(), mode=st.sampled_from(["logged", "organic"]), data=st.data())
def test_state_never_depends_on_events_at_or_after_the_decision(tmp_path, rows, mode, data):
    decision_types = {"impression"} if mode == "logged" else set(TYPES) - {"impression"}
    decisions = [r for r in rows if r["type"] in decision_types]
    if not decisions:
        return
    d = data.draw(st.sampled_from(decisions))
    tau = d["t"]
    same_session = sorted((r for r in rows if r["session"] == d["session"]), key=ORDER_KEY)
    before_d = {r["id"] for r in same_session[: same_session.index(d)]}

    changed = []
    for r in rows:
        r2 = dict(r)
        if r is d or (r["t"] == tau and r["id"] not in before_d):
            # keep its place in the order (type, ts, position); change what follows from it
            r2["item"] = data.draw(st.sampled_from(ITEMS))
            r2["price"] = data.draw(st.sampled_from([1.0, 3.0]))
            r2["request"] = data.draw(st.sampled_from([None, "r1", "r3"]))
            if r is d and r["type"] == "impression":
                r2["propensity"] = data.draw(st.sampled_from([0.1, 0.9]))
        elif r["t"] > tau:
            if data.draw(st.booleans()):
                continue  # deleted
            kind = data.draw(st.sampled_from(TYPES))
            r2.update(
                type=kind,
                item=data.draw(st.sampled_from(ITEMS)),
                position=data.draw(st.sampled_from([None, 0, 3])),
                propensity=0.5 if kind == "impression" else None,
            )
        changed.append(r2)
    for i in range(data.draw(st.integers(0, 3))):  # new events after tau, in d's session too
        kind = data.draw(st.sampled_from(TYPES))
        changed.append(
            dict(
                id=f"new{i}",
                t=tau + data.draw(st.integers(1, 20)),
                user=d["user"],
                session=data.draw(st.sampled_from([d["session"], "s9"])),
                type=kind,
                item=data.draw(st.sampled_from(ITEMS)),
                position=None,
                propensity=0.5 if kind == "impression" else None,
                price=2.0,
                request=None,
            )
        )
    # the copy lives under other users and sessions so that one build computes both
    copy = [
        dict(r, id="c_" + r["id"], user="c_" + r["user"], session="c_" + r["session"])
        for r in changed
    ]

    con = duckdb.connect()
    con.execute("SET threads = 1")
    _load(con, rows + copy)
    cfg = BuildConfig(
        mode=mode,
        top_n=10,
        last_k=2,
        lookback_days=1.0,
        train_frac=1.0,
        validation_frac=0.0,
        test_frac=0.0,
    )
    res = build_dataset(con, cfg, datasets_dir=tmp_path / "ds")
    states = _decode(con, res.version)
    assert states[d["id"]] == states["c_" + d["id"]]
