"""``offrec config show|init``."""

from __future__ import annotations

from pathlib import Path

import typer

from offrec.config import OffrecConfig, config_to_toml, load_config
from offrec.errors import ConfigError
from offrec.runtime import config_option, handle_errors

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Show or create the offrec.toml config file.", no_args_is_help=True)

    @group.command("show")
    @handle_errors
    def show(config: Path | None = config_option()) -> None:
        """Print the effective config (defaults filled in, paths resolved) as TOML."""
        typer.echo(config_to_toml(load_config(config)), nl=False)

    @group.command("init")
    @handle_errors
    def init(
        path: Path = typer.Argument(Path("offrec.toml"), help="Where to write the example."),
        force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
    ) -> None:
        """Write a commented example config with every key at its default."""
        if path.exists() and not force:
            raise ConfigError(f"{path}: already exists; pass --force to overwrite it")
        text = "# offrec configuration. Every key is optional; shown at its default.\n"
        text += "# Relative paths are relative to this file.\n\n"
        text += config_to_toml(OffrecConfig(), with_help=True)
        path.write_text(text)
        typer.echo(f"wrote {path}")

    app.add_typer(group, name="config")
