"""``offrec bench build``: our full dataset build against a plain window query and pandas.

Input: simulated events (``offrec.simulator``; sessions sized by a pilot run), 10M events at
``--scale 1``, loaded once into a DuckDB warehouse in the work directory (reused when it
already holds the same size and seed).

Contenders, all on that warehouse in this process:

* ours: ``sql.build.build_dataset`` with the default ``[build]`` config: every ``int_``/``fct_``
  step, feature_spec, summary, the seven data-quality gates, the commit and the Parquet copies;
* plain DuckDB window query (the limit): ONE ``CREATE TABLE AS`` that computes a state vector
  of the same layout per impression (step, previous actions, last interacted items taken from
  the last 8 events, counts, times, position, one-hot bag; history zero; no rewards, splits,
  feature statistics, gates or Parquet) with LAG/LEAD and running window aggregates over
  sessions, and the next state with LEAD. It is a lower bound, not an equivalent;
* pandas: a straightforward pandas implementation of the same features as ours (history and
  rewards included) that writes its transitions (the scalar columns, ``state`` and
  ``next_state`` as float lists) to one Parquet file with pyarrow, as ours writes its
  Parquet copy. It keeps no warehouse tables, statistics or gates, so its ratio still
  flatters the baseline a little.

The ratio is baseline time / our time. Goals: >= 0.5x the plain query, >= 5x pandas, peak RSS
<= 2 GB for ours.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from offrec.bench import BenchOptions, BenchSuite, Comparison, Contender, available_memory_mb

__all__ = ["suite", "prepare_warehouse", "plain_window_query", "pandas_build", "EVENTS_AT_SCALE_1"]

EVENTS_AT_SCALE_1 = 10_000_000
#: Peak RSS growth of :func:`pandas_build` per million events, with a margin: measured 1.65
#: GB per million at 10M events (16.6 GB peak, 2026-11-28) and 2.1 at 2M.
PANDAS_MB_PER_MILLION_EVENTS = 2_000
_TOP_N = 50
_K = 3


def prepare_warehouse(path: Path, n_events: int, seed: int) -> int:
    """Simulate about ``n_events`` events into ``path``'s ``events`` table; returns the count."""
    from offrec.simulator import SimulatorConfig, write_logs

    path = Path(path)
    if path.exists():
        con = duckdb.connect(str(path))
        try:
            meta = con.execute("SELECT n_target, seed, n_events FROM bench_meta").fetchall()
            if meta and meta[0][:2] == (n_events, seed):
                return int(meta[0][2])
        except duckdb.Error:
            pass
        finally:
            con.close()
        path.unlink()
    raw = path.parent / "raw-events"
    n_sessions = max(10, int(round(n_events / _events_per_session(seed))))
    write_logs(raw, SimulatorConfig(), n_sessions=n_sessions, seed=seed, overwrite=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute(
            "CREATE TABLE events AS SELECT event_id, timezone('UTC', ts) AS ts, user_id, "
            "session_id, event_type, item_id, position, propensity, price, request_id, "
            "CAST(NULL AS JSON) AS extra, 'bench' AS source_file, CAST(NULL AS BIGINT) AS "
            "source_row, CAST(NULL AS TIMESTAMP) AS ingested_at FROM read_parquet($glob)",
            {"glob": str(raw / "*.parquet")},
        )
        n = int(con.execute("SELECT count(*) FROM events").fetchall()[0][0])
        con.execute(
            "CREATE TABLE bench_meta AS SELECT $t AS n_target, $s AS seed, $n AS n_events",
            {"t": n_events, "s": seed, "n": n},
        )
    finally:
        con.close()
    shutil.rmtree(raw, ignore_errors=True)
    return n


def _events_per_session(seed: int) -> float:
    """Mean events per simulated session, from a 4,000-session pilot run."""
    from offrec.simulator import SimulatorConfig, simulate_events

    pilot = simulate_events(SimulatorConfig(), n_sessions=4000, seed=seed + 1)
    return max(1.0, pilot.summary.n_events / 4000)


PLAIN_QUERY = f"""
CREATE OR REPLACE TABLE plain_transitions AS
WITH top AS (
    SELECT item_id, row_number() OVER (ORDER BY count(*) DESC, item_id) - 1 AS action
    FROM events WHERE event_type = 'impression' GROUP BY item_id
    QUALIFY action < {_TOP_N}
),
ev AS (
    SELECT e.session_id, e.event_id, e.ts, e.event_type, e.position,
           coalesce(t.action, {_TOP_N}) AS action,
           e.event_type = 'impression' AS is_imp
    FROM events e LEFT JOIN top t USING (item_id)
),
w AS (
    SELECT *,
        sum(CASE WHEN event_type = 'view' THEN 1 ELSE 0 END) OVER s AS n_view,
        sum(CASE WHEN event_type = 'click' THEN 1 ELSE 0 END) OVER s AS n_click,
        sum(CASE WHEN event_type = 'add_to_cart' THEN 1 ELSE 0 END) OVER s AS n_cart,
        sum(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) OVER s AS n_purchase,
        min(ts) OVER (PARTITION BY session_id) AS start_ts,
        lag(ts) OVER o AS prev_ts,
        list(CASE WHEN NOT is_imp THEN action END) OVER (o ROWS BETWEEN 8 PRECEDING AND
                                                          1 PRECEDING) AS recent
    FROM ev
    WINDOW o AS (PARTITION BY session_id ORDER BY ts, position NULLS FIRST, event_id),
           s AS (o ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
d AS (
    SELECT *,
        row_number() OVER p - 1 AS step,
        lag(action, 1, {_TOP_N + 1}) OVER p AS p1,
        lag(action, 2, {_TOP_N + 1}) OVER p AS p2,
        lag(action, 3, {_TOP_N + 1}) OVER p AS p3,
        list_filter(recent, lambda x: x IS NOT NULL) AS items
    FROM w WHERE is_imp
    WINDOW p AS (PARTITION BY session_id ORDER BY ts, position NULLS FIRST, event_id)
),
s AS (
    SELECT session_id, step, action,
        CAST(list_concat(
            [step, p1, p2, p3],
            list_transform(range({_K}), lambda j: coalesce(items[len(items) - j], {_TOP_N + 1})),
            [n_view, n_click, n_cart, n_purchase,
             epoch(ts) - epoch(start_ts), coalesce(epoch(ts) - epoch(prev_ts), 0),
             hour(ts), isodow(ts) - 1, coalesce(position, 0), 0, 0, 0],
            list_transform(range({_TOP_N + 1}),
                           lambda a: len(list_filter(items[-{_K}:], lambda x: x = a)))
        ) AS FLOAT[]) AS state
    FROM d
)
SELECT session_id, step, action, state,
       lead(state) OVER (PARTITION BY session_id ORDER BY step) AS next_state
FROM s
"""


def plain_window_query(con: duckdb.DuckDBPyConnection) -> int:
    """Run :data:`PLAIN_QUERY`; returns the number of rows it wrote."""
    con.execute(PLAIN_QUERY)
    return int(con.execute("SELECT count(*) FROM plain_transitions").fetchall()[0][0])


def pandas_build(
    con: duckdb.DuckDBPyConnection,
    lookback_days: float = 30.0,
    *,
    return_arrays: bool = False,
    out_path: Path | str | None = None,
) -> dict[str, Any]:
    """The default build's state features, rewards and next states, written plainly in pandas.

    With ``out_path`` the transitions are written there as one Parquet file (see
    :func:`_write_transitions`), as the bench does. With ``return_arrays`` the result also
    holds ``event_ids``, ``states`` and ``next_states`` (to compare with the SQL build).
    Sessions that started before the lookback but have events inside it are not counted in
    ``hist_sessions`` (the SQL build counts them).
    """
    ev = con.execute(
        "SELECT event_id, ts, user_id, session_id, event_type, item_id, position, propensity, "
        "price, request_id FROM events"
    ).df()
    ev = ev.sort_values(
        ["session_id", "ts", "position", "event_id"],
        na_position="first",
        kind="stable",
        ignore_index=True,
    )
    is_imp = ev["event_type"].eq("impression").to_numpy()
    imps = ev[is_imp].copy()
    # sessions, splits (by start, 80/10/10) and the action space from train decisions
    start = ev.groupby("session_id")["ts"].min().rename("start")
    sess = start[imps["session_id"].unique()].sort_values(kind="stable").to_frame()
    n = len(sess)
    rank = np.arange(n)
    sess["split"] = np.where(
        rank < round(0.8 * n), "train", np.where(rank < round(0.9 * n), "validation", "test")
    )
    imps = imps.join(sess, on="session_id")
    counts = imps.loc[imps["split"] == "train", "item_id"].value_counts()
    counts = counts.rename_axis("item_id").reset_index(name="n")
    counts = counts.sort_values(["n", "item_id"], ascending=[False, True]).head(_TOP_N)
    action_of = dict(zip(counts["item_id"], range(len(counts)), strict=True))
    other, none = len(counts), len(counts) + 1
    ev["action"] = ev["item_id"].map(action_of).fillna(other).astype(np.int64)
    imps["action"] = ev.loc[is_imp, "action"].to_numpy()
    # within-session features, counting events strictly before the impression's time
    g = imps.groupby("session_id", sort=False)
    imps["step"] = g.cumcount()
    for j in range(1, _K + 1):
        imps[f"prev_{j}"] = g["action"].shift(j).fillna(none)
    inter = ev[~is_imp].copy()
    gi = inter.groupby("session_id", sort=False)
    for kind in ("view", "click", "add_to_cart", "purchase"):
        inter[f"n_{kind}"] = (
            inter["event_type"]
            .eq(kind)
            .astype(int)
            .groupby(inter["session_id"], sort=False)
            .cumsum()
        )
    for j in range(1, _K + 1):
        inter[f"last_{j}"] = gi["action"].shift(j - 1)
    inter_last = inter.groupby(["session_id", "ts"], sort=False).tail(1)
    cols = [f"n_{k}" for k in ("view", "click", "add_to_cart", "purchase")]
    cols += [f"last_{j}" for j in range(1, _K + 1)]
    merged = pd.merge_asof(
        imps.sort_values("ts", kind="stable"),
        inter_last.sort_values("ts", kind="stable")[["session_id", "ts", *cols]],
        on="ts",
        by="session_id",
        allow_exact_matches=False,
    )
    prev_any = ev[["session_id", "ts"]].drop_duplicates().sort_values("ts", kind="stable")
    prev_any = prev_any.assign(prev_ts=prev_any["ts"])
    merged = pd.merge_asof(merged, prev_any, on="ts", by="session_id", allow_exact_matches=False)
    merged = merged.sort_values(["session_id", "step"], kind="stable", ignore_index=True)
    # user history over the lookback before each session start: cumulative purchases and
    # session starts per user, read just before s0 and just before s0 - lookback
    look = pd.Timedelta(days=lookback_days)
    starts = ev.groupby("session_id", as_index=False).agg(
        user_id=("user_id", "first"), start=("ts", "min")
    )
    marks = starts.assign(kind=0, price=0.0).rename(columns={"start": "ts"})
    buys = ev.loc[ev["event_type"].eq("purchase"), ["user_id", "ts", "price"]].assign(kind=1)
    stream = pd.concat([marks[["user_id", "ts", "kind", "price"]], buys], ignore_index=True)
    stream = stream.sort_values(["user_id", "ts"], kind="stable", ignore_index=True)
    gs = stream.groupby("user_id", sort=False)
    stream["c_sess"] = (stream["kind"] == 0).astype(int).groupby(stream["user_id"]).cumsum()
    stream["c_buy"] = gs["kind"].cumsum()
    stream["c_spend"] = (stream["price"] * stream["kind"]).groupby(stream["user_id"]).cumsum()
    stream = stream.sort_values("ts", kind="stable")[
        ["user_id", "ts", "c_sess", "c_buy", "c_spend"]
    ]
    q = starts.sort_values("start", kind="stable")
    at = pd.merge_asof(
        q, stream, left_on="start", right_on="ts", by="user_id", allow_exact_matches=False
    )
    q_lo = q.assign(lo=q["start"] - look).sort_values("lo", kind="stable")
    lo = pd.merge_asof(
        q_lo, stream, left_on="lo", right_on="ts", by="user_id", allow_exact_matches=False
    ).set_index("session_id")
    at = at.set_index("session_id")
    lo = lo.reindex(at.index)
    hist_df = pd.DataFrame(
        {
            "h_s": at["c_sess"].fillna(0) - lo["c_sess"].fillna(0),
            "h_p": at["c_buy"].fillna(0) - lo["c_buy"].fillna(0),
            "h_spend": at["c_spend"].fillna(0) - lo["c_spend"].fillna(0),
        }
    ).reset_index()
    merged = merged.merge(hist_df, on="session_id", how="left")
    # rewards by request id and item within the attribution window
    resp = ev[~is_imp & ev["request_id"].notna()]
    att = imps[["event_id", "request_id", "item_id", "ts"]].merge(
        resp[["request_id", "item_id", "ts", "event_type", "price"]],
        on=["request_id", "item_id"],
        suffixes=("", "_r"),
    )
    att = att[(att["ts_r"] >= att["ts"]) & (att["ts_r"] - att["ts"] <= pd.Timedelta(1800, "s"))]
    rewards = att.groupby("event_id")["event_type"].value_counts().unstack(fill_value=0)
    merged = merged.merge(rewards, left_on="event_id", right_index=True, how="left")
    # pack states and next states
    secs = (merged["ts"] - merged["start"]).dt.total_seconds()
    since = (merged["ts"] - merged["prev_ts"]).dt.total_seconds().fillna(0.0)
    last = merged[[f"last_{j}" for j in range(1, _K + 1)]].fillna(none).to_numpy(np.int64)
    # filled column by column in float32: a float64 column_stack of the same matrix needs
    # 4 GB more at 10M events, which this 24 GB machine does not have
    parts = [
        merged["step"],
        *(merged[f"prev_{j}"] for j in range(1, _K + 1)),
        *last.T,
        *(merged[c].fillna(0) for c in cols[:4]),
        secs,
        since,
        merged["ts"].dt.hour,
        merged["ts"].dt.dayofweek,
        merged["position"].fillna(0),
        *(merged[c].fillna(0) for c in ("h_s", "h_p", "h_spend")),
    ]
    state = np.zeros((len(merged), len(parts) + other + 1), dtype=np.float32)
    for i, part in enumerate(parts):
        state[:, i] = np.asarray(part, dtype=np.float32)
    bag = state[:, len(parts) :]
    for j in range(_K):
        np.add.at(
            bag,
            (np.arange(len(merged)), np.where(last[:, j] < none, last[:, j], 0)),
            (last[:, j] < none).astype(np.float32),
        )
    nxt = np.zeros_like(state)
    same = merged["session_id"].to_numpy()[1:] == merged["session_id"].to_numpy()[:-1]
    nxt[:-1][same] = state[1:][same]
    out: dict[str, Any] = {"rows": int(len(merged)), "state_dim": int(state.shape[1])}
    if out_path is not None:
        out["parquet_bytes"] = _write_transitions(merged, state, nxt, same, Path(out_path))
    if return_arrays:
        out.update(event_ids=merged["event_id"].to_numpy(), states=state, next_states=nxt)
    return out


def _write_transitions(
    merged: pd.DataFrame, state: np.ndarray, nxt: np.ndarray, same: np.ndarray, path: Path
) -> int:
    """Write the pandas transitions to ``path`` the straightforward way; returns its size.

    Scalar columns (split, episode/user/event/item ids, step, decision time, action, position,
    propensity, the reward counts) from the DataFrame, ``state`` (n, d) and ``next_state``
    (n, d; NULL on a session's last row, as in ours) as ``list<float>`` columns built over the
    float32 buffers, one ``pyarrow.parquet.write_table`` with pyarrow's default codec.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    n, d = state.shape
    offsets = pa.array(np.arange(0, (n + 1) * d, d, dtype=np.int32))
    last = pa.array(~np.append(same, False))
    table = pa.Table.from_pandas(
        pd.DataFrame(
            {
                "split": merged["split"],
                "episode_id": merged["session_id"],
                "user_id": merged["user_id"],
                "step": merged["step"].astype(np.int64),
                "decision_ts": merged["ts"],
                "event_id": merged["event_id"],
                "item_id": merged["item_id"],
                "action": merged["action"].astype(np.int32),
                "position": merged["position"],
                "propensity": merged["propensity"],
                "r_click": _count(merged, "click") + _count(merged, "view"),
                "r_cart": _count(merged, "add_to_cart"),
                "r_purchase": _count(merged, "purchase"),
            }
        ),
        preserve_index=False,
    )
    states = pa.ListArray.from_arrays(offsets, pa.array(state.reshape(-1)))
    next_states = pa.ListArray.from_arrays(offsets, pa.array(nxt.reshape(-1)), mask=last)
    table = table.append_column("state", states).append_column("next_state", next_states)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path.stat().st_size


def _count(merged: pd.DataFrame, kind: str) -> np.ndarray:
    if kind not in merged.columns:
        return np.zeros(len(merged), dtype=np.int64)
    return merged[kind].fillna(0).to_numpy(np.int64)


def pandas_skip_reason(n_events: int, available_mb: float) -> str | None:
    """Why the pandas contender cannot run on ``n_events`` events with ``available_mb`` free.

    pandas holds every event and decision in memory (about
    :data:`PANDAS_MB_PER_MILLION_EVENTS` MB per million events); past what the machine has
    free, the kernel would kill the whole bench process, ours' results with it.
    """
    need = PANDAS_MB_PER_MILLION_EVENTS * n_events / 1e6
    if need <= available_mb:
        return None
    fits = available_mb / PANDAS_MB_PER_MILLION_EVENTS * 1e6
    return (
        f"pandas would need about {need / 1024:.1f} GB for {n_events:,} events (it holds "
        f"everything in memory, ~{PANDAS_MB_PER_MILLION_EVENTS / 1024:.1f} GB per million), "
        f"but {available_mb / 1024:.1f} GB is available; run with --scale "
        f"{max(fits, 0) / EVENTS_AT_SCALE_1:.2f} or less to include it"
    )


def suite(opts: BenchOptions) -> BenchSuite:
    from sql.build import build_dataset
    from sql.config import BuildConfig

    n_target = max(20_000, int(round(EVENTS_AT_SCALE_1 * opts.scale)))
    workdir = Path(opts.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "bench-build-warehouse.duckdb"
    n_events = prepare_warehouse(path, n_target, opts.seed)
    datasets = workdir / "datasets"
    cfg = BuildConfig()

    def ours() -> dict[str, Any]:
        res = build_dataset(path, cfg, datasets_dir=datasets)
        return {
            "decisions": res.summary["decisions"]["total"],
            "version": res.version,
            "state_dim": res.summary["state_dim"],
            # where the time went (wall seconds per build phase, see BuildResult.timings)
            "phases_s": res.timings,
        }

    def plain() -> dict[str, Any]:
        con = duckdb.connect(str(path))
        try:
            con.execute("SET threads = 2")
            con.execute("SET memory_limit = '1500MB'")
            return {"rows": plain_window_query(con)}
        finally:
            con.close()

    def pandas_run() -> dict[str, Any]:
        con = duckdb.connect(str(path), read_only=True)
        try:
            return pandas_build(
                con, cfg.lookback_days, out_path=workdir / "pandas" / "transitions.parquet"
            )
        finally:
            con.close()

    def pandas_skip() -> str | None:
        return pandas_skip_reason(n_events, available_memory_mb())

    def cleanup() -> None:
        shutil.rmtree(datasets, ignore_errors=True)
        shutil.rmtree(workdir / "pandas", ignore_errors=True)

    return BenchSuite(
        stage="build",
        comparisons=(
            Comparison(
                name="build",
                ours=Contender("offrec build (full)", ours),
                baselines=(
                    Contender("plain DuckDB window query", plain),
                    Contender("pandas", pandas_run, skip_reason=pandas_skip),
                ),
                n_items=n_events,
                unit="events",
                goal=">= 0.5x the plain query, >= 5x pandas, peak RSS <= 2 GB",
            ),
        ),
        notes=f"{n_events:,} simulated events; default [build] config (logged mode, top_n "
        f"{_TOP_N}, last_k {_K}, onehot). The plain query computes the state vector only.",
        cleanup=cleanup,
    )
