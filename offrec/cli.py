"""The ``offrec`` command: parses arguments, calls the library, maps errors to exit codes.

Each subcommand lives in ``offrec/commands/<name>.py`` with a ``register(app)`` function; this
module only assembles them and runs the app. Business logic stays out of command functions.
"""

from __future__ import annotations

import importlib
import sys

import typer

from offrec.errors import EXIT_UNEXPECTED
from offrec.runtime import STATE, quiet_imports

__all__ = ["app", "main", "COMMAND_MODULES"]

COMMAND_MODULES = (
    "config", "simulate", "ingest", "build", "train", "evaluate", "report", "nightly", "demo",
    "bench", "pseudonym",
)

app = typer.Typer(
    name="offrec",
    help="Offline counterfactual evaluation and batch RL for e-commerce recommendation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for unexpected errors."),
) -> None:
    STATE.debug = debug


for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"offrec.commands.{_name}")
    except ModuleNotFoundError as exc:  # a stage not written yet is simply absent
        if exc.name != f"offrec.commands.{_name}":
            raise
        continue
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    quiet_imports()
    try:
        app(standalone_mode=True)
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - last-resort guard; commands map known errors
        typer.echo(f"offrec: unexpected error: {exc}", err=True)
        sys.exit(EXIT_UNEXPECTED)
