"""``offrec nightly``: the scheduled batch job."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from offrec.config import load_config
from offrec.errors import ConfigError
from offrec.logs import setup_logging
from offrec.pipeline import STAGES, PipelineOptions, run_pipeline
from offrec.runtime import config_option, handle_errors, is_tty

__all__ = ["register", "nightly_run_id"]


def nightly_run_id(date: str | None) -> str:
    day = date or dt.datetime.now(dt.UTC).date().isoformat()
    return f"nightly-{day}"


def _check_date(date: str | None) -> str | None:
    if date is None:
        return None
    try:
        return dt.date.fromisoformat(date).isoformat()
    except ValueError:
        raise ConfigError(f"--date {date!r}: expected YYYY-MM-DD, e.g. 2026-11-27") from None


def register(app: typer.Typer) -> None:
    @app.command("nightly")
    @handle_errors
    def nightly(
        config: Path | None = config_option(),
        date: str | None = typer.Option(
            None, "--date", help="Night to process (YYYY-MM-DD): ingests that dt= partition and "
            "builds the rolling window ending that day. Default: every new or changed input."),
        resume: bool = typer.Option(
            False, "--resume", help="Continue from the first stage that did not complete."),
        only: list[str] = typer.Option(
            None, "--stage", help=f"Run only these stages ({', '.join(STAGES)}); repeatable."),
        run_id: str | None = typer.Option(
            None, "--run-id", help="Name the run (default: nightly-<date>, today if no --date)."),
        log_format: str = typer.Option(
            "human", "--log-format", help="human (default) or json (JSON lines on stderr)."),
    ) -> None:
        """Ingest -> build -> train -> evaluate -> report, incremental, locked and resumable.

        Exit codes: 0 ok; 2 bad config or input; 3 a data-quality gate failed (report still
        written and marked); 4 another run holds the lock; 1 unexpected error.
        """
        if log_format not in ("human", "json"):
            raise ConfigError(f"--log-format {log_format!r}: use human or json")
        setup_logging(log_format)
        cfg = load_config(config)
        day = _check_date(date)
        stages = tuple(only) if only else STAGES
        unknown = [s for s in stages if s not in STAGES]
        if unknown:
            raise ConfigError(f"--stage {unknown[0]!r}: choose from {', '.join(STAGES)}")
        progress = (lambda m: typer.echo(m, err=True)) if is_tty() else None
        if run_id is not None and (not run_id or "/" in run_id or run_id.startswith(".")):
            raise ConfigError(f"--run-id {run_id!r}: use letters, digits, '-' and '_'")
        opts = PipelineOptions(run_id=run_id or nightly_run_id(day), kind="nightly", date=day,
                               resume=resume, stages=stages, progress=progress)
        outcome = run_pipeline(cfg, opts)
        if outcome.report_path:
            typer.echo(f"report: {outcome.report_path}")
        typer.echo(f"run: {outcome.run_dir} ({outcome.manifest.status})")
        if outcome.exit_code:
            for failure in outcome.gate_failures:
                typer.echo(f"offrec: data-quality gate failed: {failure}", err=True)
            raise typer.Exit(outcome.exit_code)
