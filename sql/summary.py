"""The build summary: what a dataset version contains, as a dict and as printable text.

Computed from the version's rows in ``transitions``, ``episodes`` and ``actions`` (so it can
be recomputed for any stored version with :func:`compute_summary`):

* episodes and decisions per split, decisions dropped by ``max_episode_len``;
* users and the share of new users' episodes, how episodes ended (terminal / timeout);
* the action space, how many of its actions occur in the data (``seen``) and its coverage: the
  share of decisions whose item is one of the top-N named actions (not ``other``), per split;
* per reward component: the mean per decision and the share of decisions with a non-zero value;
* the range of logged propensities and the share of decisions without one;
* cold start (:func:`cold_start_summary`, ``sql/summary_cold_start.sql``): the test split's
  decisions on the ``other`` bucket, items and users the train split has not seen, and the
  sessions of new users.

:func:`item_categories` reads the named items' categories from ``events.extra`` when the raw
events carry one (``sql/summary_item_categories.sql``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import duckdb

from sql.config import BuildConfig
from sql.dataset import COMPONENTS
from sql.fetch import one
from sql.loader import read_sql

__all__ = ["compute_summary", "format_summary", "cold_start_summary", "item_categories", "SPLITS"]

SPLITS: tuple[str, ...] = ("train", "validation", "test")


def compute_summary(
    con: duckdb.DuckDBPyConnection,
    version: str,
    cfg: BuildConfig,
    *,
    warnings: list[str] | tuple[str, ...] = (),
) -> dict[str, Any]:
    """Summary dict of one dataset version (plain JSON-able values)."""
    v = {"v": version}
    per_split = con.execute(
        """
        SELECT split, count(*) AS n, count(DISTINCT user_id) AS users,
               sum(n_steps) AS decisions, sum(n_dropped) AS dropped,
               sum(CASE WHEN ended = 'terminal' THEN 1 ELSE 0 END) AS terminal,
               sum(CASE WHEN is_new_user THEN 1 ELSE 0 END) AS new_users
        FROM episodes WHERE dataset_version = $v GROUP BY split
        """,
        v,
    ).fetchall()
    by_split = {row[0]: row[1:] for row in per_split}
    episodes = {s: int(by_split.get(s, (0,))[0]) for s in SPLITS}
    decisions = {s: int(by_split.get(s, (0, 0, 0))[2] or 0) for s in SPLITS}
    total_episodes = sum(episodes.values())
    total_decisions = sum(decisions.values())
    n_users = one(
        con.execute("SELECT count(DISTINCT user_id) FROM episodes WHERE dataset_version = $v", v)
    )[0]
    dropped = sum(int(r[3] or 0) for r in by_split.values())
    terminal = sum(int(r[4] or 0) for r in by_split.values())
    new_users = sum(int(r[5] or 0) for r in by_split.values())

    n_actions, other_items = one(
        con.execute(
            "SELECT count(*), max(CASE WHEN is_other THEN n_items END) FROM actions "
            "WHERE dataset_version = $v",
            v,
        )
    )
    other_id = int(n_actions) - 1

    comp_sql = ", ".join(
        f"avg({c}), avg(CASE WHEN {c} <> 0 THEN 1.0 ELSE 0.0 END)" for c in COMPONENTS
    )
    stats = con.execute(
        f"""
        SELECT split, count(*), avg(CASE WHEN action <> $other THEN 1.0 ELSE 0.0 END),
               avg(reward), {comp_sql}
        FROM transitions WHERE dataset_version = $v GROUP BY split
        """,
        {**v, "other": other_id},
    ).fetchall()
    stats_by_split = {row[0]: row[1:] for row in stats}
    coverage = {s: _round(stats_by_split[s][1]) if s in stats_by_split else None for s in SPLITS}
    overall = one(
        con.execute(
            f"""
        SELECT avg(CASE WHEN action <> $other THEN 1.0 ELSE 0.0 END), avg(reward), {comp_sql},
               min(propensity), max(propensity),
               avg(CASE WHEN propensity IS NULL THEN 1.0 ELSE 0.0 END),
               count(DISTINCT action)
        FROM transitions WHERE dataset_version = $v
        """,
            {**v, "other": other_id},
        )
    )
    coverage["all"] = _round(overall[0])
    components = {
        c: {"mean": _round(overall[2 + 2 * i]), "share_nonzero": _round(overall[3 + 2 * i])}
        for i, c in enumerate(COMPONENTS)
    }
    p_min, p_max, p_missing, n_seen = overall[2 + 2 * len(COMPONENTS) :]
    state_dim = one(con.execute("SELECT count(*) FROM feature_spec WHERE dataset_version = $v", v))[
        0
    ]
    return {
        "version": version,
        "mode": cfg.mode,
        "window": {"start_date": cfg.start_date, "end_date": cfg.end_date},
        "episodes": {"total": total_episodes, **episodes},
        "decisions": {"total": total_decisions, **decisions, "dropped_by_cap": dropped},
        "users": int(n_users),
        "new_user_episode_share": _round(new_users / total_episodes) if total_episodes else None,
        "ended": {"terminal": terminal, "timeout": total_episodes - terminal},
        "actions": {
            "n_actions": int(n_actions),
            "named": int(n_actions) - 1,
            "seen": int(n_seen),
            "top_n": cfg.top_n,
            "other_items": int(other_items or 0),
            "coverage": coverage,
        },
        "reward": {
            "weights": dataclasses.asdict(cfg.reward),
            "mean": _round(overall[1]),
            "components": components,
        },
        "propensity": {
            "min": _round(p_min),
            "max": _round(p_max),
            "missing_share": _round(p_missing),
        },
        "state_dim": int(state_dim),
        "cold_start": cold_start_summary(con, version),
        "warnings": list(warnings),
    }


def cold_start_summary(con: duckdb.DuckDBPyConnection, version: str) -> dict[str, Any]:
    """The test split against the train split of ``version`` (plain JSON-able values).

    Keys: ``test_decisions``, ``other_decisions`` and ``other_share`` (decisions on the
    ``other`` bucket); ``test_items``, ``new_items`` (no train decision shows them),
    ``new_item_decisions`` and ``new_item_share``; ``test_users``, ``new_users`` (no train
    episode); ``test_episodes``, ``new_user_episodes`` (``episodes.is_new_user``: no earlier
    session of the user in the lookback), ``new_user_episode_share``,
    ``new_user_decisions``. Shares are None when the test split is empty.
    """
    n_actions = one(
        con.execute("SELECT count(*) FROM actions WHERE dataset_version = $v", {"v": version})
    )[0]
    cur = con.execute(
        read_sql("summary_cold_start.sql"),
        {"dataset_version": version, "other_action": int(n_actions) - 1},
    )
    names = [d[0] for d in cur.description]
    row = {k: int(v or 0) for k, v in zip(names, one(cur), strict=True)}
    dec, eps = row["test_decisions"], row["test_episodes"]
    return {
        **row,
        "other_share": _round(row["other_decisions"] / dec) if dec else None,
        "new_item_share": _round(row["new_item_decisions"] / dec) if dec else None,
        "new_user_episode_share": _round(row["new_user_episodes"] / eps) if eps else None,
    }


def item_categories(con: duckdb.DuckDBPyConnection, version: str) -> dict[str, str]:
    """item_id -> category of the named items of ``version`` whose raw events carry a
    ``category`` (or ``category_id`` / ``categoryid``) key in ``events.extra``; empty when
    none does or the warehouse has no ``events`` table."""
    has_events = one(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'events' "
            "AND table_schema = current_schema()"
        )
    )[0]
    if not has_events:
        return {}
    rows = con.execute(read_sql("summary_item_categories.sql"), {"dataset_version": version})
    return {str(item): str(cat) for item, cat in rows.fetchall()}


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable multi-line text of :func:`compute_summary`'s dict."""
    ep, dec, act = summary["episodes"], summary["decisions"], summary["actions"]
    lines = [
        f"dataset {summary['version']} ({summary['mode']} mode, state dim {summary['state_dim']})",
        "  episodes   " + _splits(ep) + f"  ({summary['users']} users, "
        f"{_pct(summary['new_user_episode_share'])} of episodes from new users)",
        "  decisions  "
        + _splits(dec)
        + (
            f"  ({dec['dropped_by_cap']} dropped by max_episode_len)"
            if dec["dropped_by_cap"]
            else ""
        ),
        f"  ended      terminal {summary['ended']['terminal']}, timeout "
        f"{summary['ended']['timeout']}",
        f"  actions    {act['n_actions']} = {act['named']} named (top_n {act['top_n']}) + other "
        f"({act['other_items']} items); {act.get('seen', '?')} occur in the data",
        "  coverage   share of decisions on named actions: "
        + ", ".join(f"{s} {_pct(act['coverage'].get(s))}" for s in (*SPLITS, "all")),
        f"  reward     mean {_num(summary['reward']['mean'])} per decision; per component "
        "(mean, share non-zero):",
    ]
    for name, comp in summary["reward"]["components"].items():
        lines.append(f"    {name:<11} {_num(comp['mean']):>10}  {_pct(comp['share_nonzero']):>7}")
    prop = summary["propensity"]
    if prop["min"] is None:
        lines.append("  propensity none logged")
    else:
        lines.append(
            f"  propensity [{_num(prop['min'])}, {_num(prop['max'])}], missing on "
            f"{_pct(prop['missing_share'])} of decisions"
        )
    cold = summary.get("cold_start")
    if cold:
        lines.append(
            f"  cold start test split: {_pct(cold['other_share'])} of decisions on other items; "
            f"{cold['new_items']} of {cold['test_items']} items new ({_pct(cold['new_item_share'])}"
            f" of decisions); {cold['new_users']} of {cold['test_users']} users not in train; "
            f"{_pct(cold['new_user_episode_share'])} of sessions from new users"
        )
    for warning in summary.get("warnings", []):
        lines.append(f"  warning: {warning}")
    return "\n".join(lines)


def _splits(counts: dict[str, Any]) -> str:
    return (
        f"{counts['total']:>9,} (train {counts['train']:,}, validation "
        f"{counts['validation']:,}, test {counts['test']:,})"
    )


def _round(value: Any, digits: int = 6) -> float | None:
    return None if value is None else round(float(value), digits)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
