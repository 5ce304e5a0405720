"""``offrec report [--run RUN_ID | --all]``: render stored results as self-contained HTML."""

from __future__ import annotations

from pathlib import Path

import typer

from offrec.config import load_config
from offrec.errors import ConfigError
from offrec.runtime import config_option, handle_errors

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("report")
    @handle_errors
    def report(
        config: Path | None = config_option(),
        run: str | None = typer.Option(
            None,
            "--run",
            help="Run id: a directory name in the runs directory. Default: the newest run.",
        ),
        all_runs: bool = typer.Option(False, "--all", help="Render every run's report."),
    ) -> None:
        """Write runs/<run_id>/report.html and runs/index.html; print their paths.

        Exit 2: missing or malformed results (names the file and the command that writes it).

        Exit 1: a file could not be written (names the path; earlier files stay intact).
        """
        if run is not None and all_runs:
            raise ConfigError("--run and --all: give one of them, not both")
        cfg = load_config(config)
        from reports.errors import ReportError
        from reports.render import generate_reports

        out = generate_reports(cfg.paths.runs, cfg.report, run_id=run, all_runs=all_runs)
        for path in out.reports:
            typer.echo(str(path))
        typer.echo(str(out.index))
        if out.failures:
            for run_id, message in out.failures:
                typer.echo(f"offrec: error: run {run_id}: {message}", err=True)
            total = len(out.failures) + len(out.reports)
            raise ReportError(
                f"{len(out.failures)} of {total} runs could not be rendered (see above); the "
                "others and the index were written"
            )
