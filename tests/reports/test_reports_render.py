"""What the rendered page contains, and that data strings can never become markup."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType

import pytest
from markupsafe import escape

from reports import index_html, render_index, render_run, report_html
from reports.config import ReportConfig


class _Page(HTMLParser):
    """Every start tag with its attributes, the text, and script bodies."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        (self.scripts if self._in_script else self.text).append(data)

    def count(self, tag: str) -> int:
        return sum(1 for t, _ in self.tags if t == tag)

    @property
    def all_text(self) -> str:
        return "".join(self.text)


@pytest.fixture(scope="module")
def ship_page(tmp_path_factory: pytest.TempPathFactory, fixture_module: ModuleType) -> str:
    runs = tmp_path_factory.mktemp("ship") / "runs"
    spec = fixture_module.RunSpec()
    for i in range(3):
        fixture_module.make_run(
            runs,
            spec,
            run_id=f"2024042{7 + i}T030000Z",
            created_at=spec.created_at - timedelta(days=4 - i),
            drift=0.01 * i,
            seed=10 + i,
        )
    run = fixture_module.make_run(runs, spec)
    return report_html(run)


@pytest.fixture(scope="module")
def keep_page(tmp_path_factory: pytest.TempPathFactory, fixture_module: ModuleType) -> str:
    runs = tmp_path_factory.mktemp("keep") / "runs"
    run = fixture_module.make_run(
        runs, ship=False, simulated=False, propensity_source="logged", with_models=False
    )
    return report_html(run)


def test_verdict_comes_first_and_is_plain_language(ship_page: str) -> None:
    assert ship_page.index('id="verdict"') < ship_page.index('id="policies"')
    page = _Page(ship_page)
    text = page.all_text
    assert "ship candidate" in text
    assert "Ship candidate: cql beats the logged behaviour policy on reward by +0.0" in text
    assert 'class="verdict ship"' in ship_page
    assert "Why it qualifies" in text and "lies above zero (DR)" in text
    assert "<title>Ship candidate · offrec report 20240501T030000Z</title>" in ship_page


def test_keep_current_says_why(keep_page: str) -> None:
    assert 'class="verdict keep"' in keep_page
    text = _Page(keep_page).all_text
    assert "Keep current: no policy is a safe improvement on reward" in text
    assert "Why not ship" in text
    assert "the effective sample size is only 0.4% of the decisions" in text


def test_sections_and_figures_present(ship_page: str) -> None:
    for anchor in (
        "verdict",
        "policies",
        "objectives",
        "diagnostics",
        "items",
        "data",
        "training",
        "trend",
        "glossary",
        "run",
    ):
        assert f'id="{anchor}"' in ship_page, anchor
    page = _Page(ship_page)
    svgs = [a for t, a in page.tags if t == "svg"]
    # forest (per decision, per session), objectives, weights, calibration, segments, training,
    # trend
    assert len(svgs) == 8
    assert all(a.get("role") == "img" and a.get("aria-labelledby") for a in svgs)
    assert page.count("title") == 1 + 8  # the page's and one per figure
    assert "estimated value of reward per session (discounted return)" in page.all_text
    assert ">Scale</th>" in ship_page
    for table in (
        "checks-table",
        "comparison-table",
        "objectives-table",
        "diagnostics-table",
        "disagreement-table",
        "calibration-table",
        "rates-table",
        "training-table",
        "trend-table",
        "timings-table",
        "packages-table",
    ):
        assert f'id="{table}"' in ship_page, table
    assert all(a.get("scope") in ("col", "row", "colgroup") for t, a in page.tags if t == "th")
    # estimators carry their display names in figures and tables alike
    assert "cql · DR" in page.all_text and "cql · dr" not in page.all_text
    assert ">SNIPW</th>" in ship_page


def test_glossary_and_metadata(ship_page: str) -> None:
    text = _Page(ship_page).all_text
    for term in ("IPS (inverse propensity scoring)", "DR (doubly robust)", "FQE (fitted Q"):
        assert term in text
    assert "ESS (effective sample size)" in text and "Interval" in text
    assert "3f9a0c1d2e4b" in text and "v20240501-28d" in text  # config hash, dataset
    assert "2.8.1" in text and "30 min 43 s" in text  # d3rlpy version, train stage time
    assert "1,254,331" in text and "1,877" in text  # events loaded, duplicates


def test_ground_truth_only_when_simulated(ship_page: str, keep_page: str) -> None:
    assert ">Ground truth</th>" in ship_page and "truth 0.9" in ship_page
    assert "Ground truth</th>" not in keep_page and "truth " not in _Page(keep_page).all_text
    assert "simulated data · ground truth shown" in ship_page
    assert "simulated data · ground truth shown" not in keep_page


def test_propensity_source_is_stated(ship_page: str, keep_page: str) -> None:
    assert "Propensities were <strong>estimated</strong>" in ship_page
    assert "Expected calibration error" in ship_page
    assert "Propensities were <strong>logged</strong>" in keep_page
    assert "calibration-table" not in keep_page


def test_trend_lists_earlier_runs(ship_page: str, keep_page: str) -> None:
    rows = re.findall(r'<th scope="row" class="mono">(\d{8}T\d{6}Z)', ship_page)
    assert rows == ["20240501T030000Z", "20240429T030000Z", "20240428T030000Z", "20240427T030000Z"]
    assert "over the last 4 runs with results" in ship_page
    assert "there is no trend yet" in keep_page


def test_hostile_item_ids_are_shown_as_text(ship_page: str, fixture_module: ModuleType) -> None:
    page = _Page(ship_page)
    text = page.all_text
    for hostile in fixture_module.HOSTILE_IDS:
        assert hostile in text  # the raw string is what the reader sees ...
        assert str(escape(hostile)) in ship_page  # ... because it is escaped
    assert page.count("img") == 0
    assert page.count("h1") == 1
    assert page.count("script") == 1
    assert not [(t, k) for t, a in page.tags for k in a if k.lower().startswith("on")]
    assert "{{" not in ship_page.replace("{{ 7*7 }}", "")  # template syntax is not evaluated
    assert ">49<" not in ship_page


def test_hostile_policy_and_config_values(make_run: Callable[..., Path], runs_dir: Path) -> None:
    hostile_policy = "<img src=x onerror=alert(2)>"
    math_policy = "$\\alpha$ & 'q'"
    run = make_run(
        policy_names=(hostile_policy, "dqn", math_policy),
        config_hash="<script>alert(3)</script>",
        dataset_version='"><svg onload=alert(4)>',
    )
    out = render_run(run)
    page_text = out.read_text()
    page = _Page(page_text)
    assert page.count("img") == 0 and page.count("script") == 1
    assert not [(t, k) for t, a in page.tags for k in a if k.lower().startswith("on")]
    text = page.all_text
    assert hostile_policy in text and math_policy in text
    assert "<script>alert(3)</script>" in text and '"><svg onload=alert(4)>' in text
    # inside the figures too: matplotlib escapes text, and `$...$` is not parsed as maths
    assert "&lt;img src=x onerror=alert(2)&gt;" in page_text
    assert "$\\alpha$ &amp; " in page_text
    index = render_index(runs_dir).read_text()
    assert _Page(index).count("svg") == 0 and "&lt;img src=x" in index


def test_no_external_references(ship_page: str) -> None:
    assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:|//|ftp:)""", ship_page)
    assert "@import" not in ship_page
    # the only url(...) references are matplotlib's in-page clip paths
    assert set(re.findall(r"url\((.)", ship_page)) == {"#"}
    page = _Page(ship_page)
    assert page.count("link") == 0 and page.count("iframe") == 0
    assert all(not a.get("src") for _, a in page.tags)


def test_csp_allows_exactly_our_script(ship_page: str) -> None:
    page = _Page(ship_page)
    (script,) = page.scripts
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    (csp,) = [
        a["content"]
        for t, a in page.tags
        if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp is not None and "default-src 'none'" in csp
    assert f"script-src 'sha256-{digest}'" in csp


def test_render_is_deterministic_and_small(make_run: Callable[..., Path]) -> None:
    run = make_run()
    first, second = report_html(run), report_html(run)
    assert first == second
    assert len(first.encode()) < 5 * 1024 * 1024


def test_gate_failed_run_renders_a_marked_report(make_run: Callable[..., Path]) -> None:
    make_run(run_id="20240430T030000Z")
    run = make_run(run_id="20240501T030000Z", gate_failed=True, status="gate_failed")
    text = _Page(report_html(run)).all_text
    assert "No verdict" in text and "Data-quality gate failed" in text
    assert "at least 1000 decisions required, got 12" in text
    assert "Policy comparison" not in text
    assert "No data summary" in text
    assert "20240430T030000Z" in text  # the trend still shows the earlier run


def test_history_limit_and_broken_earlier_runs(
    make_run: Callable[..., Path], fixture_module: ModuleType
) -> None:
    base = fixture_module.RunSpec().created_at
    for i in range(3):
        make_run(run_id=f"old{i}", created_at=base - timedelta(days=3 - i), seed=i)
    (
        make_run(run_id="broken", created_at=base - timedelta(hours=1))
        / "evaluation"
        / "ope_results.parquet"
    ).write_text("garbage")
    run = make_run()
    html_all = report_html(run, ReportConfig(history_runs=3))
    text = _Page(html_all).all_text
    assert "broken: " in text and "not a readable Parquet file" in text
    rows = re.findall(r'<th scope="row" class="mono">(\w+)', html_all)
    assert rows == ["20240501T030000Z", "old2", "old1"]  # limit 3 counts the broken one


def test_index_lists_runs_newest_first(make_run: Callable[..., Path], runs_dir: Path) -> None:
    base = make_run(run_id="b-new").parent
    make_run(run_id="a-old", created_at=_created(-2), ship=False)
    (base / "a-old" / "report.html").write_text("rendered earlier")
    (runs_dir / "junk").mkdir()
    text = index_html(runs_dir)
    order = re.findall(r'<th scope="row" class="mono">(?:<a href="[^"]*">)?([\w-]+)', text)
    assert order == ["b-new", "a-old", "junk"]
    assert '<a href="a-old/report.html">' in text and 'href="b-new/' not in text
    assert "ship candidate" in text and "keep current" in text
    assert "no manifest.json" in text


def _created(days: int) -> datetime:
    return datetime(2024, 5, 1, 3, tzinfo=UTC) + timedelta(days=days)


def test_failed_run_without_results_names_the_failed_stage(
    make_run: Callable[..., Path],
) -> None:
    run = make_run(status="failed")
    shutil.rmtree(run / "evaluation")
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["stages"]["train"].update(status="failed", error="ValueError: <b>bad</b> batch")
    manifest["stages"]["evaluate"].update(status="pending", seconds=None)
    (run / "manifest.json").write_text(json.dumps(manifest))
    page = report_html(run)
    text = _Page(page).all_text
    assert "No verdict" in text and "run status: failed" in text
    assert "the train stage failed: ValueError: <b>bad</b> batch" in text
    assert "evaluation/summary.json: the evaluate stage is pending" in text
    assert _Page(page).count("b") == 0
