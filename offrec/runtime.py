"""Process-wide CLI state and helpers shared by every command."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import typer

from offrec.errors import EXIT_UNEXPECTED, user_error_types

__all__ = ["STATE", "handle_errors", "quiet_imports", "silenced", "echo", "is_tty"]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class _State:
    debug: bool = False


STATE = _State()


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """Swallow stdout/stderr noise (gym's deprecation banner printed when d3rlpy imports)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            yield


def quiet_imports() -> None:
    """Import d3rlpy (and through it gym) once, silently, so nothing prints later."""
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    with silenced():
        try:
            import d3rlpy  # noqa: F401
        except ImportError:
            pass


def is_tty() -> bool:
    return sys.stderr.isatty()


def echo(message: str, *, err: bool = False) -> None:
    typer.echo(message, err=err)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorate a command: user errors -> message + their exit code; others -> exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except user_error_types() as exc:
            typer.echo(f"offrec: error: {exc}", err=True)
            if STATE.debug:
                traceback.print_exc()
            raise typer.Exit(getattr(exc, "exit_code", 2)) from None
        except KeyboardInterrupt:
            typer.echo("offrec: interrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001
            typer.echo(f"offrec: unexpected error ({type(exc).__name__}): {exc}", err=True)
            if STATE.debug:
                traceback.print_exc()
            else:
                typer.echo("offrec: run again with --debug for the traceback", err=True)
            raise typer.Exit(EXIT_UNEXPECTED) from None

    return wrapper


def config_option() -> Any:
    return typer.Option(
        None, "--config", "-c", help="offrec.toml to use (default: ./offrec.toml if present)."
    )
