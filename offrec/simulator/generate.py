"""Generate logged sessions of the behaviour policy: in memory, or streamed to files.

* :func:`simulate_events` returns the events as one Arrow table (sorted by ``ts, event_id``)
  and, with ``record_states=True``, the raw state vector the simulator computed online for
  every impression (for the SQL/simulator parity test);
* :func:`write_logs` streams them block by block to ``events.<ext>`` or
  ``dt=YYYY-MM-DD/part-0.<ext>`` and writes ``offrec-simulation.toml`` (the effective
  ``[simulate]`` section) beside them, so ground truth can later be computed on the same world.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from offrec.simulator.actions import resolve_action_space
from offrec.simulator.config import RewardWeights, SimulatorConfig, StateOptions
from offrec.simulator.engine import BehaviourChooser, Chooser, StateSetup, StepLog, simulate_block
from offrec.simulator.errors import SimulatorError
from offrec.simulator.events import EVENT_TYPES, RAW_SCHEMA, events_table, impression_ids
from offrec.simulator.features import feature_names
from offrec.simulator.schedule import (
    BlockPlan,
    allocate_sessions,
    n_blocks,
    n_users_for,
    plan_block,
)
from offrec.simulator.world import World
from offrec.simulator.writer import MANIFEST_NAME, EventWriter, file_extension

__all__ = [
    "RecordedStates",
    "SimulationSummary",
    "SimulatedLogs",
    "WriteSummary",
    "simulate_events",
    "write_logs",
    "iter_blocks",
    "load_simulation_config",
    "MANIFEST_NAME",
]


@dataclass(frozen=True)
class RecordedStates:
    """Online raw states of logged decisions: row ``r`` belongs to impression ``event_ids[r]``."""

    event_ids: np.ndarray  # (n,) object
    states: np.ndarray  # (n, d) float64
    names: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.event_ids.shape[0])

    def to_frame(self) -> pd.DataFrame:
        """One row per impression: ``event_id`` then one column per feature."""
        frame = pd.DataFrame(self.states, columns=list(self.names))
        frame.insert(0, "event_id", self.event_ids)
        return frame

    def lookup(self, event_ids: np.ndarray | list[str]) -> np.ndarray:
        """``(m, d)`` states of the given impression event ids, in that order."""
        index = {e: r for r, e in enumerate(self.event_ids)}
        rows = np.empty(len(event_ids), dtype=np.int64)
        for k, e in enumerate(event_ids):
            r = index.get(e)
            if r is None:
                raise SimulatorError(f"event_ids[{k}] = {e!r} is not a recorded impression")
            rows[k] = r
        return self.states[rows]


@dataclass
class SimulationSummary:
    """Counts and the time range of a simulation."""

    n_sessions: int = 0
    n_users: int = 0
    n_decisions: int = 0
    n_events: int = 0
    events_by_type: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EVENT_TYPES, 0))
    first_ts: str = ""
    last_ts: str = ""

    def _add(self, log: StepLog) -> None:
        self.n_decisions += len(log)
        counts = {
            "impression": len(log),
            "click": int(log.click.sum()),
            "add_to_cart": int(log.cart.sum()),
            "purchase": int(log.purchase.sum()),
        }
        for k, v in counts.items():
            self.events_by_type[k] += v
        self.n_events += sum(counts.values())
        if len(log):
            last = np.max(np.maximum.reduce([log.ts, log.click_ts, log.cart_ts, log.purchase_ts]))
            first = _iso(int(log.ts.min()))
            if not self.first_ts or first < self.first_ts:
                self.first_ts = first
            last_s = _iso(int(last))
            if not self.last_ts or last_s > self.last_ts:
                self.last_ts = last_s


def _iso(ms: int) -> str:
    return str(np.datetime64(ms, "ms")) + "Z"


@dataclass(frozen=True)
class SimulatedLogs:
    """Events in the canonical raw schema (+ the online states when recorded)."""

    events: pa.Table
    summary: SimulationSummary
    states: RecordedStates | None = None

    def to_pandas(self) -> pd.DataFrame:
        return self.events.to_pandas()


@dataclass
class WriteSummary(SimulationSummary):
    """What :func:`write_logs` wrote."""

    out: Path = Path()
    files: list[Path] = field(default_factory=list)
    manifest: Path | None = None
    format: str = ""
    compress: str = ""
    partitioned: bool = False

    def lines(self) -> list[str]:
        """Human-readable report (used by ``offrec simulate``)."""
        kinds = ", ".join(f"{v:,} {k}" for k, v in self.events_by_type.items())
        shown = [str(p.relative_to(self.out)) for p in self.files]
        if len(shown) > 6:
            shown = shown[:3] + [f"... ({len(shown) - 6} more)"] + shown[-3:]
        codec = f", {self.compress}" if self.compress != "none" else ""
        return [
            f"wrote {len(self.files)} {self.format}{codec} file(s) to {self.out}"
            + (" (partitioned by date)" if self.partitioned else ""),
            *[f"  {s}" for s in shown],
            f"events: {self.n_events:,} ({kinds})",
            f"sessions: {self.n_sessions:,} of {self.n_users:,} users; "
            f"decisions: {self.n_decisions:,}",
            f"time range: {self.first_ts} .. {self.last_ts}",
            f"config: {self.manifest}",
        ]


def iter_blocks(
    world: World,
    n_sessions: int,
    seed: int,
    chooser: Chooser,
    *,
    setup: StateSetup | None = None,
    record_states: bool = False,
) -> Iterator[tuple[BlockPlan, StepLog]]:
    """Simulate block after block; blocks are independent (own random stream each)."""
    counts = allocate_sessions(world, n_sessions, seed)
    for block in range(n_blocks(world.cfg, counts.shape[0])):
        rng = np.random.default_rng([seed, 1, block])
        plan = plan_block(world, counts, block, rng)
        log = simulate_block(world, plan, rng, chooser, setup=setup, record_states=record_states)
        yield plan, log


def _run_settings(
    cfg: SimulatorConfig, n_sessions: int | None, seed: int | None
) -> tuple[int, int]:
    n = cfg.n_sessions if n_sessions is None else n_sessions
    s = cfg.seed if seed is None else seed
    try:
        dataclasses.replace(cfg, n_sessions=n, seed=s)
    except ValueError as exc:
        raise SimulatorError(str(exc)) from None
    return n, s


def simulate_events(
    config: SimulatorConfig | None = None,
    *,
    n_sessions: int | None = None,
    seed: int | None = None,
    record_states: bool = False,
    action_space: object | None = None,
    state_options: StateOptions | None = None,
) -> SimulatedLogs:
    """Simulate the behaviour policy's logs in memory.

    ``n_sessions``/``seed`` default to the config's. ``record_states=True`` also returns the
    raw state of every impression as the build would compute it for ``action_space`` (a
    ``sql.dataset.ActionSpace``, required then) and ``state_options`` (``last_k``,
    ``item_encoding``, ``lookback_days`` — the ``[build]`` settings). Recording states does not
    change the events.
    """
    cfg = config or SimulatorConfig()
    n, s = _run_settings(cfg, n_sessions, seed)
    world = World(cfg)
    setup = None
    if record_states:
        if action_space is None:
            raise SimulatorError(
                "record_states=True needs action_space= (the sql.dataset.ActionSpace the build "
                "uses), because states hold action ids"
            )
        resolved = resolve_action_space(world.catalog, action_space)
        setup = StateSetup(
            resolved.n_actions, resolved.item_action, state_options or StateOptions()
        )
    chooser = BehaviourChooser(world, RewardWeights())
    summary = SimulationSummary(n_sessions=n)
    tables, ids, states = [], [], []
    for plan, log in iter_blocks(world, n, s, chooser, setup=setup, record_states=record_states):
        table = events_table(log, plan, world.catalog)
        summary._add(log)
        tables.append(table)
        if record_states and log.states is not None:
            ids.append(impression_ids(log, plan).to_numpy(zero_copy_only=False))
            states.append(log.states)
    summary.n_users = n_users_for(cfg, n)
    events = pa.concat_tables(tables) if tables else RAW_SCHEMA.empty_table()
    events = events.sort_by([("ts", "ascending"), ("event_id", "ascending")])
    recorded = None
    if setup is not None:
        recorded = RecordedStates(
            np.concatenate(ids).astype(object),
            np.concatenate(states),
            feature_names(setup.n_actions, setup.opts),
        )
    return SimulatedLogs(events, summary, recorded)


# -------------------------------------------------------------------------------- files

_OUR_FILE = re.compile(r"^events\.(parquet|csv|jsonl)(\.gz)?$")
_OUR_PART = re.compile(r"^part-\d+\.(parquet|csv|jsonl)(\.gz)?$")
_OUR_DIR = re.compile(r"^dt=\d{4}-\d{2}-\d{2}$")
_STAGING = ".simulate-staging-"


def _is_ours(path: Path) -> bool:
    if path.name == MANIFEST_NAME or path.name.startswith(_STAGING):
        return True
    if path.is_file():
        return bool(_OUR_FILE.match(path.name))
    if path.is_dir() and _OUR_DIR.match(path.name):
        return all(p.is_file() and _OUR_PART.match(p.name) for p in path.iterdir())
    return False


def _previous_output(out: Path, overwrite: bool) -> list[Path]:
    if out.exists() and not out.is_dir():
        raise SimulatorError(f"--out {out}: exists and is not a directory")
    if not out.exists():
        return []
    entries = sorted(p for p in out.iterdir() if not p.name.startswith(_STAGING))
    others = [p.name for p in entries if not _is_ours(p)]
    if others:
        listed = ", ".join(others[:5]) + (" ..." if len(others) > 5 else "")
        raise SimulatorError(
            f"--out {out}: holds files offrec simulate did not write ({listed}); choose an "
            "empty or new directory"
        )
    if entries and not overwrite:
        raise SimulatorError(
            f"--out {out}: already holds simulated logs ({len(entries)} entries); pass "
            "--overwrite to replace them, or choose another directory"
        )
    return entries


def write_logs(
    out: Path | str,
    config: SimulatorConfig | None = None,
    *,
    n_sessions: int | None = None,
    seed: int | None = None,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> WriteSummary:
    """Simulate and stream the logs to ``out`` in the config's format/layout options.

    ``out`` must be new, empty, or hold only a previous simulation (then ``overwrite=True``
    replaces it). Files are written to a staging directory inside ``out`` and moved into place
    at the end, so a failure leaves the previous contents untouched.
    """
    cfg = config or SimulatorConfig()
    n, s = _run_settings(cfg, n_sessions, seed)
    cfg = dataclasses.replace(cfg, n_sessions=n, seed=s)
    out = Path(out)
    old = _previous_output(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    stage = out / f"{_STAGING}{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    drop = tuple(
        name
        for name, flag in (("session_id", cfg.drop_session_id), ("propensity", cfg.drop_propensity))
        if flag
    )
    writer = EventWriter(
        stage,
        fmt=cfg.format,
        compress=cfg.compress,
        partition_by_date=cfg.partition_by_date,
        schema=RAW_SCHEMA,
        drop=drop,
    )
    world = World(cfg)
    summary = WriteSummary(
        n_sessions=n,
        out=out,
        format=cfg.format,
        compress=cfg.compress,
        partitioned=cfg.partition_by_date,
    )
    chooser = BehaviourChooser(world, RewardWeights())
    done = 0
    try:
        for plan, log in iter_blocks(world, n, s, chooser):
            table = events_table(log, plan, world.catalog)
            writer.write(table)
            summary._add(log)
            done += plan.n_sessions
            if progress is not None:
                progress(f"simulated {done:,} / {n:,} sessions")
        writer.close()
        for path in old:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        for path in sorted(stage.iterdir()):
            path.rename(out / path.name)
        summary.files = sorted(out / p.relative_to(stage) for p in writer.files)
    finally:
        writer.close()
        shutil.rmtree(stage, ignore_errors=True)
    summary.n_users = n_users_for(cfg, n)
    summary.manifest = _write_manifest(out, cfg, summary)
    return summary


def _write_manifest(out: Path, cfg: SimulatorConfig, summary: WriteSummary) -> Path:
    from offrec.atomic import atomic_write_text
    from offrec.config import config_to_toml

    kinds = ", ".join(f"{v} {k}" for k, v in summary.events_by_type.items())
    text = (
        "# Written by offrec simulate: the effective [simulate] config of the logs in this\n"
        "# directory. Ground truth for policies learned from them must use this world:\n"
        "#   offrec.simulator.load_simulation_config(this file)\n"
        f"# {summary.n_sessions} sessions, {summary.n_users} users, {summary.n_events} events "
        f"({kinds}), {summary.first_ts} .. {summary.last_ts}\n"
        f"# files: {file_extension(cfg.format, cfg.compress)}, "
        f"{'partitioned by date' if cfg.partition_by_date else 'one file'}\n\n"
        "[simulate]\n" + config_to_toml(cfg)
    )
    return atomic_write_text(out / MANIFEST_NAME, text)


def load_simulation_config(path: Path | str) -> SimulatorConfig:
    """The ``[simulate]`` config of a simulation: its output directory or manifest file."""
    from offrec.config import load_config

    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.exists():
        raise SimulatorError(
            f"{path}: no simulation manifest; it is written by offrec simulate next to the logs"
        )
    return load_config(path).simulate
