"""Saving and loading trained models: ``<run_dir>/models/<name>/``.

Files of one model directory:

====================  ============================================================
``model.pt``          network and optimiser state dicts (d3rlpy's checkpoint layout)
``config.json``       algorithm, our ``[train]`` config, the input encoding, the exact
                      d3rlpy config (``LearnableConfigWithShape``, fitted scalers
                      included), versions
``feature_spec.json`` the :class:`sql.dataset.FeatureSpec` the model normalises with
``actions.json``      the :class:`sql.dataset.ActionSpace` (action id -> item mapping)
``dataset.json``      dataset version and the rows trained on
``metrics.json``      per-epoch validation metrics and losses
``offrec_model.json`` manifest: format tag, name, algorithm, SHA-256 of every file above
====================  ============================================================

Loading only accepts directories with our manifest, checks every checksum before reading,
and reads ``model.pt`` with ``torch.load(weights_only=True)`` (tensors and plain containers
only, no arbitrary pickled objects). ``expected_spec`` / ``expected_actions`` make loading fail
with a message naming what differs when the model does not fit the data at hand.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from offline_rl._d3 import d3rlpy_module, quiet
from offline_rl.algorithms import algorithm_spec, resolve_device
from offline_rl.encoding import StateEncoder
from offline_rl.errors import TrainError
from offline_rl.model import TrainedModel

__all__ = [
    "ModelInfo",
    "save_model",
    "load_model",
    "list_models",
    "model_dir",
    "MANIFEST",
    "FORMAT",
]

MANIFEST = "offrec_model.json"
FORMAT = "offrec-model"
FORMAT_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class ModelInfo:
    """What ``list_models`` reports about one saved model (no network is loaded)."""

    name: str
    algorithm: str
    kind: str
    dataset_version: str
    n_updates: int
    path: Path
    final_metrics: dict[str, Any]


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise TrainError(
            f"model name {name!r} is not valid: use letters, digits, '_', '.', '-' "
            f"(at most 64 characters, not starting with '.' or '-')"
        )


def model_dir(run_dir: Path | str, name: str) -> Path:
    """``<run_dir>/models/<name>`` (the name is validated: no path tricks)."""
    _check_name(name)
    return Path(run_dir) / "models" / name


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=_json_default, allow_nan=True) + "\n")


def save_model(model: TrainedModel, run_dir: Path | str) -> Path:
    """Write ``model`` under ``<run_dir>/models/<model.name>/``; returns that directory."""
    import torch

    d3 = d3rlpy_module()
    if model.algo.impl is None:
        raise TrainError(f"model {model.name!r} has no networks yet; train it before saving")
    target = model_dir(run_dir, model.name)
    target.mkdir(parents=True, exist_ok=True)
    manifest = target / MANIFEST
    if manifest.exists():
        manifest.unlink()  # a half-written directory must never look complete

    buf = io.BytesIO()
    model.algo.impl.save_model(buf)
    (target / "model.pt").write_bytes(buf.getvalue())
    from d3rlpy.base import LearnableConfigWithShape

    shaped = LearnableConfigWithShape(
        observation_shape=model.algo.impl.observation_shape,
        action_size=model.algo.impl.action_size,
        config=model.algo.config,
    )
    _write_json(
        target / "config.json",
        {
            "algorithm": model.algorithm,
            "train": model.train_config,
            "input": model.encoder.to_dict(),
            "d3rlpy": json.loads(shaped.serialize()),
            "d3rlpy_version": d3.__version__,
            "torch_version": torch.__version__,
        },
    )
    _write_json(target / "feature_spec.json", model.spec.to_dict())
    _write_json(
        target / "actions.json", {**model.actions.to_dict(), "n_actions": model.actions.n_actions}
    )
    _write_json(target / "dataset.json", {"version": model.dataset_version, **model.dataset_info})
    _write_json(target / "metrics.json", {"n_updates": model.n_updates, "epochs": model.metrics})
    files = [
        "model.pt",
        "config.json",
        "feature_spec.json",
        "actions.json",
        "dataset.json",
        "metrics.json",
    ]
    _write_json(
        manifest,
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": model.name,
            "algorithm": model.algorithm,
            "kind": model.kind,
            "dataset_version": model.dataset_version,
            "n_updates": model.n_updates,
            "created_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "files": {f: _sha256(target / f) for f in files},
        },
    )
    model.path = target
    return target


def _read_manifest(target: Path) -> dict[str, Any]:
    manifest = target / MANIFEST
    if not manifest.is_file():
        raise TrainError(
            f"{target}: not an offrec model directory (no {MANIFEST}); models are pickled "
            f"torch files and load only from offrec run directories (offrec train writes them)"
        )
    try:
        data = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TrainError(f"{manifest}: unreadable manifest ({exc}); re-run offrec train") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TrainError(f"{manifest}: not an offrec model manifest (format tag missing)")
    if data.get("format_version") != FORMAT_VERSION:
        raise TrainError(
            f"{manifest}: model format version {data.get('format_version')!r}; "
            f"this offrec reads version {FORMAT_VERSION}: retrain the model"
        )
    files = data.get("files")
    if not isinstance(files, dict) or "model.pt" not in files:
        raise TrainError(f"{manifest}: the file list is missing; re-run offrec train")
    for fname, digest in files.items():
        path = target / str(fname)
        if Path(str(fname)).name != fname or not path.is_file():
            raise TrainError(f"{target}: file {fname!r} listed in the manifest is missing")
        if path.resolve().parent != target.resolve():
            raise TrainError(f"{target}: {fname} points outside the model directory")
        if _sha256(path) != digest:
            raise TrainError(
                f"{path}: checksum differs from the one recorded when the model was saved; "
                f"refusing to load a modified model file (re-run offrec train)"
            )
    return data


def _action_diffs(saved: Any, expected: Any) -> list[str]:
    diffs = []
    if saved.n_actions != expected.n_actions:
        diffs.append(f"n_actions differs ({saved.n_actions} saved vs {expected.n_actions})")
    for i, (a, b) in enumerate(zip(saved.top_items, expected.top_items, strict=False)):
        if a != b:
            diffs.append(f"action {i} maps to item {a!r} in the model but {b!r} in the data")
            break
    if (
        set(saved.other_items) != set(expected.other_items)
        and saved.n_actions == expected.n_actions
    ):
        diffs.append(
            f"the other bucket differs ({len(saved.other_items)} vs "
            f"{len(expected.other_items)} items)"
        )
    return diffs


def load_model(
    run_dir: Path | str,
    name: str,
    expected_spec: Any = None,
    expected_actions: Any = None,
    device: str = "auto",
) -> TrainedModel:
    """Load ``<run_dir>/models/<name>``; check it fits ``expected_spec`` / ``expected_actions``.

    Raises :class:`TrainError` when the directory is not ours, a file was changed, or the
    feature spec / action mapping differ (the message lists the differences).
    """
    import torch

    from sql.dataset import ActionSpace, FeatureSpec

    run = Path(run_dir)
    if not run.is_dir():
        raise TrainError(f"run directory {run} does not exist")
    target = model_dir(run, name)
    if not target.is_dir():
        available = ", ".join(m.name for m in list_models(run)) or "none"
        raise TrainError(f"{run}: no model named {name!r} (models in this run: {available})")
    if not target.resolve().is_relative_to(run.resolve()):
        raise TrainError(f"{target}: resolves outside the run directory {run}; refusing")
    manifest = _read_manifest(target)

    def read(fname: str) -> Any:
        try:
            return json.loads((target / fname).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise TrainError(f"{target / fname}: unreadable ({exc})") from None

    try:
        spec = FeatureSpec.from_dict(read("feature_spec.json"))
        actions = ActionSpace.from_dict(read("actions.json"))
    except ValueError as exc:
        raise TrainError(
            f"{target}: stored feature spec / action space is invalid: {exc}"
        ) from None
    diffs = []
    if expected_spec is not None:
        diffs += [f"feature_spec: {d}" for d in spec.same_as(expected_spec)]
    if expected_actions is not None:
        diffs += [f"actions: {d}" for d in _action_diffs(actions, expected_actions)]
    if diffs:
        raise TrainError(
            f"model {name!r} in {run} does not fit this data: "
            + "; ".join(diffs)
            + ". Retrain on this dataset version, or evaluate on the version it was trained on "
            f"({manifest.get('dataset_version')!r})"
        )
    config = read("config.json")
    algorithm = str(config.get("algorithm", manifest.get("algorithm")))
    scale_index = config.get("input", {}).get("scale_index_features")
    if not isinstance(scale_index, bool):
        raise TrainError(
            f"{target / 'config.json'}: input.scale_index_features is missing; re-run offrec train"
        )
    kind = algorithm_spec(algorithm).kind
    d3rlpy_module()
    from d3rlpy.base import LearnableConfigWithShape

    if kind == "sac":  # registers our config type with d3rlpy's deserialiser
        from offline_rl.sac import sac_classes

        sac_classes()

    dev = resolve_device(device)
    with quiet():
        shaped = LearnableConfigWithShape.deserialize(json.dumps(config["d3rlpy"]))
        algo = shaped.config.create(device=dev)
        algo.create_impl(tuple(shaped.observation_shape), int(shaped.action_size))
    if int(shaped.action_size) != actions.n_actions or tuple(shaped.observation_shape) != (
        spec.dim,
    ):
        raise TrainError(
            f"{target}: network shape {tuple(shaped.observation_shape)} -> "
            f"{shaped.action_size} does not match the stored feature spec / actions"
        )
    with (target / "model.pt").open("rb") as fh:
        location = "cpu" if dev.startswith("cpu") else dev
        states = torch.load(fh, map_location=location, weights_only=True)
    modules = algo.impl.modules
    for f in dataclasses.fields(modules):
        part = getattr(modules, f.name)
        if part is None:  # e.g. sac's temperature optimiser with temp_learning_rate = 0
            continue
        if f.name not in states:
            raise TrainError(f"{target / 'model.pt'}: has no weights for {f.name!r}")
        part.load_state_dict(states[f.name])
    metrics = read("metrics.json")
    dataset = read("dataset.json")
    return TrainedModel(
        name=name,
        algorithm=algorithm,
        algo=algo,
        spec=spec,
        actions=actions,
        dataset_version=str(dataset.get("version", "")),
        train_config=dict(config.get("train", {})),
        metrics=list(metrics.get("epochs", [])),
        n_updates=int(metrics.get("n_updates", 0)),
        dataset_info={k: v for k, v in dataset.items() if k != "version"},
        path=target,
        encoder=StateEncoder(spec, scale_index),
    )


def list_models(run_dir: Path | str) -> list[ModelInfo]:
    """Every saved model of a run (directories with a manifest), sorted by name."""
    models = Path(run_dir) / "models"
    if not models.is_dir():
        return []
    out = []
    for manifest in sorted(models.glob(f"*/{MANIFEST}")):
        try:
            data = json.loads(manifest.read_text())
            metrics = json.loads((manifest.parent / "metrics.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            continue
        epochs = metrics.get("epochs") or [{}]
        out.append(
            ModelInfo(
                name=str(data.get("name")),
                algorithm=str(data.get("algorithm")),
                kind=str(data.get("kind")),
                dataset_version=str(data.get("dataset_version")),
                n_updates=int(data.get("n_updates", 0)),
                path=manifest.parent,
                final_metrics=dict(epochs[-1]),
            )
        )
    return out
