"""``offrec train``: train the configured algorithms on a dataset version and save them."""

from __future__ import annotations

from pathlib import Path

import typer

from offrec.config import load_config
from offrec.runtime import config_option, echo, handle_errors, is_tty

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("train")
    @handle_errors
    def train(
        warehouse: Path = typer.Option(
            None, "--warehouse", "-w", help="DuckDB warehouse (default: \\[paths] warehouse)."
        ),
        version: str = typer.Option(
            None, "--version", help="Dataset version to train on (default: the latest build)."
        ),
        run_id: str = typer.Option(
            None, "--run-id", help="Run directory name under \\[paths] runs (default: UTC time)."
        ),
        algo: list[str] = typer.Option(
            None, "--algo", help="Algorithm to train (repeatable; default: \\[train] algorithms)."
        ),
        config: Path | None = config_option(),
    ) -> None:
        """Train offline RL policies (d3rlpy) on the train split; save them under runs/<run_id>/."""
        from offline_rl.progress import EpochLog, ProgressBar
        from offline_rl.run import format_models_table, select_algorithms, train_from_warehouse

        cfg = load_config(config)
        train_cfg = select_algorithms(cfg.train, algo)
        progress = ProgressBar() if is_tty() else EpochLog()
        run = train_from_warehouse(
            warehouse or cfg.paths.warehouse,
            train_cfg,
            cfg.paths.runs,
            version=version,
            run_id=run_id,
            progress=progress,
        )
        echo(format_models_table(run))
