"""Self-contained HTML reports rendered from stored results (no computation here).

Python API::

    from reports import render_run, render_index, generate_reports, ReportInput

    render_run("runs/nightly-2024-05-01")        # -> runs/nightly-2024-05-01/report.html
    render_index("runs")                         # -> runs/index.html
    generate_reports("runs", all_runs=True)      # every run, then the index
    ReportInput.load("runs/nightly-2024-05-01")  # the validated inputs, as dataclasses

The file schemas a report reads are documented in docs/reports.md. Names are imported lazily:
``offrec.config`` imports ``reports.config``, and that must not pull in matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "ReportConfig",
    "ReportError",
    "ReportWriteError",
    "ReportInput",
    "ReportOutputs",
    "generate_reports",
    "index_html",
    "render_index",
    "render_run",
    "report_html",
]

_WHERE = {
    "ReportConfig": "reports.config",
    "ReportError": "reports.errors",
    "ReportWriteError": "reports.errors",
    "ReportInput": "reports.model",
    "ReportOutputs": "reports.render",
    "generate_reports": "reports.render",
    "index_html": "reports.render",
    "render_index": "reports.render",
    "render_run": "reports.render",
    "report_html": "reports.render",
}

if TYPE_CHECKING:  # pragma: no cover
    from reports.config import ReportConfig
    from reports.errors import ReportError, ReportWriteError
    from reports.model import ReportInput
    from reports.render import (
        ReportOutputs,
        generate_reports,
        index_html,
        render_index,
        render_run,
        report_html,
    )


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'reports' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
