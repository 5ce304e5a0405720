"""``offrec simulate``: write simulated raw event logs (defaults from ``[simulate]``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import typer

from offrec.config import load_config
from offrec.errors import ConfigError
from offrec.runtime import config_option, echo, handle_errors, is_tty

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    @handle_errors
    def simulate(
        out: Path = typer.Option(
            None, "--out", "-o", help="Output directory (default: \\[paths] inputs)."
        ),
        sessions: int = typer.Option(
            None,
            "--sessions",
            "-n",
            help="Sessions to simulate (default: \\[simulate] n_sessions).",
        ),
        seed: int = typer.Option(None, "--seed", help="Session seed (default: \\[simulate] seed)."),
        fmt: str = typer.Option(
            None, "--format", help="parquet, csv or jsonl (default: \\[simulate] format)."
        ),
        compress: str = typer.Option(
            None, "--compress", help="none or gzip (default: \\[simulate] compress)."
        ),
        partition_by_date: bool = typer.Option(
            None,
            "--partition-by-date/--no-partition-by-date",
            help="Write dt=YYYY-MM-DD/part-0.<ext> per event date.",
            show_default=False,
        ),
        drop_session_id: bool = typer.Option(
            None,
            "--drop-session-id/--keep-session-id",
            help="Omit session_id (ingest re-sessionises).",
            show_default=False,
        ),
        drop_propensity: bool = typer.Option(
            None,
            "--drop-propensity/--keep-propensity",
            help="Omit the logged propensity.",
            show_default=False,
        ),
        overwrite: bool = typer.Option(
            False, "--overwrite", help="Replace a previous simulation in --out."
        ),
        config: Path | None = config_option(),
    ) -> None:
        """Simulate e-commerce sessions of the logging policy and write raw event logs."""
        from offrec.simulator.generate import write_logs

        cfg = load_config(config)
        overrides: dict[str, tuple[str, Any]] = {
            "n_sessions": ("--sessions", sessions),
            "seed": ("--seed", seed),
            "format": ("--format", fmt),
            "compress": ("--compress", compress),
            "partition_by_date": ("--partition-by-date", partition_by_date),
            "drop_session_id": ("--drop-session-id", drop_session_id),
            "drop_propensity": ("--drop-propensity", drop_propensity),
        }
        sim = cfg.simulate
        for name, (flag, value) in overrides.items():
            if value is None:
                continue
            try:
                sim = dataclasses.replace(sim, **{name: value})
            except ValueError as exc:
                raise ConfigError(f"{flag} {value}: {exc}") from None
        target = out if out is not None else cfg.paths.inputs
        progress = (lambda msg: echo(msg, err=True)) if is_tty() else None
        summary = write_logs(target, sim, overwrite=overwrite, progress=progress)
        for line in summary.lines():
            echo(line)
