"""Train the configured algorithms on a dataset's train split and save them.

Our loop drives d3rlpy's own networks, losses and optimisers (``algo.impl.update``) but feeds
them mini-batches gathered from pre-built tensors (:class:`offline_rl.data.TransitionTensors`)
rather than d3rlpy's per-transition replay-buffer loop, and, for DQN / Double DQN / CQL with
mean Q-functions, uses the pass-sharing updates of :mod:`offline_rl.fused`. Every run:

* trains exactly ``n_steps`` updates per algorithm (the last epoch may be shorter; d3rlpy's
  ``fit`` would silently train zero steps when ``n_steps < n_steps_per_epoch``);
* is seeded: network initialisation (``torch.manual_seed(seed)`` before each algorithm) and
  mini-batch sampling (a torch generator seeded with ``seed``) — the same config and data give
  the same weights on CPU, whichever other algorithms are trained in the same run;
* scores each epoch on the validation split (:mod:`offline_rl.validation`) and appends the
  metrics to ``<run_dir>/models/<name>/metrics.jsonl`` as it goes;
* writes nothing outside ``run_dir`` (no ``d3rlpy_logs/``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from offline_rl._d3 import quiet
from offline_rl.algorithms import (
    algorithm_spec,
    auto_reward_scale,
    build_d3rlpy_config,
    resolve_device,
)
from offline_rl.artifacts import model_dir, save_model
from offline_rl.config import TrainConfig, resolve_threads
from offline_rl.data import TransitionTensors, check_transitions, make_generator, to_mdp_dataset
from offline_rl.encoding import StateEncoder
from offline_rl.errors import TrainError
from offline_rl.fused import accelerate
from offline_rl.model import TrainedModel
from offline_rl.progress import TrainProgress, as_progress
from offline_rl.validation import ValidationSample, epoch_metrics, prepare_validation

__all__ = ["train_algorithms", "train_one", "create_learner", "run_updates"]

_ADVANCE_EVERY = 50


def train_algorithms(
    train: Any,
    validation: Any | None,
    spec: Any,
    actions: Any,
    cfg: TrainConfig,
    run_dir: Path,
    progress: TrainProgress | Callable[[str], None] | None = None,
) -> dict[str, TrainedModel]:
    """Train every algorithm of ``cfg.algorithms``; save each under ``run_dir/models/<name>/``.

    ``train`` / ``validation`` are :class:`sql.dataset.Transitions` (validation may be None or
    empty: the per-epoch metrics then use a sample of the train split and say so);
    ``spec`` is the dataset's :class:`~sql.dataset.FeatureSpec` and ``actions`` its
    :class:`~sql.dataset.ActionSpace`. ``progress`` is a
    :class:`~offline_rl.progress.TrainProgress` or a ``str -> None`` callable (one message per
    epoch). Returns ``{name: TrainedModel}`` in config order.
    """
    import torch

    if not isinstance(cfg, TrainConfig):
        raise TrainError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
    if spec.n_actions != actions.n_actions:
        raise TrainError(
            f"feature_spec says {spec.n_actions} actions but the action space has "
            f"{actions.n_actions}; load both from the same dataset version"
        )
    n_actions = actions.n_actions
    check_transitions(train, n_actions, spec.dim, "train")
    if validation is not None and len(validation) > 0:
        check_transitions(validation, n_actions, spec.dim, "validation")
    run_dir = Path(run_dir)
    progress = as_progress(progress)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(resolve_threads(cfg.threads))
    try:
        device = resolve_device(cfg.device)
        encoder = StateEncoder(spec, cfg.scale_index_features)
        tensors = TransitionTensors.build(train, encoder, n_actions, device)
        sample = prepare_validation(
            validation, train, n_actions, actions, cfg.max_validation_rows, cfg.seed
        )
        results: dict[str, TrainedModel] = {}
        mdp_cache: dict[str, Any] = {}
        for name in cfg.algorithms:
            model = train_one(
                name,
                train,
                tensors,
                sample,
                spec,
                actions,
                cfg,
                run_dir,
                device=device,
                progress=progress,
                mdp_cache=mdp_cache,
            )
            save_model(model, run_dir)
            results[name] = model
        return results
    finally:
        torch.set_num_threads(previous_threads)


def create_learner(
    name: str, cfg: TrainConfig, dim: int, n_actions: int, device: str, reward_scale: float = 1.0
) -> Any:
    """A built d3rlpy learner for ``name`` (seeded init), switched to the fused update."""
    import torch

    d3_config = build_d3rlpy_config(name, cfg, reward_scale)
    torch.manual_seed(cfg.seed)
    with quiet():
        algo = d3_config.create(device=device)
        algo.create_impl((dim,), n_actions)
    accelerate(algo)
    return algo


def run_updates(
    algo: Any,
    tensors: TransitionTensors,
    n: int,
    generator: Any,
    *,
    td: bool,
    on_step: Callable[[int], None] | None = None,
) -> dict[str, float]:
    """``n`` gradient updates; returns the mean of each loss over them.

    ``on_step(k)`` is called every few updates with the number done so far in this call.
    """
    impl = algo.impl
    batch_size = algo.config.batch_size
    sums: dict[str, float] = {}
    for k in range(1, n + 1):
        batch = tensors.sample(batch_size, generator, td=td)
        losses = impl.update(batch, algo.grad_step)
        algo.set_grad_step(algo.grad_step + 1)
        for key, value in losses.items():
            sums[key] = sums.get(key, 0.0) + value
        if on_step is not None and k % _ADVANCE_EVERY == 0:
            on_step(k)
    return {key: total / max(n, 1) for key, total in sums.items()}


def train_one(
    name: str,
    train: Any,
    tensors: TransitionTensors,
    sample: ValidationSample,
    spec: Any,
    actions: Any,
    cfg: TrainConfig,
    run_dir: Path,
    *,
    device: str,
    progress: TrainProgress | None = None,
    mdp_cache: dict[str, Any] | None = None,
) -> TrainedModel:
    """Train one algorithm (not saved: :func:`train_algorithms` saves)."""
    kind = algorithm_spec(name).kind
    scale = auto_reward_scale(train.rewards, cfg.reward_scale)
    encoder = tensors.encoder or StateEncoder(spec, cfg.scale_index_features)
    algo = create_learner(name, cfg, spec.dim, actions.n_actions, device, scale)
    tensors = _with_scalers(algo, tensors, train, encoder, actions.n_actions, mdp_cache)
    generator = make_generator(cfg.seed, device)
    target = model_dir(run_dir, name)
    target.mkdir(parents=True, exist_ok=True)
    log_path = target / "metrics.jsonl"
    log_path.write_text("")
    model = TrainedModel(
        name=name,
        algorithm=name,
        algo=algo,
        spec=spec,
        encoder=encoder,
        actions=actions,
        dataset_version=str(getattr(train, "version", "") or ""),
        train_config=_plain(cfg),
        dataset_info={
            "train_rows": len(train),
            "train_episodes": int(train.n_episodes),
            "td_rows": int(tensors.td_rows.shape[0]),
            "timeout_rows_without_next_state": tensors.n_timeout_rows,
            "validation_split": sample.split,
            "validation_rows_scored": int(sample.actions.shape[0]),
        },
    )
    if progress is not None:
        progress.start(name, cfg.n_steps)
    done = 0
    epoch = 0
    t0 = time.perf_counter()
    while done < cfg.n_steps:
        epoch += 1
        n = min(cfg.n_steps_per_epoch, cfg.n_steps - done)
        base = done
        t_epoch = time.perf_counter()
        losses = run_updates(
            algo,
            tensors,
            n,
            generator,
            td=kind != "bc",
            on_step=(lambda k, b=base: progress.advance(name, b + k)) if progress else None,
        )
        elapsed = time.perf_counter() - t_epoch
        done += n
        bad = [k for k, v in losses.items() if not math.isfinite(v)]
        if bad:
            raise TrainError(
                f"{name} diverged in epoch {epoch} (step {done}): {bad[0]} is {losses[bad[0]]}; "
                f"lower [train] learning_rate or check the rewards for extreme values"
            )
        metrics = {
            "epoch": epoch,
            "step": done,
            "updates_per_s": n / max(elapsed, 1e-9),
            **{f"loss_{k}": v for k, v in losses.items()},
            **epoch_metrics(model, sample, gamma=algo.config.gamma, ips_epsilon=cfg.ips_epsilon),
        }
        model.metrics.append(metrics)
        with log_path.open("a") as fh:
            fh.write(json.dumps(metrics) + "\n")
        if progress is not None:
            progress.epoch(name, metrics)
    model.n_updates = int(algo.grad_step)
    model.dataset_info["train_seconds"] = round(time.perf_counter() - t0, 3)
    if progress is not None:
        progress.finish(name)
    if model.n_updates != cfg.n_steps:
        raise TrainError(f"{name}: trained {model.n_updates} updates, expected {cfg.n_steps}")
    return model


def _with_scalers(
    algo: Any,
    tensors: TransitionTensors,
    train: Any,
    spec: Any,
    n_actions: int,
    mdp_cache: dict[str, Any] | None,
) -> TransitionTensors:
    """Fit configured d3rlpy scalers (on an MDPDataset of train) and apply them to a copy."""
    obs_scaler = algo.config.observation_scaler
    rew_scaler = algo.config.reward_scaler
    if obs_scaler is None and rew_scaler is None:
        return tensors
    if not all(s.built for s in (obs_scaler, rew_scaler) if s is not None):
        cache = mdp_cache if mdp_cache is not None else {}
        if "mdp" not in cache:
            cache["mdp"] = to_mdp_dataset(train, spec, n_actions)
        from d3rlpy.algos.utility import build_scalers_with_transition_picker

        with quiet():
            build_scalers_with_transition_picker(algo, cache["mdp"])
    scaled = dataclasses.replace(tensors, _cache={})
    scaled.apply_scalers(obs_scaler, rew_scaler)
    return scaled


def _plain(cfg: TrainConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out
