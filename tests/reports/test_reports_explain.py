"""The report's "What changes if we ship", "New vs returning users" and cold-start parts:
rendered from the stored files (hostile ids escaped), absent files explained, bad files named."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html import unescape
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from markupsafe import escape

from reports import report_html
from reports.errors import ReportError
from reports.model import ReportInput, data_summary_from_build


def text_of(html: str) -> str:
    body = re.sub(r"<svg.*?</svg>", " ", html, flags=re.S)
    body = re.sub(r"<[^>]+>", " ", body)
    return re.sub(r"\s+", " ", unescape(body))


def section(html: str, anchor: str) -> str:
    m = re.search(rf'<section id="{anchor}".*?</section>', html, re.S)
    assert m, anchor
    return m.group(0)


def test_changes_section_per_candidate(make_run: Callable[..., Path], fixture_module: Any) -> None:
    html = report_html(make_run())
    part = section(html, "changes")
    text = text_of(part)
    # one collapsible block per candidate, in the verdict's order, the first open
    blocks = re.findall(r'<details class="changes" id="changes-(\d+)"( open)?>', part)
    assert [b[0] for b in blocks] == ["1", "2", "3", "4"]
    assert [bool(b[1]) for b in blocks] == [True, False, False, False]
    assert text.index("cql") < text.index("dqn")
    assert "Items that gain share" in text and "Items that lose share" in text
    assert "(other items) 31.4% 20% −11.4%" in text
    assert "Categories whose share moves most" in text
    assert "logged behaviour 52% 0.61 0.7884 22.2" in text  # top-10, Gini, entropy, e^H
    assert "different first choice" in text
    assert "3rd recommendation of the session; was just shown" in text
    assert "Item categories: 50 of the 50 named items have a category" in text
    for hostile in fixture_module.HOSTILE_IDS:
        assert str(escape(hostile)) in part and hostile in text
    assert "<script>alert" not in part and "<img" not in part


def test_changes_without_categories_says_so(make_run: Callable[..., Path]) -> None:
    text = text_of(section(report_html(make_run(categories=False)), "changes"))
    assert "the raw events carry no item category" in text
    assert "Categories whose share moves most" not in text


def test_segments_section(make_run: Callable[..., Path]) -> None:
    part = section(report_html(make_run()), "segments")
    text = text_of(part)
    assert "New users 2,118 sessions (21.5%), 11,050 decisions" in text
    assert "Returning users 7,756 sessions (78.5%), 37,160 decisions" in text
    assert text.index("New users") < text.index("Returning users")
    assert "Estimates per decision, by segment" in text
    assert "Estimates per session (discounted return), by segment" in text
    assert "behaviour logged 0.92 0.92" in text
    # cql: relative lift 0.08 x 1.6 on new users, x 0.8 on returning ones
    assert re.search(r"cql IPW 1\.038 \[[^]]+\] \+0\.1178", text)
    assert "Opposite effects" not in text
    # small multiples of the verdict's estimator (DR), one panel per segment
    assert "Relative lift over behaviour per user segment" in part
    assert "Relative lift over the logged behaviour in each segment (DR, per decision)" in text


def test_segments_flag_opposite_effects(make_run: Callable[..., Path]) -> None:
    run = make_run()
    path = run / "evaluation" / "segments.parquet"
    df = pd.read_parquet(path)
    flip = (df["policy"] == "cql") & (df["segment"] == "returning_user")
    for col in ("lift", "lift_low", "lift_high"):
        df.loc[flip, col] = -df.loc[flip, col]
    df.loc[flip, ["lift_low", "lift_high"]] = df.loc[flip, ["lift_high", "lift_low"]].to_numpy()
    df.to_parquet(path, index=False)
    text = text_of(section(report_html(run), "segments"))
    assert "Opposite effects: cql (IPW), cql (SNIPW), cql (DR), cql (PDIS) helps one" in text


def test_runs_without_the_files_say_what_is_missing(make_run: Callable[..., Path]) -> None:
    html = report_html(make_run(with_explain=False, with_segments=False))
    assert "per user segment" not in html
    assert "stored no explanation" in text_of(section(html, "changes"))
    assert "stored no new-vs-returning split" in text_of(section(html, "segments"))


def test_cold_start_in_the_data_section(make_run: Callable[..., Path]) -> None:
    text = text_of(section(report_html(make_run()), "data"))
    assert 'Test decisions outside the top-N ("other" bucket) 29.7%' in text
    assert "Items new in the test window 133 of 1,204 (2.1% of test decisions)" in text
    assert "Users new in the test window (no train session) 1,870 of 6,502" in text
    assert "2,118 of 9,874 (21.4%)" in text


BUILD = {
    "version": "ds-1",
    "mode": "logged",
    "episodes": {"total": 10},
    "decisions": {"total": 40, "train": 30, "validation": 0, "test": 10},
    "users": 4,
    "actions": {"n_actions": 3, "named": 2, "other_items": 5, "coverage": {"all": 0.75}},
    "reward": {
        "mean": 0.5,
        "components": {c: {"mean": 0.1} for c in ("r_click", "r_cart", "r_purchase", "r_revenue")},
    },
    "cold_start": {
        "test_decisions": 10,
        "other_share": 0.3,
        "test_items": 4,
        "new_items": 1,
        "new_item_share": 0.1,
        "test_users": 3,
        "new_users": 1,
        "test_episodes": 3,
        "new_user_episodes": 2,
        "new_user_episode_share": 0.6667,
    },
}


def test_data_summary_from_build_carries_cold_start() -> None:
    from datetime import UTC, datetime

    now = datetime(2024, 1, 1, tzinfo=UTC)
    ds = data_summary_from_build(
        BUILD,
        data_source="logs",
        date_range=(now, now),
        events_loaded=1,
        events_rejected=0,
        events_duplicate=0,
    )
    assert ds.cold_start is not None and ds.cold_start.new_user_episodes == 2
    assert ds.to_dict()["cold_start"]["other_share"] == 0.3
    bad = json.loads(json.dumps(BUILD))
    bad["cold_start"]["new_users"] = 9
    with pytest.raises(ReportError, match=r"key 'cold_start.new_users' = 9 exceeds test_users"):
        data_summary_from_build(
            bad,
            data_source="logs",
            date_range=(now, now),
            events_loaded=1,
            events_rejected=0,
            events_duplicate=0,
        )


def _json(rel: str, fn: Callable[[Any], None]) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        path = run / rel
        data = json.loads(path.read_text())
        fn(data)
        path.write_text(json.dumps(data))

    return edit


def _parquet(fn: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        path = run / "evaluation" / "segments.parquet"
        fn(pd.read_parquet(path)).to_parquet(path, index=False)

    return edit


E, S, D = "evaluation/explain.json", "evaluation/summary.json", "data_summary.json"
BAD = [
    (_json(E, lambda d: d.pop("categories")), r"explain.json: key 'categories': missing"),
    (
        _json(E, lambda d: d["categories"].update(available="yes")),
        r"key 'categories.available': must be true or false",
    ),
    (
        _json(E, lambda d: d["policies"]["cql"]["gains"][0].update(after=2)),
        r"key 'policies.cql.gains\[0\].after' = 2: must be between 0 and 1",
    ),
    (
        _json(E, lambda d: d["policies"]["cql"]["concentration"].update(gini=-0.1)),
        r"key 'policies.cql.concentration.gini' = -0.1",
    ),
    (
        _json(E, lambda d: d["policies"]["dqn"]["examples"][0].pop("history")),
        r"key 'policies.dqn.examples\[0\].history': missing",
    ),
    (
        _json(E, lambda d: d["policies"]["dqn"]["examples"][1].update(agree=1)),
        r"examples\[1\].agree': must be true or false",
    ),
    (_json(E, lambda d: d.update(run_id="zzz")), r"explain.json: key 'run_id' = 'zzz' does not"),
    (
        _json(S, lambda d: d["segments"]["counts"][0].update(evaluated="no")),
        r"key 'segments.counts\[0\].evaluated': must be true or false",
    ),
    (
        _json(S, lambda d: d["segments"]["counts"][1].update(episode_share=4)),
        r"segments.counts\[1\].episode_share' = 4",
    ),
    (
        _json(D, lambda d: d["cold_start"].pop("new_items")),
        r"data_summary.json: key 'cold_start.new_items': missing",
    ),
    (_parquet(lambda df: df.drop(columns=["baseline_value"])), r"missing column\(s\) baseline_v"),
    (
        _parquet(lambda df: pd.concat([df, df.iloc[:1]])),
        r"segments.parquet: row \d+: \(segment='new_user', policy='cql', estimator='ipw'",
    ),
    (
        _parquet(lambda df: df.assign(segment=[""] * len(df))),
        r"segments.parquet: row 0: column 'segment' = '': must be a non-empty string",
    ),
    (
        _parquet(lambda df: df.assign(n_episodes=-1)),
        r"row 0: column 'n_episodes' = -1: must be a whole number >= 0",
    ),
]


@pytest.mark.parametrize("edit, message", BAD, ids=[m[:40] for _, m in BAD])
def test_bad_files_name_the_file_and_key(
    make_run: Callable[..., Path], edit: Callable[[Path], None], message: str
) -> None:
    run = make_run()
    edit(run)
    with pytest.raises(ReportError, match=message):
        ReportInput.load(run)


def test_unreadable_segments_file(make_run: Callable[..., Path]) -> None:
    run = make_run()
    (run / "evaluation" / "segments.parquet").write_bytes(b"not parquet")
    with pytest.raises(ReportError, match=r"segments.parquet: not a readable Parquet file"):
        ReportInput.load(run)
