"""Our obp-compatible estimators reproduce the values obp 0.5.x computed on three cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ope import (
    DirectMethod,
    DoublyRobust,
    DoublyRobustWithShrinkage,
    InverseProbabilityWeighting,
    SelfNormalizedDoublyRobust,
    SelfNormalizedInverseProbabilityWeighting,
    SwitchDoublyRobust,
)

# tests/ope/<this file> -> repo root -> the sibling ``shared`` directory (as in CI)
REFERENCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference"
CASES_FILE = REFERENCE / "obp_estimator_cases.npz"

ESTIMATORS = {
    "ipw": InverseProbabilityWeighting(),
    "ipw_lambda3": InverseProbabilityWeighting(lambda_=3.0),
    "snipw": SelfNormalizedInverseProbabilityWeighting(),
    "dm": DirectMethod(),
    "dr": DoublyRobust(),
    "dr_lambda3": DoublyRobust(lambda_=3.0),
    "sndr": SelfNormalizedDoublyRobust(),
    "switch_dr_lambda3": SwitchDoublyRobust(lambda_=3.0),
    "dr_os_lambda3": DoublyRobustWithShrinkage(lambda_=3.0),
    "dr_os_lambda0": DoublyRobustWithShrinkage(lambda_=0.0),
}
WITHOUT_MODEL = {"ipw", "ipw_lambda3", "snipw"}


@pytest.fixture(scope="module")
def cases() -> dict[str, np.ndarray]:
    if not CASES_FILE.exists():
        pytest.skip(
            f"OBP REFERENCE FILE MISSING: {CASES_FILE} not found; the obp-compatibility check "
            "did not run. Put the shared/ directory beside the repository clone."
        )
    with np.load(CASES_FILE) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("case", [0, 1, 2])
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_matches_obp(cases: dict[str, np.ndarray], case: int, name: str) -> None:
    p = f"case{case}__"
    kwargs = {
        "reward": cases[p + "reward"],
        "action": cases[p + "action"],
        "pscore": cases[p + "pscore"],
        "action_dist": cases[p + "action_dist"],
        "position": cases.get(p + "position"),
    }
    if name not in WITHOUT_MODEL:
        kwargs["estimated_rewards_by_reg_model"] = cases[p + "estimated_rewards_by_reg_model"]
    expected = float(cases[p + "expected__" + name])
    got = ESTIMATORS[name].estimate_policy_value(**kwargs)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-14)
    # the obp-style round kernel averages to the same value
    rounds = ESTIMATORS[name].estimate_round_rewards(**kwargs)
    assert float(np.mean(rounds)) == pytest.approx(expected, rel=1e-12, abs=1e-14)


def test_reference_has_all_cases(cases: dict[str, np.ndarray]) -> None:
    for case in range(3):
        for name in ESTIMATORS:
            assert f"case{case}__expected__{name}" in cases
    assert cases["case2__action_dist"].shape[2] == 3 and "case2__position" in cases
