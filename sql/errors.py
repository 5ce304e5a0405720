"""Errors raised by the dataset build."""

from __future__ import annotations

from typing import Any

__all__ = ["BuildError", "GateFailed", "WarehouseBusy"]


class BuildError(ValueError):
    """Bad build input or config; the message names the table/key and the fix."""


class GateFailed(BuildError):
    """A data-quality gate (``sql/checks/dq_*.sql``) returned offending rows.

    ``check`` is the gate's name (file name without ``.sql``), ``columns`` the names of the
    columns it returned, ``rows`` up to a few offending rows and ``n_offending`` how many
    rows the check returned in total. The build is rolled back before this is raised.
    """

    def __init__(
        self,
        check: str,
        rows: list[tuple[Any, ...]],
        *,
        columns: tuple[str, ...] = (),
        n_offending: int | None = None,
        version: str = "",
        description: str = "",
    ) -> None:
        self.check = check
        self.rows = list(rows)
        self.columns = tuple(columns)
        self.n_offending = len(self.rows) if n_offending is None else int(n_offending)
        self.version = version
        self.description = description
        super().__init__(self._message())

    def _message(self) -> str:
        what = f" ({self.description})" if self.description else ""
        head = (
            f"data-quality gate {self.check}{what} failed"
            f"{' for dataset ' + self.version if self.version else ''}: "
            f"{self.n_offending} offending row(s); the build was rolled back"
        )
        lines = [head]
        if self.columns:
            lines.append("  " + " | ".join(self.columns))
        for row in self.rows:
            lines.append("  " + " | ".join(_short(v) for v in row))
        return "\n".join(lines)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


class WarehouseBusy(BuildError):
    """The warehouse file is locked by another process (DuckDB allows one writer)."""
