"""offrec.toml parsing: defaults, round trip, and a table of bad configs -> messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from offrec.config import (
    OffrecConfig,
    config_hash,
    config_to_toml,
    load_config,
    parse_config,
)
from offrec.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "offrec.toml"
    p.write_text(text)
    return p


def test_defaults_without_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None)
    assert isinstance(cfg, OffrecConfig)
    assert cfg.source is None
    assert cfg.paths.warehouse == tmp_path / "warehouse.duckdb"


def test_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    sub = tmp_path / "proj"
    sub.mkdir()
    p = write(sub, '[paths]\nwarehouse = "wh/w.duckdb"\nruns = "/abs/runs"\n')
    cfg = load_config(p)
    assert cfg.paths.warehouse == sub / "wh" / "w.duckdb"
    assert cfg.paths.runs == Path("/abs/runs")
    assert cfg.paths.datasets == sub / "datasets"  # defaults resolved too


def test_init_output_round_trips(tmp_path: Path) -> None:
    text = config_to_toml(OffrecConfig(), with_help=True)
    p = write(tmp_path, text)
    cfg = load_config(p)
    assert config_hash(cfg) == config_hash(parse_config({}, base_dir=tmp_path))


def test_config_hash_changes_with_values(tmp_path: Path) -> None:
    a = parse_config({}, base_dir=tmp_path)
    b = parse_config({"build": {"top_n": 7}}, base_dir=tmp_path)
    assert config_hash(a) != config_hash(b)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[bogus]\nx = 1\n", r"unknown key bogus; accepted keys in top level: .*build"),
        ("[build]\ntop_nn = 3\n", r"unknown key \[build\] top_nn; accepted keys in \[build\]:"),
        ("[build]\ntop_n = -1\n", r"\[build\] top_n = -1: must be >= 1"),
        ("[build]\ntop_n = 2.5\n", r"\[build\] top_n = 2.5: must be a whole number"),
        ("[build]\ntop_n = true\n", r"\[build\] top_n = True: must be a whole number"),
        ("[build]\nmode = \"bandit\"\n", r"\[build\] mode = \"bandit\": must be one of \"logged\""),
        ("[evaluate]\nalpha = 1.5\n", r"\[evaluate\] alpha = 1.5: must be > 0 and < 1"),
        ("[paths]\nwarehouse = 3\n", r"\[paths\] warehouse = 3: must be a path string"),
        ("build = 3\n", r"\[build\] must be a table"),
        ("[build\n", r"not valid TOML"),
    ],
)
def test_bad_configs_name_file_key_and_fix(tmp_path: Path, text: str, message: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(p)
    assert str(p) in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found; create one with"):
        load_config(tmp_path / "nope.toml")


def test_config_is_frozen(tmp_path: Path) -> None:
    cfg = parse_config({}, base_dir=tmp_path)
    with pytest.raises(AttributeError):
        cfg.build = None  # type: ignore[misc]


def test_examples_offrec_toml_is_the_current_init_output(tmp_path: Path) -> None:
    """examples/offrec.toml documents every key: regenerate with `offrec config init`."""
    from typer.testing import CliRunner

    from offrec.cli import app

    target = tmp_path / "offrec.toml"
    result = CliRunner().invoke(app, ["config", "init", str(target)])
    assert result.exit_code == 0
    example = Path(__file__).parents[2] / "examples" / "offrec.toml"
    assert example.read_text() == target.read_text(), (
        "examples/offrec.toml is stale: run `offrec config init examples/offrec.toml --force`"
    )
    load_config(example)  # and it parses
