"""Datasets as numpy arrays: the containers every later stage reads, and their loaders.

:class:`Transitions` holds one dataset version (optionally one split) in episode/step order;
:class:`FeatureSpec` names the state columns and carries the train-split normalisation;
:class:`ActionSpace` maps items to action ids. ``load_transitions``, ``load_feature_spec`` and
``load_action_space`` read them back from the warehouse tables a build wrote (docs/design.md
§3, docs/datasets.md); ``version=None`` means the most recently built version. Each loader
takes an open DuckDB connection or the warehouse path (opened read-only).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sql.errors import BuildError
from sql.fetch import one

__all__ = [
    "ActionSpace",
    "FeatureSpec",
    "Transitions",
    "COMPONENTS",
    "SPLIT_NAMES",
    "load_transitions",
    "load_feature_spec",
    "load_action_space",
    "latest_version",
    "list_versions",
]

SPLIT_NAMES: tuple[str, ...] = ("train", "validation", "test")
COMPONENTS: tuple[str, ...] = ("r_click", "r_cart", "r_purchase", "r_revenue")


@dataclass(frozen=True)
class ActionSpace:
    """Action ids: ``0 .. n_top-1`` are ``top_items`` in order; ``other`` (= n_top) is the rest.

    ``other_items`` are the items known to fall in the ``other`` bucket; a policy choosing
    ``other`` shows one of them uniformly at random, so
    ``pi(item | s) = pi(other | s) / len(other_items)`` (docs/design.md §3).
    """

    top_items: tuple[str, ...]
    other_items: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(set(self.top_items)) != len(self.top_items):
            raise BuildError("action space top_items contain duplicates")
        overlap = set(self.top_items) & set(self.other_items)
        if overlap:
            raise BuildError(f"items both in top_items and other_items: {sorted(overlap)[:5]}")

    @property
    def n_actions(self) -> int:
        return len(self.top_items) + 1

    @property
    def other(self) -> int:
        return len(self.top_items)

    def action_of(self, items: np.ndarray | list[str]) -> np.ndarray:
        """(n,) item ids -> (n,) int64 action ids (unknown items -> ``other``)."""
        index = {item: i for i, item in enumerate(self.top_items)}
        return np.fromiter(
            (index.get(item, self.other) for item in items), dtype=np.int64, count=len(items)
        )

    def to_dict(self) -> dict[str, object]:
        return {"top_items": list(self.top_items), "other_items": list(self.other_items)}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ActionSpace:
        return cls(tuple(data["top_items"]), tuple(data.get("other_items", ())))  # type: ignore[arg-type]


@dataclass(frozen=True)
class FeatureSpec:
    """Names, kinds and train-split normalisation of the state vector.

    ``normalise(x) = (x - mean) / std`` column-wise; ``std`` is 1 where the train std was 0
    and for ``index``/``onehot`` features (mean 0).
    """

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    mean: np.ndarray  # (d,) float64
    std: np.ndarray  # (d,) float64
    n_actions: int
    last_k: int
    item_encoding: str

    def __post_init__(self) -> None:
        d = len(self.names)
        if len(self.kinds) != d or self.mean.shape != (d,) or self.std.shape != (d,):
            raise BuildError(
                f"feature_spec is inconsistent: {d} names, {len(self.kinds)} kinds, "
                f"mean {self.mean.shape}, std {self.std.shape}"
            )
        if np.any(self.std <= 0) or not np.all(np.isfinite(self.std)):
            raise BuildError("feature_spec std must be finite and > 0 for every feature")

    @property
    def dim(self) -> int:
        return len(self.names)

    def offset(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise BuildError(f"feature {name!r} is not in the feature_spec") from None

    def normalise(self, states: np.ndarray) -> np.ndarray:
        """(n, d) raw -> (n, d) float32 normalised with the train statistics."""
        states = np.asarray(states, dtype=np.float64)
        if states.ndim != 2 or states.shape[1] != self.dim:
            raise BuildError(f"expected states of shape (n, {self.dim}), got {states.shape}")
        return ((states - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict[str, object]:
        return {
            "names": list(self.names),
            "kinds": list(self.kinds),
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "n_actions": self.n_actions,
            "last_k": self.last_k,
            "item_encoding": self.item_encoding,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> FeatureSpec:
        try:
            return cls(
                names=tuple(data["names"]),  # type: ignore[arg-type]
                kinds=tuple(data["kinds"]),  # type: ignore[arg-type]
                mean=np.asarray(data["mean"], dtype=np.float64),
                std=np.asarray(data["std"], dtype=np.float64),
                n_actions=int(data["n_actions"]),  # type: ignore[arg-type]
                last_k=int(data["last_k"]),  # type: ignore[arg-type]
                item_encoding=str(data["item_encoding"]),
            )
        except KeyError as exc:
            raise BuildError(f"feature_spec is missing key {exc.args[0]!r}") from None

    def same_as(self, other: FeatureSpec) -> list[str]:
        """Human-readable differences (empty when compatible)."""
        diffs = []
        if self.names != other.names:
            diffs.append(f"feature names differ ({self.dim} vs {other.dim} features)")
        if self.n_actions != other.n_actions:
            diffs.append(f"n_actions differs ({self.n_actions} vs {other.n_actions})")
        if self.dim == other.dim and not (
            np.allclose(self.mean, other.mean) and np.allclose(self.std, other.std)
        ):
            diffs.append("normalisation statistics differ")
        return diffs


@dataclass(frozen=True)
class Transitions:
    """One dataset (or split) in episode/step order. ``n`` rows, state dimension ``d``."""

    states: np.ndarray  # (n, d) float32, raw
    next_states: np.ndarray  # (n, d) float32, zeros on each episode's last row
    actions: np.ndarray  # (n,) int64 in [0, n_actions)
    rewards: np.ndarray  # (n,) float64
    components: dict[str, np.ndarray]  # COMPONENTS -> (n,) float64
    terminals: np.ndarray  # (n,) bool
    timeouts: np.ndarray  # (n,) bool
    episode_ids: np.ndarray  # (n,) object (str)
    steps: np.ndarray  # (n,) int64
    propensities: np.ndarray  # (n,) float64, nan when unknown
    positions: np.ndarray  # (n,) int64
    user_ids: np.ndarray  # (n,) object (str)
    split: np.ndarray  # (n,) object: 'train' | 'validation' | 'test'
    item_ids: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))  # (n,) raw
    version: str = ""

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    @property
    def n_episodes(self) -> int:
        return int(len(np.unique(self.episode_ids)))

    @property
    def episode_index(self) -> np.ndarray:
        """(n,) int64 dense episode index 0..n_episodes-1 in order of first appearance."""
        _, first, inverse = np.unique(self.episode_ids, return_index=True, return_inverse=True)
        order = np.argsort(np.argsort(first))
        return order[inverse].astype(np.int64)

    @property
    def is_first(self) -> np.ndarray:
        """(n,) bool: the row is the first decision of its episode."""
        return self.steps == 0

    @property
    def is_last(self) -> np.ndarray:
        """(n,) bool: the row ends its episode (terminal or timeout)."""
        return self.terminals | self.timeouts

    def select(self, mask: np.ndarray) -> Transitions:
        """Rows where ``mask`` is true (keep whole episodes, e.g. a split)."""
        mask = np.asarray(mask, dtype=bool)
        return Transitions(
            states=self.states[mask],
            next_states=self.next_states[mask],
            actions=self.actions[mask],
            rewards=self.rewards[mask],
            components={k: v[mask] for k, v in self.components.items()},
            terminals=self.terminals[mask],
            timeouts=self.timeouts[mask],
            episode_ids=self.episode_ids[mask],
            steps=self.steps[mask],
            propensities=self.propensities[mask],
            positions=self.positions[mask],
            user_ids=self.user_ids[mask],
            split=self.split[mask],
            item_ids=self.item_ids[mask] if len(self.item_ids) else self.item_ids,
            version=self.version,
        )

    def for_split(self, name: str) -> Transitions:
        if name not in ("train", "validation", "test"):
            raise BuildError(f"split must be train, validation or test, got {name!r}")
        return self.select(self.split == name)


# --------------------------------------------------------------------------------------------
# loaders

ConOrPath = duckdb.DuckDBPyConnection | str | Path

_BATCH_ROWS = 262_144


@contextlib.contextmanager
def _open(con_or_path: ConOrPath) -> Iterator[duckdb.DuckDBPyConnection]:
    if isinstance(con_or_path, duckdb.DuckDBPyConnection):
        yield con_or_path
        return
    if not isinstance(con_or_path, str | Path):
        raise BuildError(
            f"expected a DuckDB connection or a warehouse path, got {type(con_or_path).__name__}"
        )
    path = Path(con_or_path)
    if not path.exists():
        raise BuildError(
            f"warehouse {path} does not exist; run `offrec ingest` and `offrec build` first"
        )
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise BuildError(f"cannot open warehouse {path} for reading: {exc}") from None
    try:
        yield con
    finally:
        con.close()


def _has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(
        one(
            con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = $t "
                "AND table_schema = current_schema()",
                {"t": table},
            )
        )[0]
    )


def _resolve(con: duckdb.DuckDBPyConnection, version: str | None) -> dict[str, Any]:
    if not _has_table(con, "dataset_versions"):
        raise BuildError("the warehouse has no datasets yet; run `offrec build` first")
    cols = "dataset_version, mode, n_actions, state_dim, last_k, item_encoding, created_at"
    if version is None:
        row = one(
            con.execute(
                f"SELECT {cols} FROM dataset_versions ORDER BY created_at DESC, dataset_version LIMIT 1"
            )
        )
        if row is None:
            raise BuildError("the warehouse has no datasets yet; run `offrec build` first")
    else:
        if not isinstance(version, str):
            raise BuildError(f"version must be a string like 'ds-1a2b3c4d5e6f', got {version!r}")
        row = one(
            con.execute(
                f"SELECT {cols} FROM dataset_versions WHERE dataset_version = $v", {"v": version}
            )
        )
        if row is None:
            known = [
                r[0]
                for r in con.execute(
                    "SELECT dataset_version FROM dataset_versions ORDER BY created_at DESC LIMIT 5"
                ).fetchall()
            ]
            raise BuildError(
                f"dataset version {version!r} is not in the warehouse; recent versions: "
                f"{', '.join(known) or 'none'}"
            )
    names = ("version", "mode", "n_actions", "state_dim", "last_k", "item_encoding", "created_at")
    return dict(zip(names, row, strict=True))


def latest_version(con_or_path: ConOrPath) -> str:
    """Id of the most recently built dataset version."""
    with _open(con_or_path) as con:
        return str(_resolve(con, None)["version"])


def list_versions(con_or_path: ConOrPath) -> list[dict[str, Any]]:
    """Every stored version, newest first: id, created_at, mode, sizes."""
    with _open(con_or_path) as con:
        if not _has_table(con, "dataset_versions"):
            return []
        cur = con.execute(
            "SELECT dataset_version AS version, created_at, mode, n_actions, state_dim, "
            "n_episodes, n_transitions FROM dataset_versions ORDER BY created_at DESC"
        )
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


def load_transitions(
    con_or_path: ConOrPath, version: str | None = None, split: str | None = None
) -> Transitions:
    """One dataset version (or one split of it) as numpy arrays.

    Rows come in chronological episode order (episode start, episode id) and step order, so
    every episode's rows are contiguous. ``states``/``next_states`` are the raw (n, d) float32
    vectors (next_states is zeros on each episode's last row); ``propensities`` is nan where
    unknown; ``positions`` is 0 where NULL (organic mode).
    """
    if split is not None and split not in SPLIT_NAMES:
        raise BuildError(f"split must be one of {', '.join(SPLIT_NAMES)} or None, got {split!r}")
    with _open(con_or_path) as con:
        meta = _resolve(con, version)
        v = meta["version"]
        d = int(meta["state_dim"])
        params: dict[str, Any] = {"v": v}
        where = "t.dataset_version = $v"
        if split is not None:
            where += " AND t.split = $split"
            params["split"] = split
        n = int(one(con.execute(f"SELECT count(*) FROM transitions AS t WHERE {where}", params))[0])
        out = _empty_arrays(n, d)
        reader = con.sql(
            f"""
            SELECT t.state, t.next_state, t.action, t.reward, t.r_click, t.r_cart,
                   t.r_purchase, t.r_revenue, t.terminal, t.timeout, t.episode_id, t.step,
                   t.propensity, coalesce(t.position, 0) AS position, t.user_id, t.split,
                   t.item_id
            FROM transitions AS t
            JOIN episodes AS e ON e.dataset_version = t.dataset_version
                              AND e.episode_id = t.episode_id
            WHERE {where}
            ORDER BY e.start_ts, t.episode_id, t.step
            """,
            params=params,
        ).to_arrow_reader(_BATCH_ROWS)
        at = 0
        for batch in reader:
            m = batch.num_rows
            if at + m > n:
                raise BuildError(f"dataset {v}: transitions changed while loading; retry")
            _fill(out, batch, at, d, v)
            at += m
        if at != n:
            raise BuildError(
                f"dataset {v}: {n - at} transitions have no episodes row; the dataset is "
                "damaged, rebuild it with `offrec build`"
            )
    return Transitions(
        states=out["state"],
        next_states=out["next_state"],
        actions=out["action"],
        rewards=out["reward"],
        components={c: out[c] for c in COMPONENTS},
        terminals=out["terminal"],
        timeouts=out["timeout"],
        episode_ids=out["episode_id"],
        steps=out["step"],
        propensities=out["propensity"],
        positions=out["position"],
        user_ids=out["user_id"],
        split=out["split"],
        item_ids=out["item_id"],
        version=str(v),
    )


def _empty_arrays(n: int, d: int) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {
        "state": np.zeros((n, d), dtype=np.float32),
        "next_state": np.zeros((n, d), dtype=np.float32),
        "action": np.empty(n, dtype=np.int64),
        "reward": np.empty(n, dtype=np.float64),
        "terminal": np.empty(n, dtype=bool),
        "timeout": np.empty(n, dtype=bool),
        "episode_id": np.empty(n, dtype=object),
        "step": np.empty(n, dtype=np.int64),
        "propensity": np.empty(n, dtype=np.float64),
        "position": np.empty(n, dtype=np.int64),
        "user_id": np.empty(n, dtype=object),
        "split": np.empty(n, dtype=object),
        "item_id": np.empty(n, dtype=object),
    }
    for c in COMPONENTS:
        arrays[c] = np.empty(n, dtype=np.float64)
    return arrays


def _vectors(column: pa.ChunkedArray | pa.Array, d: int, version: str) -> tuple[np.ndarray, ...]:
    """(values (k, d) of the non-null rows, mask of non-null rows)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    valid = np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    if np.any(lengths[valid] != d):
        bad = int(lengths[valid][lengths[valid] != d][0])
        raise BuildError(
            f"dataset {version}: a state vector has {bad} values, expected {d}; rebuild the dataset"
        )
    flat = pc.list_flatten(column).to_numpy(zero_copy_only=False)
    return flat.astype(np.float32, copy=False).reshape(-1, d), valid


def _fill(out: dict[str, np.ndarray], batch: pa.RecordBatch, at: int, d: int, v: str) -> None:
    m = batch.num_rows
    sl = slice(at, at + m)
    for name in ("state", "next_state"):
        values, valid = _vectors(batch.column(name), d, v)
        if name == "state" and not valid.all():
            raise BuildError(f"dataset {v}: a transition has no state; rebuild the dataset")
        out[name][sl][valid] = values
    for name in ("action", "step", "position"):
        out[name][sl] = batch.column(name).to_numpy(zero_copy_only=False).astype(np.int64)
    for name in ("reward", *COMPONENTS):
        out[name][sl] = batch.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
    for name in ("terminal", "timeout"):
        out[name][sl] = batch.column(name).to_numpy(zero_copy_only=False).astype(bool)
    prop = batch.column("propensity").cast(pa.float64())
    out["propensity"][sl] = prop.fill_null(float("nan")).to_numpy(zero_copy_only=False)
    for name in ("episode_id", "user_id", "split", "item_id"):
        out[name][sl] = np.asarray(batch.column(name).to_pylist(), dtype=object)


def load_feature_spec(con_or_path: ConOrPath, version: str | None = None) -> FeatureSpec:
    """The version's state layout and train-split normalisation statistics."""
    with _open(con_or_path) as con:
        meta = _resolve(con, version)
        rows = con.execute(
            'SELECT name, "offset", kind, mean, std FROM feature_spec '
            'WHERE dataset_version = $v ORDER BY "offset"',
            {"v": meta["version"]},
        ).fetchall()
    if len(rows) != int(meta["state_dim"]) or [r[1] for r in rows] != list(range(len(rows))):
        raise BuildError(
            f"dataset {meta['version']}: feature_spec has {len(rows)} rows for a state of "
            f"{meta['state_dim']} values; rebuild the dataset"
        )
    return FeatureSpec(
        names=tuple(r[0] for r in rows),
        kinds=tuple(r[2] for r in rows),
        mean=np.asarray([r[3] for r in rows], dtype=np.float64),
        std=np.asarray([r[4] for r in rows], dtype=np.float64),
        n_actions=int(meta["n_actions"]),
        last_k=int(meta["last_k"]),
        item_encoding=str(meta["item_encoding"]),
    )


def load_action_space(con_or_path: ConOrPath, version: str | None = None) -> ActionSpace:
    """The version's action space: top items in action order and the ``other`` items."""
    with _open(con_or_path) as con:
        meta = _resolve(con, version)
        v = {"v": meta["version"]}
        top = con.execute(
            "SELECT action, item_id FROM actions WHERE dataset_version = $v AND NOT is_other "
            "ORDER BY action",
            v,
        ).fetchall()
        other = con.execute(
            "SELECT item_id FROM item_actions WHERE dataset_version = $v AND is_other "
            "ORDER BY item_id",
            v,
        ).fetchall()
    if [a for a, _ in top] != list(range(len(top))) or len(top) + 1 != int(meta["n_actions"]):
        raise BuildError(
            f"dataset {meta['version']}: actions table is inconsistent ({len(top)} named "
            f"actions for n_actions = {meta['n_actions']}); rebuild the dataset"
        )
    return ActionSpace(tuple(str(i) for _, i in top), tuple(str(r[0]) for r in other))
