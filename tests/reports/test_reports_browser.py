"""The report in a real browser with the network off: nothing leaves the file, no console
errors, key elements present, hostile ids inert, readable on a phone. Screenshots are saved
under test-artifacts/reports/ for people to look at."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import pytest

from reports import render_index, render_run

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PROBE = """(HOSTILE) => {
  const q = (s) => document.querySelectorAll(s).length;
  const text = document.body.innerText;
  return {
    ready: document.documentElement.getAttribute("data-ready"),
    title: document.title,
    decision: (document.querySelector(".verdict .decision") || {}).textContent || null,
    headline: (document.querySelector(".verdict .headline") || {}).textContent || null,
    figures: q("svg.plot"),
    figuresRendered: Array.from(document.querySelectorAll("svg.plot"))
      .filter((s) => s.getBoundingClientRect().height > 50).length,
    tables: q("table"),
    comparisonRows: q("#comparison-table tbody tr"),
    runRows: q("#runs-table tbody tr"),
    imgs: q("img"), iframes: q("iframe"), scripts: q("script"), h1: q("h1"),
    hostile: HOSTILE.map((h) => text.includes(h)),
    pwned: window.__pwned === true,
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  };
}"""


def _probe(hostile: tuple[str, ...]) -> str:
    """The probe as one expression (it is evaluated once per screen width)."""
    return f"({PROBE})({json.dumps(list(hostile))})"


@pytest.fixture
def chromium(cdp: ModuleType) -> None:
    if cdp.chromium_path() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI: apt-get install -y chromium")
        pytest.skip("chromium not installed (apt-get install -y chromium)")


def test_report_in_headless_chromium(
    chromium: None,
    cdp: ModuleType,
    make_run: Callable[..., Path],
    fixture_module: ModuleType,
    artifacts_dir: Path,
) -> None:
    base = fixture_module.RunSpec()
    make_run(run_id="20240430T030000Z", created_at=base.created_at - timedelta(days=1), seed=3)
    hostile = (*fixture_module.HOSTILE_IDS, '<img src=x onerror="window.__pwned=true">')
    run = make_run(hostile=True)
    # one more hostile id that would flip a flag if it ever ran
    summary = run / "evaluation" / "summary.json"
    summary.write_text(summary.read_text().replace("sku-1000", hostile[-1].replace('"', '\\"')))
    report = render_run(run)

    result = cdp.check_page(
        report, probe=_probe(hostile), screenshot_dir=artifacts_dir, name="report"
    )
    assert result.external_requests == [], result.external_requests
    assert result.requests == [report.resolve().as_uri()]
    assert result.errors == [], result.errors
    dom = result.dom
    assert dom["ready"] == "1"  # our script ran: the CSP hash matches it
    assert dom["decision"] == "ship candidate"
    assert dom["headline"].startswith("Ship candidate: cql beats")
    assert dom["figures"] == 8 and dom["figuresRendered"] == 8
    assert dom["comparisonRows"] == 20
    assert dom["imgs"] == 0 and dom["iframes"] == 0 and dom["scripts"] == 1 and dom["h1"] == 1
    assert all(dom["hostile"]), dom["hostile"]
    assert dom["pwned"] is False
    # a phone-sized screen: wide tables scroll inside their box, the page does not
    assert result.narrow["scrollWidth"] <= result.narrow["innerWidth"]
    assert [p.name for p in result.screenshots] == ["report-1280.png", "report-414.png"]
    assert all(p.stat().st_size > 10_000 for p in result.screenshots)
    png = result.screenshots[0].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_index_in_headless_chromium(
    chromium: None,
    cdp: ModuleType,
    make_run: Callable[..., Path],
    runs_dir: Path,
    artifacts_dir: Path,
) -> None:
    render_run(make_run(run_id="r1", ship=False))
    make_run(run_id="r2", gate_failed=True, status="gate_failed")
    index = render_index(runs_dir)
    result = cdp.check_page(index, probe=_probe(()), screenshot_dir=artifacts_dir, name="index")
    assert result.external_requests == [] and result.errors == []
    assert result.dom["ready"] == "1" and result.dom["runRows"] == 2
    assert result.narrow["scrollWidth"] <= result.narrow["innerWidth"]


def test_the_browser_check_catches_a_leaky_page(
    chromium: None, cdp: ModuleType, tmp_path: Path
) -> None:
    """The checks above can fail: a page that fetches and logs errors is caught."""
    page = tmp_path / "leaky.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>x</title></head><body>"
        '<img src="http://127.0.0.1:9/leak.png" alt="">'
        "<script>console.error('boom'); window.__pwned = true;</script></body></html>"
    )
    result = cdp.check_page(page, probe=_probe(()))
    assert result.external_requests == ["http://127.0.0.1:9/leak.png"]
    assert any("boom" in e for e in result.errors)
    assert result.dom["pwned"] is True and result.dom["imgs"] == 1
