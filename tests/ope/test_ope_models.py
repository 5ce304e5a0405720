"""Reward and behaviour models: bad inputs, cross-fitting by episode, calibration, seeds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsRegressor

from ope.behaviour_model import (
    BehaviourModelConfig,
    calibration_table,
    choose_propensities,
    compare_propensities,
    fit_behaviour_model,
    floor_probabilities,
)
from ope.errors import OPEError
from ope.reward_model import RewardModelConfig, episode_folds, fit_reward_model


def _softmax_policy(
    n_episodes: int = 600, steps: int = 4, d: int = 4, n_actions: int = 4, seed: int = 0
) -> dict[str, Any]:
    """States, a known softmax behaviour policy, actions drawn from it, episodes of ``steps``."""
    rng = np.random.default_rng(seed)
    n = n_episodes * steps
    x = rng.standard_normal((n, d))
    w = rng.standard_normal((d, n_actions)) * 1.2
    logits = x @ w
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    a = (rng.random(n)[:, None] > p.cumsum(axis=1)).sum(axis=1).clip(max=n_actions - 1)
    return {"x": x, "p": p, "a": a.astype(np.int64), "g": np.repeat(np.arange(n_episodes), steps)}


def _reward_data(seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    n, d, n_actions = 3000, 3, 3
    x = rng.standard_normal((n, d))
    a = rng.integers(0, n_actions, n)

    def truth(x: np.ndarray, a: np.ndarray) -> np.ndarray:
        return 1.0 + 0.8 * x[:, 0] * (a == 1) - 0.6 * x[:, 1] * (a == 2) + 0.3 * a

    r = truth(x, a) + 0.5 * rng.standard_normal(n)
    q = np.stack([truth(x, np.full(n, k)) for k in range(n_actions)], axis=1)
    return {"x": x, "a": a, "r": r, "g": np.repeat(np.arange(n // 3), 3), "q": q, "A": n_actions}


# ------------------------------------------------------------------------------------------
# bad inputs


def _reward_args(**override: Any) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    args: dict[str, Any] = {
        "states": rng.standard_normal((40, 2)),
        "actions": np.arange(40) % 3,
        "rewards": rng.standard_normal(40),
        "groups": np.repeat(np.arange(10), 4),
        "n_actions": 3,
    }
    args.update(override)
    return args


NAN_STATES = np.ones((40, 2))
NAN_STATES[7, 1] = np.nan
NAN_REWARDS = np.zeros(40)
NAN_REWARDS[3] = np.inf

REWARD_BAD = [
    ({"states": np.ones(40)}, "states: expected a non-empty 2-d array"),
    ({"states": NAN_STATES}, r"states: row 7 has NaN/inf"),
    ({"states": np.array([["a", "b"]] * 40)}, "states: expected numbers"),
    ({"actions": np.arange(39) % 3}, r"actions: expected shape \(40,\)"),
    ({"actions": np.zeros(40)}, "actions: expected integer action ids"),
    ({"actions": np.full(40, 3)}, r"actions: row 0 has action 3, outside \[0, 3\)"),
    ({"actions": np.full(40, -1)}, r"actions: row 0 has action -1"),
    ({"rewards": np.zeros(41)}, r"rewards: expected numbers of shape \(40,\)"),
    ({"rewards": NAN_REWARDS}, "rewards: row 3 is inf"),
    ({"groups": np.arange(39)}, r"groups: expected one episode id per row"),
    ({"groups": np.zeros(40)}, r"groups: 1 distinct episodes for n_folds == 5"),
    ({"n_actions": 0}, "n_actions == 0, must be an integer >= 1"),
    ({"n_actions": 300, "actions": np.arange(40) * 7}, "limits to 255 categories"),
    ({"config": "hgb"}, "config: expected a RewardModelConfig"),
    ({"estimator": object()}, "estimator: expected a scikit-learn regressor"),
    (
        {"config": RewardModelConfig(loss="poisson"), "rewards": -np.ones(40)},
        "loss 'poisson' needs non-negative rewards",
    ),
]


@pytest.mark.parametrize(("override", "match"), REWARD_BAD)
def test_reward_model_rejects_bad_input(override: dict[str, Any], match: str) -> None:
    with pytest.raises(OPEError, match=match):
        fit_reward_model(**_reward_args(**override))


CONFIG_BAD = [
    (RewardModelConfig, {"kind": "forest"}, "RewardModelConfig.kind == 'forest'"),
    (RewardModelConfig, {"n_folds": 1}, r"RewardModelConfig.n_folds == 1, must be an integer >= 2"),
    (RewardModelConfig, {"loss": "absolute"}, "RewardModelConfig.loss == 'absolute'"),
    (RewardModelConfig, {"l2": -1.0}, r"RewardModelConfig.l2 == -1.0, must be >= 0"),
    (RewardModelConfig, {"learning_rate": 0.0}, "RewardModelConfig.learning_rate == 0.0"),
    (RewardModelConfig, {"max_train_rows": 5}, "RewardModelConfig.max_train_rows == 5"),
    (RewardModelConfig, {"threads": True}, "RewardModelConfig.threads == True"),
    (BehaviourModelConfig, {"kind": "svm"}, "BehaviourModelConfig.kind == 'svm'"),
    (BehaviourModelConfig, {"propensity_floor": 0.0}, "propensity_floor == 0.0, must be in"),
    (BehaviourModelConfig, {"propensity_floor": 1.0}, "propensity_floor == 1.0, must be in"),
    (BehaviourModelConfig, {"C": -2.0}, r"BehaviourModelConfig.C == -2.0, must be > 0"),
    (BehaviourModelConfig, {"calibration_bins": 1}, "calibration_bins == 1"),
    (BehaviourModelConfig, {"n_folds": 1}, "BehaviourModelConfig.n_folds == 1"),
]


@pytest.mark.parametrize(("cls", "kwargs", "match"), CONFIG_BAD)
def test_model_configs_reject_bad_values(cls: type, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(OPEError, match=match):
        cls(**kwargs)


BEHAVIOUR_BAD = [
    ({"states": np.ones((40, 2, 1))}, "states: expected a non-empty 2-d array"),
    ({"actions": np.arange(40) % 3 + 0.5}, "actions: expected integer action ids"),
    ({"actions": np.full(40, 5)}, r"actions: row 0 has action 5, outside \[0, 3\)"),
    ({"groups": np.arange(10)}, r"groups: expected one episode id per row, shape \(40,\)"),
    (
        {"config": BehaviourModelConfig(propensity_floor=0.4)},
        r"propensity_floor == 0.4 with 3 actions: the floor must be < 1 / n_actions",
    ),
    ({"config": BehaviourModelConfig(n_folds=11)}, "10 distinct episodes for n_folds == 11"),
]


@pytest.mark.parametrize(("override", "match"), BEHAVIOUR_BAD)
def test_behaviour_model_rejects_bad_input(override: dict[str, Any], match: str) -> None:
    args = _reward_args(**override)
    del args["rewards"]
    with pytest.raises(OPEError, match=match):
        fit_behaviour_model(**args)


PSCORE_BAD = [
    ({"estimated": np.array([0.5, 0.0])}, r"estimated: row 1 is 0.0; propensities must be in"),
    ({"logged": np.array([1.5, 0.2])}, r"logged: row 0 is 1.5; propensities must be in \(0, 1\]"),
    ({"logged": np.array([0.5])}, "expected estimated and logged of the same shape"),
    ({"logged": np.array([np.nan, np.nan])}, "every propensity is NaN; nothing to compare"),
    ({"estimated": np.array([[0.5, 0.5]])}, "estimated: expected a 1-d numeric array"),
    ({"ratio_band": 1.0}, "ratio_band == 1.0, must be > 1"),
]


@pytest.mark.parametrize(("override", "match"), PSCORE_BAD)
def test_compare_propensities_rejects_bad_input(override: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"estimated": np.array([0.5, 0.2]), "logged": np.array([0.4, 0.3])}
    args.update(override)
    with pytest.raises(OPEError, match=match):
        compare_propensities(**args)


def test_floor_probabilities_rejects_impossible_floor() -> None:
    with pytest.raises(OPEError, match=r"propensity_floor == 0.5: must be > 0 and < 1 / n_actions"):
        floor_probabilities(np.full((2, 2), 0.5), 0.5)
    with pytest.raises(OPEError, match="probs: row 1 sums to 0"):
        floor_probabilities(np.array([[1.0, 0.0], [0.0, 0.0]]), 0.1)
    with pytest.raises(OPEError, match="expected finite, non-negative"):
        floor_probabilities(np.array([[1.2, -0.2]]), 0.1)


def test_fitted_models_reject_states_of_the_wrong_width() -> None:
    d = _reward_data()
    res = fit_reward_model(
        d["x"], d["a"], d["r"], d["g"], d["A"], config=RewardModelConfig("ridge")
    )
    with pytest.raises(OPEError, match=r"states: expected shape \(m, 3\)"):
        res.model(np.zeros((4, 2)))
    with pytest.raises(OPEError, match=r"actions: values must be in \[0, 3\)"):
        res.model.predict(d["x"][:2], np.array([0, 3]))


# ------------------------------------------------------------------------------------------
# folds and cross-fitting


def test_episode_folds_keep_episodes_whole_and_balanced() -> None:
    groups = np.repeat(np.array([f"s{i}" for i in range(23)]), 3)[::-1]
    folds = episode_folds(groups, 5, seed=3)
    for g in np.unique(groups):
        assert np.unique(folds[groups == g]).size == 1
    per_fold = np.bincount(folds[::3], minlength=5)
    assert per_fold.max() - per_fold.min() <= 1
    assert np.array_equal(folds, episode_folds(groups, 5, seed=3))
    assert not np.array_equal(folds, episode_folds(groups, 5, seed=4))


def test_cross_fitting_excludes_the_rows_own_episode() -> None:
    """A 1-nearest-neighbour model memorises: it shows whether a row's episode leaked.

    Each episode has one state (repeated over its 4 rows) and its own random reward level, so
    the only way to predict a row's reward is to have seen a sibling row. Cross-fitted by
    episode, the predictions carry no information; folds by row (unique group per row) let the
    sibling leak and the "prediction" matches the reward almost perfectly.
    """
    rng = np.random.default_rng(0)
    n_ep, steps = 300, 4
    state = np.repeat(rng.standard_normal((n_ep, 2)), steps, axis=0)
    level = np.repeat(rng.standard_normal(n_ep), steps)
    a = np.zeros(n_ep * steps, dtype=np.int64)
    r = level + 0.05 * rng.standard_normal(n_ep * steps)
    by_episode = fit_reward_model(
        state, a, r, np.repeat(np.arange(n_ep), steps), 1, estimator=KNeighborsRegressor(1)
    )
    by_row = fit_reward_model(
        state, a, r, np.arange(n_ep * steps), 1, estimator=KNeighborsRegressor(1)
    )
    corr_episode = np.corrcoef(by_episode.q_hat[:, 0], r)[0, 1]
    corr_row = np.corrcoef(by_row.q_hat[:, 0], r)[0, 1]
    assert abs(corr_episode) < 0.15
    assert corr_row > 0.95
    assert by_episode.cv_r2 < 0.0 < 0.9 < by_row.cv_r2
    # the full-data model, by contrast, has seen every episode
    assert np.corrcoef(by_episode.model(state)[:, 0], r)[0, 1] > 0.95


@pytest.mark.parametrize("kind", ["hgb", "ridge"])
def test_reward_model_recovers_expected_reward_of_every_action(kind: str) -> None:
    d = _reward_data()
    res = fit_reward_model(d["x"], d["a"], d["r"], d["g"], d["A"], config=RewardModelConfig(kind))
    assert res.q_hat.shape == (3000, 3)
    assert res.kind == kind
    rmse = np.sqrt(np.mean((res.q_hat - d["q"]) ** 2))
    # noise sd is 0.5 and the truth's sd ~0.6: a model that ignored the state or the action
    # would be off by ~0.4-0.6
    assert rmse < 0.2
    full_rmse = np.sqrt(np.mean((res.model(d["x"]) - d["q"]) ** 2))
    assert full_rmse < 0.2
    assert res.cv_rmse == pytest.approx(0.5, abs=0.08)
    assert 0.3 < res.cv_r2 < 0.7
    logged = res.model.predict(d["x"][:5], d["a"][:5])
    assert np.allclose(logged, res.model(d["x"][:5])[np.arange(5), d["a"][:5]])


def test_ridge_falls_back_to_the_pooled_fit_for_an_unseen_action() -> None:
    d = _reward_data()
    keep = d["a"] != 2
    res = fit_reward_model(
        d["x"][keep], d["a"][keep], d["r"][keep], d["g"][keep], 3, config=RewardModelConfig("ridge")
    )
    # action 2 never logged: its prediction is the pooled model's, finite and in the data range
    col = res.q_hat[:, 2]
    assert np.isfinite(col).all()
    assert d["r"].min() < col.min() and col.max() < d["r"].max()


def test_ridge_does_not_fit_noise() -> None:
    """Pure-noise rewards, 20 actions with ~50 rows each and 10 features: per-action least
    squares would lose ~20% of the variance out of fold; GCV-chosen penalties keep the
    cross-fitted R^2 at about zero."""
    rng = np.random.default_rng(4)
    n = 1000
    x = rng.standard_normal((n, 10))
    res = fit_reward_model(
        x,
        rng.integers(0, 20, n),
        rng.standard_normal(n),
        np.arange(n),
        20,
        config=RewardModelConfig("ridge"),
    )
    assert -0.05 < res.cv_r2 < 0.01


def test_reward_model_subsamples_training_rows_and_is_reproducible() -> None:
    d = _reward_data()
    cfg = RewardModelConfig(kind="hgb", max_train_rows=500, max_iter=20, seed=7)
    one = fit_reward_model(d["x"], d["a"], d["r"], d["g"], d["A"], config=cfg)
    two = fit_reward_model(d["x"], d["a"], d["r"], d["g"], d["A"], config=cfg)
    assert one.n_train_rows == 500
    assert np.array_equal(one.q_hat, two.q_hat)
    other = fit_reward_model(
        d["x"], d["a"], d["r"], d["g"], d["A"], config=RewardModelConfig("hgb", 5, 500, seed=8)
    )
    assert not np.allclose(one.q_hat, other.q_hat)


# ------------------------------------------------------------------------------------------
# behaviour model


def test_floor_is_exact_and_leaves_large_probabilities_in_proportion() -> None:
    p = np.array([[0.0, 0.0005, 0.4, 0.5995], [0.25, 0.25, 0.25, 0.25], [0.009, 0.011, 0.5, 0.48]])
    out = floor_probabilities(p, 0.01)
    assert np.allclose(out.sum(axis=1), 1.0)
    assert out.min() >= 0.01 - 1e-15
    assert out[0, 0] == pytest.approx(0.01) and out[0, 1] == pytest.approx(0.01)
    assert out[0, 2] / out[0, 3] == pytest.approx(0.4 / 0.5995)
    assert np.allclose(out[1], 0.25)
    # the scaled-down 0.011 would drop below the floor on the first pass: floored too
    assert out[2, 1] >= 0.01 - 1e-15


def test_behaviour_model_recovers_a_known_softmax_policy() -> None:
    d = _softmax_policy()
    res = fit_behaviour_model(d["x"], d["a"], d["g"], 4)
    true_ps = d["p"][np.arange(d["a"].size), d["a"]]
    assert res.propensity_source == "estimated"
    assert res.probs.shape == (2400, 4)
    assert np.allclose(res.probs.sum(axis=1), 1.0)
    assert np.median(np.abs(res.pscore / true_ps - 1.0)) < 0.1
    assert res.log_loss < res.baseline_log_loss - 0.3
    assert res.calibration.ece < 0.03
    assert np.allclose(res.calibration.count.sum(), 2400 * 4)
    cmp = compare_propensities(res.pscore, true_ps)
    assert cmp.share_outside_band < 0.05
    assert cmp.corr_log > 0.95
    assert "logged propensities compared" in cmp.summary()
    assert res.warnings == ()
    # the full-data model stands in for the logging policy
    assert np.allclose(res.model.action_probs(d["x"][:3]).sum(axis=1), 1.0)


def test_behaviour_model_flags_a_useless_fit_and_is_reproducible() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((800, 3))
    a = rng.integers(0, 4, 800)  # independent of the state
    g = np.repeat(np.arange(200), 4)
    one = fit_behaviour_model(x, a, g, 4, config=BehaviourModelConfig(seed=5))
    two = fit_behaviour_model(x, a, g, 4, config=BehaviourModelConfig(seed=5))
    assert np.array_equal(one.probs, two.probs)
    assert np.allclose(one.pscore, 0.25, atol=0.1)
    assert any("no better than the marginal" in w for w in one.warnings)


def test_unseen_action_in_a_fold_gets_the_floor_and_is_reported() -> None:
    d = _softmax_policy(n_episodes=100)
    a = d["a"].copy()
    a[d["g"] == 0] = 3
    a[(d["g"] != 0) & (a == 3)] = 0  # action 3 only in episode 0
    res = fit_behaviour_model(
        d["x"], a, d["g"], 4, config=BehaviourModelConfig(propensity_floor=0.02)
    )
    rows = d["g"] == 0
    assert np.allclose(res.pscore[rows], 0.02)
    assert res.share_floored >= rows.mean()


def test_single_action_training_data_gives_floored_constant_policy() -> None:
    x = np.random.default_rng(0).standard_normal((20, 2))
    res = fit_behaviour_model(
        x, np.zeros(20, dtype=np.int64), np.arange(20), 2, config=BehaviourModelConfig(n_folds=2)
    )
    assert np.allclose(res.probs, [[1 - 1e-3, 1e-3]])


def test_calibration_table_separates_calibrated_from_overconfident() -> None:
    d = _softmax_policy(n_episodes=2000)
    good = calibration_table(d["p"], d["a"], 10)
    sharp = d["p"] ** 3
    sharp /= sharp.sum(axis=1, keepdims=True)
    bad = calibration_table(sharp, d["a"], 10)
    assert good.ece < 0.01
    assert bad.ece > 3 * good.ece and bad.max_gap > 0.05
    rows = good.rows()
    assert len(rows) == good.count.size and rows[0]["low"] == 0.0
    assert all(r["low"] <= r["mean_predicted"] <= r["high"] for r in rows)


def test_choose_propensities_never_mixes_sources() -> None:
    d = _softmax_policy(n_episodes=50)
    est = fit_behaviour_model(d["x"], d["a"], d["g"], 4, config=BehaviourModelConfig(n_folds=2))
    logged = d["p"][np.arange(d["a"].size), d["a"]]
    full = choose_propensities(logged, est)
    assert full.source == "logged" and np.array_equal(full.pscore, logged)
    part = logged.copy()
    part[:5] = np.nan
    chosen = choose_propensities(part, est)
    assert chosen.source == "estimated" and chosen.n_missing_logged == 5
    assert np.array_equal(chosen.pscore, est.pscore)
    assert "5 of 200 rows lack a logged propensity" in chosen.reason
    assert choose_propensities(None, est).source == "estimated"
    assert choose_propensities(logged, est, prefer="estimated").source == "estimated"
    with pytest.raises(OPEError, match="logged: 5 rows have none"):
        choose_propensities(part, est, prefer="logged")
    with pytest.raises(OPEError, match="call fit_behaviour_model first"):
        choose_propensities(part, None)
    with pytest.raises(OPEError, match="prefer == 'best'"):
        choose_propensities(logged, est, prefer="best")  # type: ignore[arg-type]
    with pytest.raises(OPEError, match=r"expected logged pscores of shape \(200,\)"):
        choose_propensities(logged[:10], est)
