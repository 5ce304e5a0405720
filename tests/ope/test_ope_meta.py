"""The runners return one tidy row per estimator, computed on shared resamples."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ope import (
    DirectMethod,
    DoublyRobust,
    EvaluateConfig,
    InverseProbabilityWeighting,
    LoggedPolicyValue,
    OffPolicyEvaluation,
    OPEError,
    PerDecisionImportanceSampling,
    SelfNormalizedInverseProbabilityWeighting,
    SequentialOffPolicyEvaluation,
    WeightedDoublyRobust,
    compare,
    estimate_interval,
    estimators_from_config,
    make_bandit_estimator,
)
from ope.meta import DIAGNOSTIC_COLUMNS, LIFT_COLUMNS, RESULT_COLUMNS


def _bandit(seed: int = 0, n_sessions: int = 200) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 4, size=n_sessions)
    ids = np.repeat(np.arange(n_sessions), lengths)
    n, k = ids.size, 5
    action = rng.integers(0, k, size=n)
    return {
        "reward": rng.binomial(1, 0.3, size=n).astype(float),
        "action": action,
        "pscore": np.full(n, 1 / k),
        "action_dist": rng.dirichlet(np.ones(k), size=n),
        "estimated_rewards_by_reg_model": rng.uniform(0.2, 0.4, size=(n, k)),
        "episode_ids": ids,
    }


ESTIMATORS = (
    InverseProbabilityWeighting(),
    SelfNormalizedInverseProbabilityWeighting(),
    DirectMethod(),
    DoublyRobust(),
)


def test_bandit_summary_table() -> None:
    data = _bandit()
    ope = OffPolicyEvaluation(ESTIMATORS)
    table = ope.summarize(**data, n_bootstrap=200, random_state=3, support_mask=np.ones(5, bool))
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == [*RESULT_COLUMNS, *LIFT_COLUMNS, *DIAGNOSTIC_COLUMNS]
    assert list(table["estimator"]) == ["ipw", "snipw", "dm", "dr"]
    ids = data.pop("episode_ids")
    values = ope.estimate_policy_values(**data)
    for est in ESTIMATORS:
        row = table.set_index("estimator").loc[est.estimator_name]
        assert row["value"] == pytest.approx(values[est.estimator_name])
        # same numbers as the single-estimator API with the same seed
        kernel = est.kernel(**data)
        iv = estimate_interval(kernel, ids, n_bootstrap=200, random_state=3)
        assert (row["low"], row["high"]) == pytest.approx((iv.low, iv.high))
        c = compare(
            kernel, LoggedPolicyValue().kernel(**data), ids, n_bootstrap=200, random_state=3
        )
        assert (row["lift"], row["lift_low"], row["lift_high"]) == pytest.approx(
            (c.difference.point, c.difference.low, c.difference.high)
        )
        assert row["rel_lift"] == pytest.approx(c.relative_lift.point)
    assert table["baseline_value"].iloc[0] == pytest.approx(data["reward"].mean())
    assert table["n_decisions"].iloc[0] == data["reward"].shape[0]
    assert table["n_episodes"].iloc[0] == 200
    assert table["unsupported_mass"].iloc[0] == 0.0
    assert table["interval_method"].iloc[0] == "percentile"
    assert table["n_bootstrap"].iloc[0] == 200
    assert np.isfinite(table["disagreement"]).all()


def test_bandit_summary_without_baseline_and_normal() -> None:
    data = _bandit(1)
    table = OffPolicyEvaluation(ESTIMATORS).summarize(
        **data, method="normal", compare_to_logged=False
    )
    assert "lift" not in table.columns
    assert (table["n_bootstrap"] == 0).all()
    assert math.isnan(table["unsupported_mass"].iloc[0])
    assert (table["low"] < table["value"]).all() and (table["value"] < table["high"]).all()


def _sessions(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 6, size=150)
    ids = np.repeat(np.arange(150), lengths)
    steps = np.concatenate([np.arange(k) for k in lengths])
    n = ids.size
    return {
        "reward": rng.normal(1.0, 1.0, size=n),
        "episode_ids": ids,
        "steps": steps,
        "pscore": np.full(n, 0.5),
        "target_prob": rng.choice([0.25, 0.75], size=n),
        "q_hat": np.full(n, 1.0),
        "v_hat": np.full(n, 1.0),
    }


def test_sequential_summary_table() -> None:
    data = _sessions()
    ests = (PerDecisionImportanceSampling(0.9), WeightedDoublyRobust(0.9))
    table = SequentialOffPolicyEvaluation(ests).summarize(**data, n_bootstrap=100, random_state=0)
    assert list(table["estimator"]) == ["pdis", "wdr"]
    for est in ests:
        row = table.set_index("estimator").loc[est.estimator_name]
        assert row["value"] == pytest.approx(est.estimate_policy_value(**data))
    assert table["n_episodes"].iloc[0] == 150
    assert table["n_decisions"].iloc[0] == data["reward"].shape[0]
    assert table["baseline_value"].iloc[0] == pytest.approx(
        np.sum(data["reward"] * 0.9 ** data["steps"]) / 150
    )


def test_estimators_from_config() -> None:
    cfg = EvaluateConfig(
        estimators=("ipw", "switch-dr", "dr-os"),
        sequential_estimators=("wdr",),
        gamma=0.8,
        clip_lambda=50.0,
        switch_lambda=7.0,
        shrinkage_lambda=3.0,
    )
    bandit, seq = estimators_from_config(cfg)
    assert [e.estimator_name for e in bandit] == ["ipw", "switch-dr", "dr-os"]
    assert [e.lambda_ for e in bandit] == [50.0, 7.0, 3.0]  # type: ignore[attr-defined]
    assert seq[0].estimator_name == "wdr" and seq[0].gamma == 0.8
    with pytest.raises(OPEError, match="unknown bandit estimator 'bogus'"):
        make_bandit_estimator("bogus")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"estimators": ("ipw", "magic")}, r"estimators = \['ipw', 'magic'\]: unknown 'magic'"),
        ({"estimators": ("ipw", "ipw")}, "lists an estimator twice"),
        ({"estimators": (), "sequential_estimators": ()}, "both empty"),
    ],
)
def test_evaluate_config_validation(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(OPEError, match=match):
        EvaluateConfig(**kwargs)  # type: ignore[arg-type]


def test_evaluate_config_from_toml(tmp_path: object) -> None:
    from pathlib import Path

    from offrec.config import load_config
    from offrec.errors import ConfigError

    path = Path(str(tmp_path)) / "offrec.toml"
    path.write_text(
        '[evaluate]\ninterval_method = "normal"\nestimators = ["dr", "sndr"]\n'
        "clip_lambda = inf\ngamma = 0.95\n"
    )
    cfg = load_config(path).evaluate
    assert cfg.interval_method == "normal" and cfg.estimators == ("dr", "sndr")
    assert cfg.clip_lambda == math.inf and cfg.gamma == 0.95
    path.write_text('[evaluate]\nestimators = ["dr", "nope"]\n')
    with pytest.raises(ConfigError, match=r"estimators\[1\] = \"nope\": must be one of"):
        load_config(path)
    path.write_text("[evaluate]\ngamma = 1.5\n")
    with pytest.raises(ConfigError, match="gamma = 1.5: must be >= 0 and <= 1"):
        load_config(path)
