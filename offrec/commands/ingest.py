"""``offrec ingest``: load raw event logs into the DuckDB warehouse (logic in ``ingest``)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path

import typer

from offrec.config import load_config
from offrec.errors import EXIT_BAD_INPUT, ConfigError
from offrec.runtime import config_option, echo, handle_errors, is_tty

__all__ = ["register", "tty_progress"]


def tty_progress() -> tuple[Callable[[str], None], Callable[[], None]]:
    """A progress line redrawn in place on stderr, and a function that ends it."""
    width = [0]

    def show(message: str) -> None:
        text = message[:200]
        sys.stderr.write("\r" + text + " " * max(0, width[0] - len(text)))
        sys.stderr.flush()
        width[0] = len(text)

    def end() -> None:
        if width[0]:
            sys.stderr.write("\n")
            sys.stderr.flush()

    return show, end


def register(app: typer.Typer) -> None:
    @app.command("ingest")
    @handle_errors
    def ingest(
        config: Path | None = config_option(),
        input_path: str = typer.Option(
            None,
            "--input",
            "-i",
            help="Raw logs: a file, a directory, a glob or a dt=YYYY-MM-DD/ tree "
            "(default: \\[paths] inputs).",
        ),
        date: str = typer.Option(
            None, "--date", help="Ingest only the dt=YYYY-MM-DD partition of the input."
        ),
        warehouse: Path = typer.Option(
            None, "--warehouse", "-w", help="DuckDB warehouse file (default: \\[paths] warehouse)."
        ),
        mapping: str = typer.Option(
            None,
            "--mapping",
            "-m",
            help="Built-in mapping (simulator, retailrocket, open_bandit) or a mapping TOML "
            "(default: \\[ingest] mapping / mapping_file).",
        ),
        check: bool = typer.Option(
            False, "--check", help="Afterwards run the whole-warehouse consistency checks."
        ),
        force: bool = typer.Option(
            False, "--force", help="Reload files even if unchanged (replacing their rows)."
        ),
    ) -> None:
        """Load raw event logs into the warehouse (one transaction per file).

        Unchanged files are skipped, bad rows are kept in rejected_events, a refused file does not stop the others.

        Exit codes: 0 all loaded or unchanged; 2 a file was refused or the config is bad; 4 the warehouse is locked.
        """
        from ingest import IngestError, check_warehouse, ingest_paths

        cfg = load_config(config)
        ingest_cfg = cfg.ingest
        if mapping is not None:
            if mapping.endswith(".toml") or "/" in mapping or Path(mapping).is_file():
                ingest_cfg = dataclasses.replace(ingest_cfg, mapping_file=Path(mapping))
            else:
                try:
                    ingest_cfg = dataclasses.replace(ingest_cfg, mapping=mapping, mapping_file=None)
                except IngestError as exc:
                    raise ConfigError(f"--mapping: {exc}") from None
        inputs = input_path if input_path is not None else cfg.paths.inputs
        target = warehouse if warehouse is not None else cfg.paths.warehouse
        show, end = tty_progress() if is_tty() else (None, lambda: None)
        try:
            report = ingest_paths(
                target, inputs, ingest_cfg, date=date, progress=show, force=force,
                protected=(cfg.paths.datasets, cfg.paths.runs),
            )
        finally:
            end()
        echo(report.format_table())
        echo(f"warehouse: {target}")
        problems = 0
        if check:
            for name, rows in check_warehouse(target).items():
                if rows:
                    problems += 1
                    echo(f"check {name}: {len(rows)} offending row(s), e.g. {rows[0]}", err=True)
            if not problems:
                echo("checks: all passed")
        failed = report.failed_files()
        if failed:
            echo(
                f"offrec: error: {len(failed)} of {len(report.files)} file(s) refused "
                "(see above); the other files were loaded",
                err=True,
            )
        if failed or problems:
            raise typer.Exit(EXIT_BAD_INPUT)
