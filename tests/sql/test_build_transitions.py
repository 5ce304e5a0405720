"""Hand-made logs with hand-computed transitions (docs/design.md section 3).

Every expected number below was worked out by hand from the definitions; comments show how.
T0 = Monday 2024-03-04 10:00:00 UTC; ``t`` is seconds after T0.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

# Session s1 of u1 (logged): a two-item slate at t=0 (tie on ts, ordered by position), a click,
# an add_to_cart and a purchase of B, a second impression (C) and a view after it.
# Session s2 of u2: a single impression. Rows are shuffled: input order must not matter.
# fmt: off
LOGGED = [
    dict(t=0, session="s1", user="u1", type="impression", item="A", position=0,
         propensity=0.5, request="r1"),
    dict(t=0, session="s1", user="u1", type="impression", item="B", position=1,
         propensity=0.25, request="r1"),
    dict(t=5, session="s1", user="u1", type="click", item="B", request="r1"),
    dict(t=10, session="s1", user="u1", type="add_to_cart", item="B", request="r1"),
    dict(t=20, session="s1", user="u1", type="impression", item="C", position=0,
         propensity=0.5, request="r2"),
    dict(t=30, session="s1", user="u1", type="purchase", item="B", price=9.5, request="r1"),
    dict(t=40, session="s1", user="u1", type="view", item="C", request="r2"),
    dict(t=100, session="s2", user="u2", type="impression", item="A", position=0,
         propensity=0.9, request="r3"),
]
# fmt: on


def shuffled(rows, seed=7):
    rows = [dict(r, id=f"e{i:02d}") for i, r in enumerate(rows)]
    random.Random(seed).shuffle(rows)
    return rows


def vec(rec, prefix, k=3):
    return [rec[f"{prefix}_{j}"] for j in range(1, k + 1)]


def test_logged_mode_hand_computed(con, events, build, named):
    events(shuffled(LOGGED))
    res = build(top_n=2, session_gap_s=30)
    st = named(res.version)
    assert sorted(st) == [("s1", 0), ("s1", 1), ("s1", 2), ("s2", 0)]
    # action space: train counts A=2, B=1, C=1; top_n=2 -> A=0, then B (tie with C broken by
    # item id) =1; C falls in other=2; A = 3 actions, NONE = 3
    a, b, other, none = 0, 1, 2, 3
    s10, s11, s12, s20 = st["s1", 0], st["s1", 1], st["s1", 2], st["s2", 0]
    assert [s10["action"], s11["action"], s12["action"], s20["action"]] == [a, b, other, a]
    # step 0: A at t=0 -- nothing before it (the tied B is not "before" and comes later)
    assert s10["step"] == 0 and vec(s10, "prev_action") == [none] * 3
    assert vec(s10, "last_item") == [none] * 3
    assert [s10[n] for n in ("n_view", "n_click", "n_add_to_cart", "n_purchase")] == [0] * 4
    assert s10["secs_since_session_start"] == 0 and s10["secs_since_prev_event"] == 0
    assert (s10["hour_of_day"], s10["day_of_week"], s10["position"]) == (10, 0, 0)
    # step 1: B at t=0, position 1: one earlier decision (A); still no event strictly before
    assert s11["step"] == 1 and vec(s11, "prev_action") == [a, none, none]
    assert vec(s11, "last_item") == [none] * 3 and s11["position"] == 1
    assert s11["secs_since_prev_event"] == 0
    # step 2: C at t=20: interactions before are click B (5) and add_to_cart B (10)
    assert vec(s12, "prev_action") == [b, a, none]
    assert vec(s12, "last_item") == [b, b, none]
    assert [s12[n] for n in ("n_view", "n_click", "n_add_to_cart", "n_purchase")] == [0, 1, 1, 0]
    assert s12["secs_since_session_start"] == 20 and s12["secs_since_prev_event"] == 10
    assert [s12["bag_0"], s12["bag_1"], s12["bag_2"]] == [0, 2, 0]
    # rewards: B's request r1 got click + add_to_cart + purchase(9.5) -> 1 + 2 + 5 = 8;
    # C's request r2 got a view after the last impression -> r_click 1 -> reward 1
    comps = ("r_click", "r_cart", "r_purchase", "r_revenue", "reward")
    assert [s10[c] for c in comps] == [0, 0, 0, 0, 0]
    assert [s11[c] for c in comps] == [1, 1, 1, 9.5, 8]
    assert [s12[c] for c in comps] == [1, 0, 0, 0, 1]
    # ends: watermark = t=100; s1 last event t=40 is 60 s > gap 30 s before it -> terminal;
    # s2's last event is the watermark itself -> timeout
    assert [(r["terminal"], r["timeout"]) for r in (s10, s11, s12)] == [
        (False, False),
        (False, False),
        (True, False),
    ]
    assert (s20["terminal"], s20["timeout"]) == (False, True)
    assert s10["propensity"] == 0.5 and s11["propensity"] == 0.25
    # next_state chains the episode; NULL on the last row
    assert s10["next_state"] == s11["state"] and s11["next_state"] == s12["state"]
    assert s12["next_state"] is None and s20["next_state"] is None
    ep = dict(
        con.execute(
            'SELECT episode_id, "return" FROM episodes WHERE dataset_version = $v',
            {"v": res.version},
        ).fetchall()
    )
    assert ep == {"s1": 9.0, "s2": 0.0}


def test_same_logs_in_any_row_order_give_the_same_dataset(con, events, build, named, tmp_path):
    events(shuffled(LOGGED, seed=1))
    first = build(top_n=2)
    rows = con.execute(
        "SELECT episode_id, step, state, reward FROM transitions ORDER BY episode_id, step"
    ).fetchall()
    con.execute("DELETE FROM events")
    for seed in (2, 3):
        con.execute("DROP TABLE events")
        events(shuffled(LOGGED, seed=seed))
        again = build(top_n=2)
        assert again.version == first.version  # same content, same version
        assert (
            con.execute(
                "SELECT episode_id, step, state, reward FROM transitions ORDER BY episode_id, step"
            ).fetchall()
            == rows
        )


def test_organic_mode_hand_computed(con, events, build, named):
    # organic: decisions are the interaction events, in (ts, position, event_id) order;
    # rewards are the events themselves; propensity is always NULL
    events(shuffled(LOGGED))
    res = build(mode="organic", top_n=5, session_gap_s=30, item_encoding="index")
    st = named(res.version)
    # s1 decisions: click B (5), add_to_cart B (10), purchase B (30), view C (40); s2 has none
    assert sorted(st) == [("s1", 0), ("s1", 1), ("s1", 2), ("s1", 3)]
    # train decision counts: B=3, C=1 -> B=0, C=1, other=2 (A only impressed), NONE=3
    b, c, none = 0, 1, 3
    acts = [st["s1", i]["action"] for i in range(4)]
    assert acts == [b, b, b, c]
    d0, d1, d2, d3 = (st["s1", i] for i in range(4))
    assert vec(d0, "last_item") == [none] * 3 and d0["secs_since_prev_event"] == 5
    assert vec(d1, "prev_action") == [b, none, none] and vec(d1, "last_item") == [b, none, none]
    assert vec(d3, "prev_action") == [b, b, b] and vec(d3, "last_item") == [b, b, b]
    assert [d3[n] for n in ("n_view", "n_click", "n_add_to_cart", "n_purchase")] == [0, 1, 1, 1]
    assert d3["secs_since_session_start"] == 40 and d3["secs_since_prev_event"] == 10
    assert d0["position"] == 0  # the feature is 0 where the position column is NULL
    assert con.execute(
        "SELECT count(*) FROM transitions WHERE position IS NOT NULL"
    ).fetchone() == (0,)
    assert [(d["r_click"], d["r_cart"], d["r_purchase"], d["r_revenue"]) for d in st.values()] == [
        (1, 0, 0, 0),
        (0, 1, 0, 0),
        (0, 0, 1, 9.5),
        (1, 0, 0, 0),
    ]
    assert [d["reward"] for d in st.values()] == [1, 2, 5, 1]
    assert all(d["propensity"] is None for d in st.values())
    assert len(d0["state"]) == 13 + 2 * 3  # index encoding: no bag
    assert (d3["terminal"], d3["timeout"]) == (True, False)


def test_single_event_session_and_midnight(con, events, build, named):
    sunday = "2024-03-03"
    from datetime import datetime

    events(
        [
            # one impression only: a one-step episode, nothing before it
            dict(
                t=0,
                session="solo",
                user="u9",
                type="impression",
                item="A",
                position=2,
                propensity=1.0,
                request="q0",
            ),
            # a session spanning midnight Sunday -> Monday (UTC)
            dict(
                t=datetime.fromisoformat(f"{sunday}T23:59:50"),
                session="mid",
                user="u8",
                type="view",
                item="B",
            ),
            dict(
                t=datetime.fromisoformat(f"{sunday}T23:59:55"),
                session="mid",
                user="u8",
                type="impression",
                item="A",
                position=0,
                propensity=0.3,
                request="q1",
            ),
            dict(
                t=datetime.fromisoformat("2024-03-04T00:00:10"),
                session="mid",
                user="u8",
                type="impression",
                item="B",
                position=0,
                propensity=0.3,
                request="q2",
            ),
        ]
    )
    res = build(top_n=5)
    st = named(res.version)
    solo = st["solo", 0]
    assert solo["step"] == 0 and solo["position"] == 2 and solo["secs_since_session_start"] == 0
    assert solo["next_state"] is None and solo["terminal"] != solo["timeout"]
    m0, m1 = st["mid", 0], st["mid", 1]
    assert (m0["hour_of_day"], m0["day_of_week"]) == (23, 6)  # Sunday 23:59:55
    assert (m1["hour_of_day"], m1["day_of_week"]) == (0, 0)  # Monday 00:00:10
    assert m0["secs_since_session_start"] == 5 and m1["secs_since_session_start"] == 20
    assert m1["secs_since_prev_event"] == 15 and m0["n_view"] == 1 and m1["n_view"] == 1


def test_ties_within_a_timestamp(con, events, build, named):
    # three impressions and a click in the same second: decisions ordered by position (NULLS
    # first), then event id; the click at that second is not "before" any of them
    events(
        [
            dict(
                id="z",
                t=50,
                session="s",
                type="impression",
                item="C",
                position=2,
                propensity=0.2,
                request="r",
            ),
            dict(
                id="y",
                t=50,
                session="s",
                type="impression",
                item="B",
                position=None,
                propensity=0.2,
                request="r",
            ),
            dict(
                id="x",
                t=50,
                session="s",
                type="impression",
                item="A",
                position=2,
                propensity=0.2,
                request="r",
            ),
            dict(id="w", t=50, session="s", type="click", item="A", request="r"),
            dict(
                id="v",
                t=60,
                session="s",
                type="impression",
                item="A",
                position=0,
                propensity=0.2,
                request="r2",
            ),
        ]
    )
    res = build(top_n=5, item_encoding="index")
    st = named(res.version)
    order = [st["s", i]["event_id"] for i in range(4)]
    assert order == ["y", "x", "z", "v"]  # NULL position first, then position 2 by event id
    assert [st["s", i]["n_click"] for i in range(4)] == [0, 0, 0, 1]
    # train counts A=2, B=1, C=1 -> A=0, B=1, C=2; NONE=4
    assert vec(st["s", 3], "prev_action") == [2, 0, 1]
    assert vec(st["s", 3], "last_item") == [0, 4, 4]
    assert st["s", 3]["secs_since_prev_event"] == 10
    # the click carries request r and item A: attributed to impression x only
    assert [st["s", i]["r_click"] for i in range(4)] == [0, 1, 0, 0]


def test_attribution_without_request_ids_and_window(con, events, build, named):
    # no request ids: a response counts for the latest impression of its item at or before it,
    # before the session's next (later) impression, within the attribution window
    events(
        [
            dict(t=0, session="s", type="impression", item="A", position=0, propensity=0.5),
            dict(t=0, session="s", type="impression", item="B", position=1, propensity=0.5),
            dict(t=3, session="s", type="click", item="A"),
            dict(t=4, session="s", type="click", item="B"),
            dict(t=20, session="s", type="impression", item="A", position=0, propensity=0.5),
            dict(t=25, session="s", type="purchase", item="A", price=3.0),
            dict(t=26, session="s", type="add_to_cart", item="C"),  # C never shown
            dict(t=200, session="s", type="click", item="A"),  # past the 100 s window
        ]
    )
    res = build(top_n=5, attribution_window_s=100)
    st = named(res.version)
    got = [
        (
            st["s", i]["r_click"],
            st["s", i]["r_cart"],
            st["s", i]["r_purchase"],
            st["s", i]["r_revenue"],
        )
        for i in range(3)
    ]
    assert got == [(1, 0, 0, 0.0), (1, 0, 0, 0.0), (0, 0, 1, 3.0)]


def test_max_episode_len_caps_and_times_out(con, events, build, named):
    events(shuffled(LOGGED))
    res = build(top_n=2, session_gap_s=30, max_episode_len=2)
    st = named(res.version)
    assert sorted(st) == [("s1", 0), ("s1", 1), ("s2", 0)]
    assert (st["s1", 1]["terminal"], st["s1", 1]["timeout"]) == (False, True)
    assert res.summary["decisions"]["dropped_by_cap"] == 1
    assert con.execute(
        "SELECT n_steps, n_dropped, ended FROM episodes WHERE episode_id = 's1'"
    ).fetchone() == (2, 1, "timeout")


def test_history_features_lookback(con, events, build, named):
    day = 86400
    events(
        [
            # u1's earlier sessions: 40 days ago (outside a 30-day lookback) and yesterday
            dict(t=-40 * day, session="old", user="u1", type="purchase", item="X", price=99.0),
            dict(t=-day, session="prev", user="u1", type="view", item="X"),
            dict(t=-day + 10, session="prev", user="u1", type="purchase", item="X", price=20.0),
            dict(t=-day + 20, session="prev", user="u1", type="purchase", item="Y", price=5.0),
            # a session of u1 that started 31 days ago but still had an event 29 days ago: it has
            # an event inside the lookback, so it counts although it started before it
            dict(t=-31 * day, session="long", user="u1", type="view", item="X"),
            dict(t=-29 * day, session="long", user="u1", type="click", item="X"),
            # another user's purchase does not count
            dict(t=-100, session="other", user="u2", type="purchase", item="X", price=7.0),
            # the episode
            dict(
                t=0,
                session="now",
                user="u1",
                type="impression",
                item="A",
                position=0,
                propensity=0.5,
                request="r",
            ),
            dict(t=5, session="now", user="u1", type="purchase", item="A", price=1.0),
        ]
    )
    res = build(top_n=5, lookback_days=30)
    rec = named(res.version)["now", 0]
    assert (rec["hist_sessions"], rec["hist_purchases"], rec["hist_spend"]) == (2, 2, 25.0)
    new_user = con.execute("SELECT is_new_user FROM episodes WHERE episode_id = 'now'").fetchone()
    assert new_user == (False,)
    res0 = build(top_n=5, lookback_days=0)
    rec0 = named(res0.version)["now", 0]
    assert (rec0["hist_sessions"], rec0["hist_purchases"], rec0["hist_spend"]) == (0, 0, 0)


def test_time_based_splits_keep_sessions_whole(con, events, build, named):
    rows = []
    for i in range(10):  # session i starts at i*1000 s and has three impressions
        for j in range(3):
            rows.append(
                dict(
                    t=i * 1000 + j,
                    session=f"s{i}",
                    user=f"u{i % 3}",
                    type="impression",
                    item="ABC"[j],
                    position=0,
                    propensity=0.3,
                    request=f"r{i}{j}",
                )
            )
    events(rows)
    res = build(top_n=3, train_frac=0.8, validation_frac=0.1, test_frac=0.1)
    split = dict(con.execute("SELECT episode_id, split FROM episodes").fetchall())
    assert [split[f"s{i}"] for i in range(10)] == ["train"] * 8 + ["validation", "test"]
    per = con.execute(
        "SELECT episode_id, count(DISTINCT split) FROM transitions "
        "GROUP BY episode_id HAVING count(DISTINCT split) > 1"
    ).fetchall()
    assert per == []
    assert res.summary["episodes"] == {"total": 10, "train": 8, "validation": 1, "test": 1}
    by_date = build(
        top_n=3, validation_start="2024-03-04T10:50:00", test_start="2024-03-04T11:55:00"
    )
    split = dict(
        con.execute(
            "SELECT episode_id, split FROM episodes WHERE dataset_version = $v",
            {"v": by_date.version},
        ).fetchall()
    )
    # starts: s0 10:00, s1 10:16:40, s2 10:33:20, s3 10:50, ..., s7 11:56:40
    assert [split[f"s{i}"] for i in range(10)] == (
        ["train"] * 3 + ["validation"] * 4 + ["test"] * 3
    )


def test_action_space_top_n_from_train_only(con, events, build, named):
    rows = []
    # train sessions (earliest 2 of 3): A twice, B once; test session: C three times
    for i, items in enumerate(["AAB", "A", "CCC"]):
        for j, item in enumerate(items):
            rows.append(
                dict(
                    t=i * 100 + j,
                    session=f"s{i}",
                    user="u",
                    type="impression",
                    item=item,
                    position=0,
                    propensity=0.5,
                    request=f"r{i}{j}",
                )
            )
    rows.append(dict(t=5, session="s0", user="u", type="view", item="D"))  # seen, never decided
    events(rows)
    res = build(top_n=1, train_frac=0.67, validation_frac=0.0, test_frac=0.33)
    acts = con.execute(
        "SELECT action, item_id, is_other, train_count, n_items FROM actions ORDER BY action"
    ).fetchall()
    assert acts == [(0, "A", False, 3, 1), (1, None, True, 1, 3)]  # other: B, C, D
    from sql.dataset import load_action_space

    space = load_action_space(con, res.version)
    assert space.top_items == ("A",) and space.other_items == ("B", "C", "D")
    test_actions = con.execute(
        "SELECT DISTINCT action FROM transitions WHERE split = 'test'"
    ).fetchall()
    assert test_actions == [(1,)]
    assert res.summary["actions"]["coverage"]["test"] == 0.0
    assert res.summary["actions"]["seen"] == 2 and res.summary["actions"]["other_items"] == 3


def test_feature_spec_uses_train_statistics(con, events, build, named):
    rows = []
    for i in range(6):
        for j in range(i % 3 + 1):
            rows.append(
                dict(
                    t=i * 500 + j * 7,
                    session=f"s{i}",
                    user=f"u{i}",
                    type="impression",
                    item="AB"[j % 2],
                    position=j,
                    propensity=0.5,
                    request=f"r{i}{j}",
                )
            )
    events(rows)
    res = build(top_n=5, train_frac=0.5, validation_frac=0.5, test_frac=0.0)
    from sql.dataset import load_feature_spec, load_transitions

    spec = load_feature_spec(con, res.version)
    train = load_transitions(con, res.version, split="train")
    assert spec.dim == train.states.shape[1] == 13 + 6 + 3
    for i, (name, kind) in enumerate(zip(spec.names, spec.kinds, strict=True)):
        col = train.states[:, i].astype(np.float64)
        if kind in ("index", "onehot"):
            assert (spec.mean[i], spec.std[i]) == (0.0, 1.0), name
        else:
            assert spec.mean[i] == pytest.approx(col.mean(), abs=1e-6), name
            expect = col.std() if col.std() > 0 else 1.0
            assert spec.std[i] == pytest.approx(expect, abs=1e-6), name
    assert spec.std[spec.offset("hour_of_day")] == 1.0  # constant in train -> 1


def test_rebuild_is_idempotent_and_versions_coexist(con, events, build, named, tmp_path):
    events(shuffled(LOGGED))
    first = build(top_n=2)
    n = con.execute("SELECT count(*) FROM transitions").fetchone()[0]
    again = build(top_n=2)
    assert again.version == first.version and again.replaced and not first.replaced
    for table in (
        "transitions",
        "episodes",
        "actions",
        "item_actions",
        "feature_spec",
        "dataset_versions",
    ):
        counts = con.execute(
            f"SELECT dataset_version, count(*) FROM {table} GROUP BY ALL"
        ).fetchall()
        assert len(counts) == 1, table
    assert con.execute("SELECT count(*) FROM transitions").fetchone()[0] == n
    other = build(top_n=1)
    assert other.version != first.version
    versions = {
        r[0] for r in con.execute("SELECT dataset_version FROM dataset_versions").fetchall()
    }
    assert versions == {first.version, other.version}
    from sql.dataset import latest_version, load_transitions

    assert latest_version(con) == other.version
    assert len(load_transitions(con, first.version)) == n
    # a changed event changes the version
    con.execute("UPDATE events SET price = 10.0 WHERE event_type = 'purchase'")
    assert build(top_n=2).version != first.version


def test_parquet_copies_match_the_tables(con, events, build, named):
    events(shuffled(LOGGED))
    res = build(top_n=2)
    assert res.parquet_dir.name == res.version
    for table in (
        "transitions",
        "episodes",
        "actions",
        "item_actions",
        "feature_spec",
        "dataset_versions",
    ):
        path = res.parquet_dir / f"{table}.parquet"
        n_pq = con.execute("SELECT count(*) FROM read_parquet($p)", {"p": str(path)}).fetchone()
        n_db = con.execute(
            f"SELECT count(*) FROM {table} WHERE dataset_version = $v", {"v": res.version}
        ).fetchone()
        assert n_pq == n_db, table
    same = con.execute(
        "SELECT count(*) FROM read_parquet($p) AS p JOIN transitions AS t "
        "USING (dataset_version, event_id) WHERE p.state = t.state AND p.reward = t.reward",
        {"p": str(res.parquet_dir / "transitions.parquet")},
    ).fetchone()[0]
    assert same == 4


def test_load_transitions_arrays(con, events, build, named):
    events(shuffled(LOGGED))
    res = build(top_n=2, train_frac=0.5, validation_frac=0.0, test_frac=0.5)
    from sql.dataset import load_transitions

    data = load_transitions(con)
    assert data.version == res.version and len(data) == 4
    assert data.states.dtype == np.float32 and data.states.shape == (4, 13 + 6 + 3)
    assert list(data.episode_ids) == ["s1", "s1", "s1", "s2"]  # chronological, whole episodes
    assert list(data.steps) == [0, 1, 2, 0]
    np.testing.assert_array_equal(data.next_states[0], data.states[1])
    assert not data.next_states[2].any() and not data.next_states[3].any()
    np.testing.assert_array_equal(data.propensities, [0.5, 0.25, 0.5, 0.9])
    np.testing.assert_array_equal(data.components["r_revenue"], [0, 9.5, 0, 0])
    assert list(data.split) == ["train"] * 3 + ["test"]
    assert list(data.item_ids) == ["A", "B", "C", "A"]
    test = load_transitions(con, res.version, split="test")
    assert len(test) == 1 and test.episode_ids[0] == "s2"
