"""``offrec bench <stage>``: ours vs the baseline, side by side in one run."""

from __future__ import annotations

import importlib
import pkgutil
import tempfile
from pathlib import Path

import typer

import offrec.benches
from offrec.bench import BenchOptions, format_results, results_to_json, run_suite
from offrec.errors import OffrecError
from offrec.runtime import handle_errors, is_tty

__all__ = ["register", "available_stages"]


def available_stages() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(offrec.benches.__path__))


def register(app: typer.Typer) -> None:
    @app.command("bench")
    @handle_errors
    def bench(
        stage: str = typer.Argument(..., help="Stage to benchmark: " + ", ".join(available_stages())),
        repeat: int = typer.Option(3, "--repeat", min=1, help="Repetitions per contender."),
        scale: float = typer.Option(1.0, "--scale", min=0.0001, help="Multiply the default size."),
        seed: int = typer.Option(0, "--seed", help="Seed for generated inputs."),
        workdir: Path = typer.Option(None, "--workdir", help="Scratch directory (default: a temp dir)."),
        json_out: Path = typer.Option(None, "--json", help="Also write the results as JSON here."),
    ) -> None:
        """Run our implementation and the baseline in one process; print medians and ratios."""
        stages = available_stages()
        if stage not in stages:
            raise OffrecError(f"unknown bench stage {stage!r}; choose one of: {', '.join(stages)}")
        module = importlib.import_module(f"offrec.benches.{stage}")
        scratch = workdir or Path(tempfile.mkdtemp(prefix=f"offrec-bench-{stage}-"))
        scratch.mkdir(parents=True, exist_ok=True)
        opts = BenchOptions(repeat=repeat, scale=scale, seed=seed, workdir=scratch)
        suite = module.suite(opts)
        progress = (lambda msg: typer.echo(msg, err=True)) if is_tty() else None
        results = run_suite(suite, opts, progress)
        typer.echo(format_results(stage, results, suite.notes))
        if json_out is not None:
            json_out.write_text(results_to_json(stage, opts, results))
            typer.echo(f"wrote {json_out}")
