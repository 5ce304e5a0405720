"""``offrec evaluate``: off-policy evaluation of a run's models and baselines."""

from __future__ import annotations

from pathlib import Path

import typer

from offrec.config import load_config
from offrec.errors import OffrecError
from offrec.logs import setup_logging
from offrec.runtime import config_option, handle_errors, is_tty

__all__ = ["register", "latest_run_with_models", "format_headline_table"]


def latest_run_with_models(runs_dir: Path) -> Path:
    """The newest ``runs/<run_id>/`` that holds trained models."""
    candidates = [d for d in runs_dir.glob("*/models") if d.is_dir() and any(d.iterdir())]
    if not candidates:
        raise OffrecError(f"{runs_dir}: no run with trained models; run `offrec train` first")
    return max(candidates, key=lambda d: d.stat().st_mtime).parent


def format_headline_table(table, estimators: tuple[str, ...] = ("dr", "fqe")) -> str:  # noqa: ANN001
    """Policy x headline estimator on the combined reward: value [low, high], lift."""
    rows = table[(table["objective"] == "reward") & table["estimator"].isin(estimators)]
    lines = [f"{'policy':<16} {'estimator':<10} {'value':>10} {'interval':>24} {'lift':>10}"
             f" {'lift interval':>24}"]
    for r in rows.sort_values(["estimator", "policy"]).itertuples():
        lines.append(
            f"{r.policy:<16} {r.estimator:<10} {r.value:>10.4f} "
            f"{f'[{r.low:.4f}, {r.high:.4f}]':>24} {r.lift:>10.4f} "
            f"{f'[{r.lift_low:.4f}, {r.lift_high:.4f}]':>24}")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    @handle_errors
    def evaluate(
        config: Path | None = config_option(),
        run: str | None = typer.Option(
            None, "--run", help="Run id under [paths] runs (default: newest run with models)."),
        version: str | None = typer.Option(
            None, "--version", help="Dataset version (default: the latest build)."),
    ) -> None:
        """Estimate every trained policy's value and lift over the logged behaviour.

        Writes runs/<run_id>/evaluation/ope_results.parquet and summary.json, and the
        warehouse table ope_results; prints the headline estimates and the verdict.
        Also writes explain.json (what changes if a policy ships) and segments.parquet
        (new vs returning users; warehouse table ope_segment_results) and prints a line
        per policy about both.
        """
        from offrec.evaluation import evaluate_run, format_changes

        setup_logging("human")
        cfg = load_config(config)
        run_dir = cfg.paths.runs / run if run else latest_run_with_models(cfg.paths.runs)
        if not run_dir.is_dir():
            raise OffrecError(f"{run_dir}: no such run directory; see `ls {cfg.paths.runs}`")
        progress = (lambda m: typer.echo(m, err=True)) if is_tty() else None
        result = evaluate_run(cfg, run_dir, version=version, progress=progress)
        typer.echo(format_headline_table(result.table))
        verdict = result.summary["verdict"]
        typer.echo("\n" + format_changes(result.explanation, result.segments))
        typer.echo(f"\nverdict: {verdict.get('decision')}: {verdict.get('headline')}")
        typer.echo(f"results: {result.out_dir / 'ope_results.parquet'}")
