"""``offrec pseudonym ID...``: the pseudonym ingest stores for raw ids (logic in ``ingest``)."""

from __future__ import annotations

from pathlib import Path

import typer

from offrec.config import load_config
from offrec.runtime import config_option, echo, handle_errors

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("pseudonym")
    @handle_errors
    def pseudonym(
        ids: list[str] = typer.Argument(..., help="Raw ids (e.g. user ids) to pseudonymise."),
        config: Path | None = config_option(),
    ) -> None:
        """Print each raw id and its pseudonym under \\[ingest] pseudonymise's key, tab-separated.

        Finds one user's rows in a pseudonymised warehouse (e.g. for a data-subject request): SELECT * FROM events WHERE user_id = '<pseudonym>'. The key is read as ingest reads it (pseudonym_key_file, else the pseudonym_key_env variable).

        Exit 2: pseudonymise is empty, or the key is missing or too short.
        """
        from ingest import pseudonymise_ids

        cfg = load_config(config)
        for raw, pseudo in zip(ids, pseudonymise_ids(ids, cfg.ingest), strict=True):
            echo(f"{raw}\t{pseudo}")
