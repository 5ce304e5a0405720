"""The CLI shell in-process: help everywhere, config commands, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from offrec.cli import app

runner = CliRunner()


def command_names() -> list[str]:
    import typer.main

    group = typer.main.get_command(app)
    return sorted(group.commands)  # type: ignore[attr-defined]


def test_root_help() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "Offline counterfactual evaluation" in result.output


@pytest.mark.parametrize("name", command_names())
def test_every_subcommand_has_help(name: str) -> None:
    result = runner.invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_config_init_then_show(tmp_path: Path) -> None:
    target = tmp_path / "offrec.toml"
    result = runner.invoke(app, ["config", "init", str(target)])
    assert result.exit_code == 0, result.output
    assert target.exists()
    again = runner.invoke(app, ["config", "init", str(target)])
    assert again.exit_code == 2
    assert "already exists; pass --force" in again.output
    shown = runner.invoke(app, ["config", "show", "--config", str(target)])
    assert shown.exit_code == 0
    assert "[build]" in shown.output and "top_n = 50" in shown.output


def test_bad_config_exits_2_without_traceback(tmp_path: Path) -> None:
    target = tmp_path / "offrec.toml"
    target.write_text("[build]\ntop_n = 0\n")
    result = runner.invoke(app, ["config", "show", "-c", str(target)])
    assert result.exit_code == 2
    assert "[build] top_n = 0: must be >= 1" in result.output
    assert "Traceback" not in result.output


def test_python_dash_m_and_quiet_import() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "offrec", "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0
    assert "Usage" in out.stdout
    assert out.stderr == "", out.stderr


@pytest.mark.parametrize("package", ["ingest", "sql", "offline_rl", "ope", "reports", "offrec"])
def test_importing_a_package_prints_nothing(package: str) -> None:
    code = f"import {package}, pkgutil, importlib\n" \
           f"for m in pkgutil.walk_packages({package}.__path__, '{package}.'):\n" \
           f"    importlib.import_module(m.name)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and out.stderr == "", (out.stdout, out.stderr)
