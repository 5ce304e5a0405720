"""``offrec build``: turn the warehouse's events into a versioned RL dataset (logic in ``sql``)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import typer

from offrec.config import load_config
from offrec.errors import ConfigError, GateFailedError, LockedError
from offrec.runtime import config_option, echo, handle_errors, is_tty

__all__ = ["register"]


def _progress(message: str) -> None:
    sys.stderr.write(f"offrec build: {message}\n")
    sys.stderr.flush()


def register(app: typer.Typer) -> None:
    @app.command("build")
    @handle_errors
    def build(
        config: Path | None = config_option(),
        warehouse: Path = typer.Option(
            None, "--warehouse", "-w", help="DuckDB warehouse file (default: \\[paths] warehouse)."
        ),
        datasets: Path = typer.Option(
            None, "--datasets", help="Where Parquet copies go (default: \\[paths] datasets)."
        ),
        start_date: str = typer.Option(
            None,
            "--start-date",
            help="Only sessions starting at/after this UTC date (default: \\[build] start_date).",
        ),
        end_date: str = typer.Option(
            None,
            "--end-date",
            help="Ignore events at/after this UTC date (default: \\[build] end_date).",
        ),
        json_out: Path = typer.Option(
            None, "--json", help="Also write the build summary as JSON to this file."
        ),
    ) -> None:
        """Build (state, action, reward, next_state) datasets from the warehouse events.

        Writes the tables transitions, episodes, actions, item_actions, feature_spec and
        dataset_versions (keyed by the printed version id) and Parquet copies under
        datasets/<version>/, then prints the summary. Re-running with the same config and
        events replaces that version. Exit codes: 0 built; 2 bad config or input; 3 a
        data-quality gate failed (nothing kept); 4 the warehouse is in use.
        """
        from sql.build import build_dataset
        from sql.errors import BuildError, GateFailed, WarehouseBusy
        from sql.summary import format_summary

        cfg = load_config(config)
        build_cfg = cfg.build
        overrides = {k: v for k, v in (("start_date", start_date), ("end_date", end_date)) if v}
        if overrides:
            try:
                build_cfg = dataclasses.replace(build_cfg, **overrides)
            except BuildError as exc:
                flag = "--" + next(iter(overrides)).replace("_", "-")
                raise ConfigError(f"{flag}: {exc}") from None
        wh = warehouse or cfg.paths.warehouse
        out = datasets or cfg.paths.datasets
        try:
            result = build_dataset(
                wh, build_cfg, datasets_dir=out, progress=_progress if is_tty() else None
            )
        except GateFailed as exc:
            raise GateFailedError(str(exc)) from None
        except WarehouseBusy as exc:
            raise LockedError(str(exc)) from None
        echo(format_summary(result.summary))
        echo(
            f"dataset version: {result.version}"
            + (" (replaced the earlier build of this version)" if result.replaced else "")
        )
        echo(f"parquet: {result.parquet_dir}")
        if json_out is not None:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(result.summary, indent=2, sort_keys=True, default=str))
            echo(f"wrote {json_out}")
