"""ope.explain on tiny hand-made arrays: shares, concentration, movers, examples, plain words."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ope import OPEError
from ope.explain import (
    concentration,
    describe_state,
    explain_policy,
    group_shares,
    logged_shares,
    pick_examples,
    policy_shares,
    top_actions,
    top_movers,
)

NAMES = (
    "step",
    "prev_action_1",
    "prev_action_2",
    "last_item_1",
    "last_item_2",
    "n_view",
    "n_click",
    "n_add_to_cart",
    "n_purchase",
    "secs_since_session_start",
    "secs_since_prev_event",
    "hour_of_day",
    "day_of_week",
    "position",
    "hist_sessions",
    "hist_purchases",
    "hist_spend",
)


def state(**values: float) -> np.ndarray:
    """A raw state with NONE (= 3 actions) in every index feature unless given."""
    base = dict.fromkeys(NAMES, 0.0)
    base.update({k: 3.0 for k in NAMES if k.startswith(("prev_action", "last_item"))})
    base.update(values)
    return np.array([base[k] for k in NAMES])


def test_shares_by_hand() -> None:
    assert logged_shares([0, 0, 2, 1], 4).tolist() == [0.5, 0.25, 0.25, 0.0]
    dist = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    assert policy_shares(dist).tolist() == [0.75, 0.25, 0.0]


def test_concentration_by_hand() -> None:
    even = concentration([0.25, 0.25, 0.25, 0.25], top_k=2)
    assert even.top_k_share == pytest.approx(0.5)
    assert even.gini == pytest.approx(0.0)
    assert even.entropy == pytest.approx(math.log(4))
    assert even.normalised_entropy == pytest.approx(1.0)
    assert even.effective_actions == pytest.approx(4.0)
    one = concentration([0.0, 1.0, 0.0, 0.0])
    # sorted ascending (0, 0, 0, 1): G = (2*4 - 4 - 1) * 1 / 4 = 0.75 = (A - 1) / A
    assert one.gini == pytest.approx(0.75)
    assert one.entropy == 0.0 and one.normalised_entropy == 0.0
    assert one.effective_actions == pytest.approx(1.0)
    assert one.top_k_share == pytest.approx(1.0)
    c = concentration([0.5, 0.3, 0.2], top_k=1)
    # sorted (0.2, 0.3, 0.5): ((-2)*0.2 + 0*0.3 + 2*0.5) / 3 = 0.2
    assert c.gini == pytest.approx(0.2)
    h = -(0.5 * math.log(0.5) + 0.3 * math.log(0.3) + 0.2 * math.log(0.2))
    assert c.entropy == pytest.approx(h)
    assert c.normalised_entropy == pytest.approx(h / math.log(3))
    assert c.top_k_share == pytest.approx(0.5)


def test_top_movers_by_hand() -> None:
    before = [0.4, 0.3, 0.2, 0.1]
    after = [0.1, 0.3, 0.35, 0.25]
    gains, losses = top_movers(before, after, ["a", "b", "c", "d"], k=5)
    assert [(m.label, round(m.change, 10)) for m in gains] == [("c", 0.15), ("d", 0.15)]
    assert [(m.label, m.before, m.after) for m in losses] == [("a", 0.4, 0.1)]
    gains, _ = top_movers(before, after, ["a", "b", "c", "d"], k=1)
    assert [m.label for m in gains] == ["c"]  # tie on change: label order


def test_group_shares_sum_by_label() -> None:
    assert group_shares([0.5, 0.2, 0.3], ["x", "y", "x"]) == {"x": 0.8, "y": 0.2}


def test_top_actions_breaks_ties_by_id() -> None:
    probs = np.array([[0.2, 0.4, 0.4, 0.0], [0.7, 0.1, 0.1, 0.1]])
    assert top_actions(probs, 3).tolist() == [[1, 2, 0], [0, 1, 2]]


def test_pick_examples_prefers_disagreement_and_is_seeded() -> None:
    first_p = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    first_b = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    differ = set(np.flatnonzero(first_p != first_b).tolist())
    rows = pick_examples(first_p, first_b, 6, random_state=3)
    assert len(set(rows.tolist())) == 6 and rows.tolist() == sorted(rows.tolist())
    assert sum(r in differ for r in rows.tolist()) == 4
    assert rows.tolist() == pick_examples(first_p, first_b, 6, random_state=3).tolist()
    # only 2 agreeing rows: the rest come from the disagreeing ones
    assert len(pick_examples(first_p, np.where(first_b == first_p, 9, 9), 9, random_state=0)) == 9
    assert len(pick_examples(first_p, first_b, 50, random_state=0)) == 10


def test_describe_state_in_plain_words() -> None:
    text = describe_state(
        state(
            step=2,
            prev_action_1=0,
            last_item_1=1,
            last_item_2=2,
            n_view=2,
            n_click=1,
            secs_since_session_start=250,
            hour_of_day=14,
            day_of_week=1,
            hist_sessions=2,
            hist_purchases=1,
            hist_spend=35.5,
        ),
        NAMES,
        ["sku-1", "sku-2", "an item outside the top-N"],
    )
    assert text == (
        "3rd recommendation of the session; was just shown sku-1; recently interacted with "
        "sku-2, an item outside the top-N (latest first); 2 views, 1 click so far; 4 minutes "
        "into the session; Tuesday 14:00 UTC; returning user: 2 earlier sessions, 1 purchase, "
        "spent 35.50"
    )
    organic = describe_state(
        state(step=1, prev_action_1=0, last_item_1=0), NAMES, ["a", "b"], "organic"
    )
    assert organic.startswith("2nd interaction of the session; recently interacted with a (")
    first = describe_state(state(day_of_week=6, hour_of_day=3), NAMES, ["a", "b", "c"])
    assert first == (
        "1st recommendation of the session; no interaction yet in this session; 0 seconds into "
        "the session; Sunday 03:00 UTC; new user (no earlier session in the lookback)"
    )


def test_explain_policy_end_to_end_on_a_tiny_split() -> None:
    states = np.stack([state(step=i) for i in range(6)])
    actions = np.array([0, 0, 0, 1, 1, 2])
    dist = np.array([[0.0, 0.0, 1.0]] * 3 + [[0.0, 1.0, 0.0]] * 3)
    behaviour = np.array([[0.8, 0.1, 0.1]] * 6)
    ex = explain_policy(
        states=states,
        actions=actions,
        action_dist=dist,
        feature_names=NAMES,
        item_labels=["sku-1", "sku-2", "(other items)"],
        behaviour_dist=behaviour,
        categories={"sku-1": "shoes", "sku-2": "hats"},
        n_examples=3,
        random_state=0,
    )
    assert ex.behaviour_shares.tolist() == pytest.approx([0.5, 2 / 6, 1 / 6])
    assert ex.shares.tolist() == pytest.approx([0.0, 0.5, 0.5])
    assert [(m.label, round(m.change, 10)) for m in ex.gains] == [
        ("(other items)", round(1 / 3, 10)),
        ("sku-2", round(1 / 6, 10)),
    ]
    assert [m.label for m in ex.losses] == ["sku-1"]
    assert [m.label for m in ex.category_losses] == ["shoes"]
    assert ex.disagreement == 1.0  # the behaviour model's first choice is always sku-1
    assert len(ex.examples) == 3 and not any(e.agree for e in ex.examples)
    e0 = ex.examples[0]
    assert [r.label for r in e0.behaviour_top] == ["sku-1", "sku-2", "(other items)"]
    assert e0.policy_top[0].prob == 1.0
    d = ex.to_dict()
    assert d["concentration"]["gini"] == pytest.approx(ex.concentration.gini)
    assert d["examples"][0]["history"].startswith(f"{e0.row + 1}")
    # without a behaviour model: the logged action is the behaviour's first choice
    ex2 = explain_policy(
        states=states,
        actions=actions,
        action_dist=dist,
        feature_names=NAMES,
        item_labels=["sku-1", "sku-2", "(other items)"],
    )
    # first choices (2, 2, 2, 1, 1, 1) against the logged (0, 0, 0, 1, 1, 2): rows 3, 4 agree
    assert ex2.disagreement == pytest.approx(4 / 6)
    assert ex2.category_gains == () and all(e.behaviour_top == () for e in ex2.examples)
    # a uniform policy has no first choice: it departs from the behaviour's 1 - 1/A of the time
    uni = explain_policy(
        states=states,
        actions=actions,
        action_dist=np.full((6, 3), 1 / 3),
        feature_names=NAMES,
        item_labels=["sku-1", "sku-2", "(other items)"],
    )
    assert uni.disagreement == pytest.approx(2 / 3)


GOOD = dict(
    states=np.stack([state()] * 2),
    actions=np.array([0, 1]),
    action_dist=np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]]),
    feature_names=NAMES,
    item_labels=["a", "b", "c"],
)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: logged_shares([0, 3], 3), r"actions\[1\] = 3; actions must be < n_actions = 3"),
        (lambda: logged_shares([0, 1], 0), r"n_actions = 0; must be a whole number >= 1"),
        (lambda: logged_shares([0.5, 1.0], 2), r"actions must hold integers"),
        (lambda: concentration([0.5, 0.6]), r"shares sums to 1\.1; shares must sum to 1"),
        (lambda: concentration([1.5, -0.5]), r"shares\[1\] = -0\.5; shares must be finite"),
        (lambda: concentration([]), r"shares must be a non-empty 1-d array"),
        (lambda: concentration([1.0], top_k=0), r"top_k = 0; must be a whole number >= 1"),
        (lambda: top_movers([1.0, 0.0], [1.0], ["a", "b"]), r"before.shape == after.shape"),
        (lambda: top_movers([1.0, 0.0], [0.0, 1.0], ["a"]), r"labels has 1 entries for 2"),
        (lambda: group_shares([1.0, 0.0], ["x", ""]), r"every action needs a non-empty group"),
        (lambda: pick_examples([0, 1], [0], 1), r"first_behaviour.shape\[0\] == first_policy"),
        (lambda: pick_examples([0, 1], [0, 1], -1), r"n_examples = -1"),
        (
            lambda: pick_examples([0], [0], 1, disagree_share=2.0),
            r"disagree_share = 2\.0; must be in \[0, 1\]",
        ),
        (lambda: describe_state(np.zeros(3), NAMES, ["a"]), r"state must be 1-d with one value"),
        (lambda: describe_state(state(step=np.nan), NAMES, ["a"]), r"state holds NaN or inf"),
        (lambda: describe_state(state(), NAMES, []), r"item_labels is empty"),
        (lambda: describe_state(state(), NAMES, ["a"], "web"), r"mode = 'web'; must be 'logged'"),
        (
            lambda: explain_policy(**{**GOOD, "item_labels": ["a", "b"]}),
            r"item_labels has 2 entries; action_dist has 3 actions",
        ),
        (
            lambda: explain_policy(**{**GOOD, "actions": np.array([0])}),
            r"expected actions.shape\[0\] == action_dist.shape\[0\], got 1 and 2",
        ),
        (
            lambda: explain_policy(**{**GOOD, "states": np.zeros((2, 4))}),
            r"states must be \(n, 17\)",
        ),
        (
            lambda: explain_policy(**{**GOOD, "action_dist": np.array([[0.5, 0.6, 0.0]] * 2)}),
            r"action_dist",
        ),
        (
            lambda: explain_policy(**GOOD, behaviour_dist=np.ones((2, 2)) / 2),
            r"behaviour_dist.shape == action_dist.shape",
        ),
        (
            lambda: explain_policy(**GOOD, history_labels=["a"]),
            r"history_labels has 1 entries",
        ),
    ],
)
def test_bad_inputs_name_the_argument(call, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(OPEError, match=match):
        call()
