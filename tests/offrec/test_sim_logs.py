"""Simulated logs: determinism, the raw schema, event ordering, sessions, exact propensities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats

from offrec.simulator import RAW_SCHEMA, SimulatorConfig, simulate_events
from offrec.simulator.world import World, parse_user_ids

CFG = SimulatorConfig()
N = 3000


@pytest.fixture(scope="module")
def logs():
    return simulate_events(CFG, n_sessions=N, seed=11)


@pytest.fixture(scope="module")
def frame(logs) -> pd.DataFrame:
    return logs.to_pandas()


def test_same_seed_same_events_other_seed_differs(logs) -> None:
    again = simulate_events(CFG, n_sessions=N, seed=11)
    assert again.events.equals(logs.events)
    other = simulate_events(CFG, n_sessions=N, seed=12)
    assert not other.events.equals(logs.events)
    assert other.summary.n_sessions == N


def test_world_seed_changes_the_catalog_not_the_schedule() -> None:
    a, b = World(CFG), World(SimulatorConfig(world_seed=1))
    assert not np.array_equal(a.catalog.price, b.catalog.price)
    np.testing.assert_array_equal(a.catalog.item_ids, b.catalog.item_ids)


def test_schema_and_summary(logs, frame: pd.DataFrame) -> None:
    assert logs.events.schema.equals(RAW_SCHEMA)
    s = logs.summary
    assert s.n_events == len(frame) == sum(s.events_by_type.values())
    assert s.n_decisions == int((frame.event_type == "impression").sum())
    assert s.n_sessions == frame.session_id.nunique() == N
    assert s.n_users == frame.user_id.nunique() == round(N / CFG.sessions_per_user)
    assert s.first_ts == frame.ts.min().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    assert set(frame.event_type) == {"impression", "click", "add_to_cart", "purchase"}


def test_rows_sorted_ids_unique_and_ids_nest(frame: pd.DataFrame) -> None:
    assert frame.event_id.is_unique
    order = frame.sort_values(["ts", "event_id"], kind="stable").index
    assert (order == frame.index).all()
    assert (frame.request_id.str.slice(0, 14) == frame.session_id).all()
    assert (frame.session_id.str.slice(0, 8) == frame.user_id).all()
    assert (frame.event_id.str.rsplit("-", n=1).str[0] == frame.request_id).all()


def test_responses_follow_their_impression_in_order(frame: pd.DataFrame) -> None:
    imp = frame[frame.event_type == "impression"].set_index("request_id")
    assert imp.index.is_unique
    resp = frame[frame.event_type != "impression"]
    joined = resp.merge(
        imp[["ts", "item_id", "session_id"]],
        left_on="request_id",
        right_index=True,
        how="left",
        suffixes=("", "_imp"),
    )
    assert joined.ts_imp.notna().all(), "every response links to an impression"
    assert (joined.item_id == joined.item_id_imp).all()
    assert (joined.session_id == joined.session_id_imp).all()
    assert (joined.ts > joined.ts_imp).all()
    # within a request: click < add_to_cart < purchase, and each requires the previous one
    rank = {"impression": 0, "click": 1, "add_to_cart": 2, "purchase": 3}
    kinds = frame.assign(k=frame.event_type.map(rank)).sort_values(["request_id", "ts"])
    per_req = kinds.groupby("request_id").k.apply(list)
    assert all(ks == list(range(len(ks))) for ks in per_req), "funnel order per request"
    # the next impression of the session comes after every event of the previous step
    last = frame.groupby("request_id").ts.max()
    nxt = imp.sort_values("ts").groupby("session_id").ts.shift(-1).dropna()
    assert (nxt.to_numpy() > last.loc[nxt.index].to_numpy()).all()


def test_positions_propensities_and_prices(frame: pd.DataFrame) -> None:
    world = World(CFG)
    imp = frame.event_type == "impression"
    assert frame.loc[~imp, ["position", "propensity"]].isna().all().all()
    pos = frame.loc[imp, "position"]
    assert pos.between(0, CFG.n_positions - 1).all() and pos.nunique() == CFG.n_positions
    prop = frame.loc[imp, "propensity"]
    assert ((prop > 0) & (prop <= 1)).all()
    assert prop.min() >= CFG.behaviour_epsilon / CFG.n_items * (1 - 1e-12)
    price = dict(zip(world.catalog.item_ids, world.catalog.price, strict=True))
    assert np.array_equal(frame.price.to_numpy(), frame.item_id.map(price).to_numpy())


def test_sessions_are_separated_by_more_than_the_gap(frame: pd.DataFrame) -> None:
    spans = frame.groupby(["user_id", "session_id"]).ts.agg(["min", "max"]).reset_index()
    spans = spans.sort_values(["user_id", "min"])
    gap = (spans["min"] - spans.groupby("user_id")["max"].shift()).dropna()
    assert (gap.dt.total_seconds() > CFG.session_gap_s).all()
    inside = frame.sort_values("ts").groupby("session_id").ts.diff().dropna()
    assert inside.dt.total_seconds().max() < CFG.session_gap_s
    assert inside.dt.total_seconds().min() > 0, "events of a session have distinct times"
    per_user = spans.groupby("user_id").size()
    assert per_user.mean() == pytest.approx(CFG.sessions_per_user, rel=0.01)
    days = spans.groupby("user_id")["min"].agg(lambda s: s.dt.floor("D").nunique())
    assert (days[per_user >= 3] >= 2).mean() > 0.9, "returning users come on several days"
    first = frame.sort_values("ts").groupby("session_id").event_type.first()
    assert (first == "impression").all()


def test_logged_propensity_is_the_behaviour_probability(frame: pd.DataFrame) -> None:
    world = World(CFG)
    imp = frame[frame.event_type == "impression"]
    users = world.users(parse_user_ids(imp.user_id.to_numpy()))
    probs = world.behaviour_probs(users)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert probs.min() > 0, "full support"
    shown = world.catalog.index_of(list(imp.item_id), what="item_id")
    np.testing.assert_allclose(
        imp.propensity.to_numpy(), probs[np.arange(len(imp)), shown], rtol=1e-12
    )


def test_realised_items_match_the_propensities() -> None:
    big = simulate_events(CFG, n_sessions=8000, seed=5).events
    imp = big.filter(pa.compute.equal(big.column("event_type"), "impression"))
    world = World(CFG)
    users = world.users(parse_user_ids(imp.column("user_id").to_numpy(zero_copy_only=False)))
    expected = world.behaviour_probs(users).sum(axis=0)
    shown = world.catalog.index_of(imp.column("item_id").to_pylist(), what="item_id")
    observed = np.bincount(shown, minlength=world.catalog.n_items)
    keep = expected >= 5
    obs, exp = observed[keep], expected[keep]
    if not keep.all():  # pool the rare items into one cell
        obs = np.append(obs, observed[~keep].sum())
        exp = np.append(exp, expected[~keep].sum())
    result = stats.chisquare(obs, exp * obs.sum() / exp.sum())
    assert result.pvalue > 1e-3, result
    # and a wrong model is rejected: uniform item choice is far from the realised counts
    uniform = np.full(exp.shape, obs.sum() / exp.shape[0])
    assert stats.chisquare(obs, uniform).pvalue < 1e-6
