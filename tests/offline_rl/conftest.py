"""Shared fixtures: a tiny sequential MDP whose optimal policy is known.

State ``[unlocked, step]``; actions ``0 1 2`` plus ``other`` (3). Action 1 unlocks (reward 0),
action 2 pays 10 once unlocked (0 before), action 0 pays 1 always, ``other`` pays 0. Episodes
have 4 decisions. The logging policy plays 0 40% of the time and 1, 2, other 20% each,
so its favourite is 0 while the optimal policy plays 1 first, then 2.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from offline_rl.config import ALGORITHM_NAMES, TrainConfig
from sql.dataset import ActionSpace, FeatureSpec, Transitions

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

N_ACTIONS = 4
EPISODE_LEN = 4
BEHAVIOUR = np.array([0.4, 0.2, 0.2, 0.2])


def step_reward(unlocked: int, action: int) -> float:
    if action == 0:
        return 1.0
    if action == 2 and unlocked:
        return 10.0
    return 0.0


def make_mdp(
    n_episodes: int, seed: int, split: str = "train", timeout_every: int = 3
) -> Transitions:
    """Logged episodes of the tiny MDP; every ``timeout_every``-th episode ends in a timeout."""
    rng = np.random.default_rng(seed)
    states, acts, rewards, terms, touts, eps, steps, props = [], [], [], [], [], [], [], []
    for e in range(n_episodes):
        unlocked = 0
        for t in range(EPISODE_LEN):
            a = int(rng.choice(N_ACTIONS, p=BEHAVIOUR))
            states.append([unlocked, t])
            acts.append(a)
            rewards.append(step_reward(unlocked, a))
            last = t == EPISODE_LEN - 1
            timeout = last and e % timeout_every == timeout_every - 1
            terms.append(last and not timeout)
            touts.append(timeout)
            eps.append(f"{split}-{e}")
            steps.append(t)
            props.append(BEHAVIOUR[a])
            if a == 1:
                unlocked = 1
    n = len(acts)
    s = np.asarray(states, dtype=np.float32)
    nxt = np.zeros_like(s)
    nxt[:-1] = s[1:]
    nxt[np.asarray(terms) | np.asarray(touts)] = 0.0
    return Transitions(
        states=s,
        next_states=nxt,
        actions=np.asarray(acts, dtype=np.int64),
        rewards=np.asarray(rewards, dtype=np.float64),
        components={
            "r_click": np.zeros(n),
            "r_cart": np.zeros(n),
            "r_purchase": np.zeros(n),
            "r_revenue": np.zeros(n),
        },
        terminals=np.asarray(terms, dtype=bool),
        timeouts=np.asarray(touts, dtype=bool),
        episode_ids=np.asarray(eps, dtype=object),
        steps=np.asarray(steps, dtype=np.int64),
        propensities=np.asarray(props, dtype=np.float64),
        positions=np.zeros(n, dtype=np.int64),
        user_ids=np.asarray(eps, dtype=object),
        split=np.full(n, split, dtype=object),
        item_ids=np.asarray([f"item{a}" for a in acts], dtype=object),
        version="mdp-v1",
    )


def make_spec(train: Transitions) -> FeatureSpec:
    mean = train.states.mean(axis=0).astype(np.float64)
    std = train.states.std(axis=0).astype(np.float64)
    std[std == 0] = 1.0
    return FeatureSpec(
        names=("unlocked", "step"),
        kinds=("count", "count"),
        mean=mean,
        std=std,
        n_actions=N_ACTIONS,
        last_k=3,
        item_encoding="index",
    )


ACTIONS = ActionSpace(("item0", "item1", "item2"), ("item3", "item4"))

# states where the optimal action is known: locked at step 0 -> 1; unlocked at step 1 -> 2
PROBE_STATES = np.array([[0, 0], [1, 1], [1, 2]], dtype=np.float32)
OPTIMAL = np.array([1, 2, 2])


def small_config(**kw: object) -> TrainConfig:
    base = dict(
        algorithms=ALGORITHM_NAMES,
        n_steps=600,
        n_steps_per_epoch=300,
        batch_size=64,
        learning_rate=1e-3,
        gamma=0.9,
        target_update_interval=100,
        hidden_units=(32, 32),
        seed=0,
        device="cpu",
        threads=1,
        max_validation_rows=2000,
    )
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def mdp() -> tuple[Transitions, Transitions, FeatureSpec, ActionSpace]:
    train = make_mdp(600, seed=1)
    validation = make_mdp(150, seed=2, split="validation")
    return train, validation, make_spec(train), ACTIONS


@pytest.fixture(scope="session")
def trained(mdp: tuple, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Every algorithm (sac included) trained once on the tiny MDP (shared by several files)."""
    from offline_rl.train import train_algorithms

    train, validation, spec, actions = mdp
    run_dir = tmp_path_factory.mktemp("run") / "20260101T000000Z"
    models = train_algorithms(train, validation, spec, actions, small_config(), run_dir)
    return run_dir, models


@pytest.fixture(scope="session")
def tiny() -> SimpleNamespace:
    """The helpers above, for test modules (conftest cannot be imported under importlib)."""
    return SimpleNamespace(
        make_mdp=make_mdp,
        make_spec=make_spec,
        small_config=small_config,
        actions=ACTIONS,
        probe_states=PROBE_STATES,
        optimal=OPTIMAL,
        behaviour=BEHAVIOUR,
        n_actions=N_ACTIONS,
    )
