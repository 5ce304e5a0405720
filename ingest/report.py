"""What an ingest run did, per file: counts, status and, for refused files, why."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ingest.errors import IngestError

__all__ = ["FileReport", "IngestReport", "STATUSES"]

#: ``loaded`` new file; ``replaced`` changed file (its earlier rows removed); ``unchanged``
#: same content and mapping as the loaded version (nothing done); ``failed`` refused (the
#: warehouse is exactly as before; ``message`` says why).
STATUSES: tuple[str, ...] = ("loaded", "replaced", "unchanged", "failed")


@dataclass
class FileReport:
    """One input file. For ``unchanged`` files the counts are those of the loaded version.

    Invariant for loaded/replaced/unchanged files:
    ``rows_read == rows_loaded + rows_rejected + rows_duplicate``. ``events_loaded`` can exceed
    ``rows_loaded`` when rows emit response events (``[responses]`` in the mapping).
    """

    path: str
    status: str
    format: str = ""
    size_bytes: int = 0
    content_hash: str = ""
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_duplicate: int = 0
    events_loaded: int = 0
    seconds: float = 0.0
    message: str = ""
    reject_reasons: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IngestReport:
    """All files of one :func:`ingest.ingest_paths` call, in processing order."""

    warehouse: str
    files: list[FileReport] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no file was refused."""
        return not self.failed_files()

    def failed_files(self) -> list[FileReport]:
        return [f for f in self.files if f.status == "failed"]

    def totals(self) -> dict[str, int]:
        """Summed counts over the files that were loaded or replaced in this run."""
        done = [f for f in self.files if f.status in ("loaded", "replaced")]
        out = {
            "files_loaded": sum(f.status == "loaded" for f in self.files),
            "files_replaced": sum(f.status == "replaced" for f in self.files),
            "files_unchanged": sum(f.status == "unchanged" for f in self.files),
            "files_failed": sum(f.status == "failed" for f in self.files),
        }
        for key in ("rows_read", "rows_loaded", "rows_rejected", "rows_duplicate", "events_loaded"):
            out[key] = sum(getattr(f, key) for f in done)
        return out

    def raise_for_failures(self) -> None:
        """Raise :class:`IngestError` listing every refused file (after the others loaded)."""
        failed = self.failed_files()
        if failed:
            lines = "\n".join(f"  {f.path}: {f.message}" for f in failed)
            raise IngestError(f"{len(failed)} of {len(self.files)} file(s) refused:\n{lines}")

    def format_table(self) -> str:
        """A plain-text table, one line per file, then totals and refusal messages."""
        header = ("file", "status", "read", "loaded", "rejected", "duplicate")
        rows = [
            (
                f.path,
                f.status,
                f"{f.rows_read:,}",
                f"{f.rows_loaded:,}",
                f"{f.rows_rejected:,}",
                f"{f.rows_duplicate:,}",
            )
            for f in self.files
        ]
        t = self.totals()
        rows.append(
            (
                "total",
                f"{len(self.files)} file(s)",
                f"{t['rows_read']:,}",
                f"{t['rows_loaded']:,}",
                f"{t['rows_rejected']:,}",
                f"{t['rows_duplicate']:,}",
            )
        )
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        widths[0] = min(widths[0], 70)

        def line(cells: tuple[str, ...]) -> str:
            first = cells[0] if len(cells[0]) <= widths[0] else "…" + cells[0][-widths[0] + 1 :]
            parts = [first.ljust(widths[0]), cells[1].ljust(widths[1])]
            parts += [c.rjust(w) for c, w in zip(cells[2:], widths[2:], strict=True)]
            return "  ".join(parts)

        out = [line(header), "  ".join("-" * w for w in widths)]
        out += [line(r) for r in rows[:-1]]
        out.append("  ".join("-" * w for w in widths))
        out.append(line(rows[-1]))
        for f in self.files:
            if f.reject_reasons and f.status in ("loaded", "replaced"):
                reasons = ", ".join(f"{n:,} {code}" for code, n in f.reject_reasons.items())
                out.append(f"rejected in {f.path}: {reasons} (see table rejected_events)")
        if t["rows_read"] == 0 and t["files_unchanged"] and not t["files_failed"]:
            out.append("nothing new: every file is unchanged since it was loaded")
        for f in self.failed_files():
            out.append(f"refused {f.path}: {f.message}")
        if self.skipped:
            shown = ", ".join(self.skipped[:5]) + (" …" if len(self.skipped) > 5 else "")
            out.append(f"skipped {len(self.skipped)} file(s) with unknown extensions: {shown}")
        return "\n".join(out)
