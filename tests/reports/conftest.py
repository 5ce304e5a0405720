"""Fixtures for the report tests: a realistic run directory factory and the browser check."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HERE = Path(__file__).parent
ARTIFACTS = HERE.parents[1] / "test-artifacts" / "reports"


def _load(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


fixture_mod = _load("reports_fixture")
cdp_mod = _load("reports_cdp")


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    d = tmp_path / "runs"
    d.mkdir()
    return d


@pytest.fixture
def make_run(runs_dir: Path) -> Callable[..., Path]:
    """``make_run(**RunSpec fields)`` writes a complete run under ``runs_dir``."""

    def factory(**overrides: Any) -> Path:
        return fixture_mod.make_run(runs_dir, **overrides)

    return factory


@pytest.fixture(scope="session")
def fixture_module() -> ModuleType:
    return fixture_mod


@pytest.fixture(scope="session")
def cdp() -> ModuleType:
    return cdp_mod


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
