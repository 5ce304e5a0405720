"""ope.segments: new/returning labels, counts, and per-segment estimates with their intervals."""

from __future__ import annotations

import numpy as np
import pytest

from ope import (
    InverseProbabilityWeighting,
    OffPolicyEvaluation,
    OPEError,
    PerDecisionImportanceSampling,
    SelfNormalizedInverseProbabilityWeighting,
    SequentialOffPolicyEvaluation,
)
from ope.segments import (
    NEW,
    RETURNING,
    check_segments,
    evaluate_segments,
    new_user_segments,
    segment_counts,
)

A = 3


def data(seed: int = 0, n_eps: int = 40, steps: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = n_eps * steps
    hist = np.repeat(rng.integers(0, 3, n_eps), steps)
    return {
        "segments": new_user_segments(hist),
        "episode_ids": np.repeat([f"s{i}" for i in range(n_eps)], steps).astype(object),
        "steps": np.tile(np.arange(steps), n_eps),
        "action": rng.integers(0, A, n),
        "pscore": np.full(n, 1 / A),
        "reward": rng.random(n),
        "action_dist": rng.dirichlet(np.ones(A), n),
    }


def test_new_user_segments() -> None:
    assert new_user_segments([0, 2, 0.0, 1]).tolist() == [NEW, RETURNING, NEW, RETURNING]


def test_counts_by_hand_and_absent_segments_get_zeros() -> None:
    seg = np.array([NEW, NEW, RETURNING, RETURNING, RETURNING], dtype=object)
    eps = np.array(["a", "a", "b", "c", "c"], dtype=object)
    c = segment_counts(seg, eps).set_index("segment")
    assert c.loc[NEW, "n_decisions"] == 2 and c.loc[NEW, "n_episodes"] == 1
    assert c.loc[RETURNING, "n_decisions"] == 3 and c.loc[RETURNING, "n_episodes"] == 2
    assert c.loc[NEW, "decision_share"] == pytest.approx(0.4)
    assert c.loc[RETURNING, "episode_share"] == pytest.approx(2 / 3)
    only = segment_counts(seg[2:], eps[2:])
    assert only["segment"].tolist() == [NEW, RETURNING]
    assert only["n_episodes"].tolist() == [0, 2]


def test_each_segment_equals_the_estimator_on_its_own_rows() -> None:
    d = data()
    bandit = OffPolicyEvaluation(
        (InverseProbabilityWeighting(), SelfNormalizedInverseProbabilityWeighting())
    )
    seq = SequentialOffPolicyEvaluation((PerDecisionImportanceSampling(gamma=0.9),))
    res, counts = evaluate_segments(
        d["segments"],
        episode_ids=d["episode_ids"],
        reward=d["reward"],
        action=d["action"],
        pscore=d["pscore"],
        action_dist=d["action_dist"],
        steps=d["steps"],
        bandit=bandit,
        sequential=seq,
        n_bootstrap=200,
        random_state=5,
    )
    assert counts["evaluated"].tolist() == [True, True]
    assert set(res["segment"]) == {NEW, RETURNING}
    assert set(res["family"]) == {"per_decision", "per_session"}
    for label in (NEW, RETURNING):
        m = d["segments"] == label
        w = d["action_dist"][np.arange(len(m)), d["action"]][m] / d["pscore"][m]
        ipw = float(np.mean(w * d["reward"][m]))
        row = res[(res["segment"] == label) & (res["estimator"] == "ipw")].iloc[0]
        assert row["value"] == pytest.approx(ipw)
        assert row["baseline_value"] == pytest.approx(d["reward"][m].mean())
        assert row["low"] < row["value"] < row["high"]
        assert row["n_decisions"] == m.sum()
        assert row["n_episodes"] == len(set(d["episode_ids"][m]))
    again, _ = evaluate_segments(
        d["segments"],
        episode_ids=d["episode_ids"],
        reward=d["reward"],
        action=d["action"],
        pscore=d["pscore"],
        action_dist=d["action_dist"],
        bandit=bandit,
        n_bootstrap=200,
        random_state=5,
    )
    first = res[res["family"] == "per_decision"].reset_index(drop=True)
    assert np.allclose(again["low"], first["low"])  # seeded: the same intervals


def test_small_segments_are_counted_not_estimated() -> None:
    d = data(n_eps=40)
    seg = d["segments"].copy()
    seg[:] = RETURNING
    seg[:6] = NEW  # two sessions
    res, counts = evaluate_segments(
        seg,
        episode_ids=d["episode_ids"],
        reward=d["reward"],
        action=d["action"],
        pscore=d["pscore"],
        action_dist=d["action_dist"],
        bandit=OffPolicyEvaluation((InverseProbabilityWeighting(),)),
        n_bootstrap=50,
        min_episodes=3,
        scheme="poisson",  # 38 sessions: falls back to multinomial instead of refusing
        random_state=0,
    )
    assert counts.set_index("segment")["evaluated"].to_dict() == {NEW: False, RETURNING: True}
    assert set(res["segment"]) == {RETURNING}


def _call(**over):  # type: ignore[no-untyped-def]
    d = data(n_eps=12)
    kw = dict(
        episode_ids=d["episode_ids"],
        reward=d["reward"],
        action=d["action"],
        pscore=d["pscore"],
        action_dist=d["action_dist"],
        bandit=OffPolicyEvaluation((InverseProbabilityWeighting(),)),
        n_bootstrap=20,
    )
    seg = over.pop("segments", d["segments"])
    kw.update(over)
    return evaluate_segments(seg, **kw)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: new_user_segments([0, -1]), r"hist_sessions\[1\] = -1\.0; .* whole number >= 0"),
        (lambda: new_user_segments([0.5]), r"pass the raw state column, not a normalised one"),
        (lambda: new_user_segments([np.nan]), r"hist_sessions\[0\] = nan; .* must be finite"),
        (
            lambda: check_segments([NEW, RETURNING], ["a", "a"]),
            r"episode 'a' has rows in segments \['new_user', 'returning_user'\]",
        ),
        (
            lambda: check_segments([NEW], ["a", "b"]),
            r"expected segments.shape\[0\] == episode_ids.shape\[0\], got 1 and 2",
        ),
        (lambda: check_segments([None], ["a"]), r"segments\[0\] is missing"),
        (lambda: _call(bandit=None), r"give bandit and/or sequential estimators"),
        (
            lambda: _call(
                sequential=SequentialOffPolicyEvaluation((PerDecisionImportanceSampling(),))
            ),
            r"sequential estimators need steps",
        ),
        (lambda: _call(min_episodes=1), r"min_episodes = 1; must be a whole number >= 2"),
        (lambda: _call(reward=np.zeros(5)), r"expected reward.shape\[0\] == segments.shape\[0\]"),
        (lambda: _call(action=np.full(36, 0.5)), r"action must hold integers"),
        (lambda: _call(action_dist=np.ones(36) / 3), r"action_dist must be \(n, n_actions\)"),
    ],
)
def test_bad_inputs_name_the_argument(call, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(OPEError, match=match):
        call()
