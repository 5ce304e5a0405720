"""Read the packaged ``.sql`` files and run them with bound parameters.

Every file holds one statement. Values are always bound (``$name`` parameters); identifiers that
come from config go through :func:`quote_ident`, which validates and double-quotes them.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

import duckdb

from sql.errors import BuildError

__all__ = ["read_sql", "run_sql", "quote_ident", "list_sql", "sql_params"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PARAM = re.compile(r"(?<![$\w])\$([A-Za-z_][A-Za-z0-9_]*)")


@cache
def read_sql(name: str) -> str:
    """The text of ``sql/<name>`` (e.g. ``"int_decisions.sql"`` or ``"checks/x.sql"``)."""
    path = resources.files("sql").joinpath(name)
    if not path.is_file():
        raise BuildError(f"no SQL file sql/{name} in the installed package")
    return path.read_text(encoding="utf-8")


def list_sql(folder: str = "") -> list[str]:
    """Names of the ``.sql`` files in ``sql/`` (or a sub-folder), sorted."""
    base = resources.files("sql")
    if folder:
        base = base.joinpath(folder)
    prefix = f"{folder}/" if folder else ""
    return sorted(prefix + p.name for p in base.iterdir() if p.name.endswith(".sql"))


def sql_params(text: str) -> set[str]:
    """The ``$parameters`` a statement uses (comments stripped)."""
    body = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
    return set(_PARAM.findall(body))


def quote_ident(name: str) -> str:
    """Validate an identifier from config and return it double-quoted."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise BuildError(
            f"invalid SQL identifier {name!r}: use letters, digits and underscores, "
            "starting with a letter or underscore"
        )
    return f'"{name}"'


def run_sql(
    con: duckdb.DuckDBPyConnection,
    name: str,
    params: dict[str, Any] | None = None,
    **identifiers: str,
) -> duckdb.DuckDBPyConnection:
    """Execute ``sql/<name>`` binding exactly the parameters it declares.

    ``identifiers`` fill ``{placeholders}`` for table names only (validated, quoted); values
    never go through string formatting.
    """
    text = read_sql(name)
    if identifiers:
        text = text.format(**{k: quote_ident(v) for k, v in identifiers.items()})
    needed = sql_params(text)
    given = dict(params or {})
    missing = needed - given.keys()
    if missing:
        raise BuildError(f"sql/{name} needs parameters {sorted(missing)}; got {sorted(given)}")
    bound = {k: v for k, v in given.items() if k in needed}
    return con.execute(text, bound) if bound else con.execute(text)
