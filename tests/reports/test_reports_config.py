"""``[report]`` in offrec.toml: defaults, parsing and bad values."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from offrec.config import parse_config
from offrec.errors import ConfigError
from reports.config import ReportConfig


def _parse(text: str):  # noqa: ANN202
    return parse_config(tomllib.loads(text), base_dir=Path("."), source=Path("offrec.toml")).report


def test_defaults_and_values() -> None:
    assert _parse("") == ReportConfig()
    cfg = _parse(
        '[report]\nprimary_estimator = "ipw"\nagreement_estimators = ["dr", "fqe", "sndr"]\n'
        "max_weight = 50\nrequire_sign_agreement = false\nhistory_runs = 5\n"
    )
    assert cfg.primary_estimator == "ipw" and cfg.max_weight == 50.0
    assert cfg.agreement_estimators == ("dr", "fqe", "sndr") and cfg.history_runs == 5
    # one agreement estimator is fine when agreement is not required
    assert _parse("[report]\nrequire_sign_agreement = false\nagreement_estimators = []\n")


BAD = [
    ("min_ess_share = 2", r"\[report\] min_ess_share = 2: must be >= 0 and <= 1"),
    ("max_weight = 0.5", r"\[report\] max_weight = 0.5: must be >= 1"),
    ("max_unsupported_mass = -0.1", r"\[report\] max_unsupported_mass = -0.1: must be >= 0"),
    ("history_runs = 0", r"\[report\] history_runs = 0: must be >= 1"),
    ('primary_estimator = " "', r"\[report\]: primary_estimator = ' ': must not be empty"),
    (
        'agreement_estimators = ["dr"]',
        r"\[report\]: agreement_estimators = \['dr'\]: name at least two",
    ),
    ('agreement_estimators = "dr"', r"\[report\] agreement_estimators = \"dr\": must be a list"),
    ("require_sign_agreement = 1", r"\[report\] require_sign_agreement = 1: must be true or false"),
    ("max_wieght = 3", r"unknown key \[report\] max_wieght"),
]


@pytest.mark.parametrize("line, message", BAD)
def test_bad_report_config(line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"offrec.toml: {message}"):
        _parse(f"[report]\n{line}\n")
