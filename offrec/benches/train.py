"""``offrec bench train``: gradient updates per second, DQN, discrete CQL and ``sac``.

Input (scale 1): 50,000 transitions (episodes of 10), 32 state features, 50 actions; our
default network (two hidden layers of 256, ReLU), batch 256, Adam, Huber TD loss, target sync
every 1000 updates; 400 updates per repetition (``--scale`` multiplies both sizes). ``sac`` has
an actor and two critics of that size, a learned temperature and its CQL penalty (defaults of
``[train.sac]``).

* ours — ``offline_rl.train.run_updates``: d3rlpy's networks and optimiser, mini-batches
  gathered from pre-built tensors, pass-sharing DQN/CQL updates (``offline_rl.fused``);
* plain torch — the same network, batch, loss and optimiser written as a bare PyTorch loop
  (the reference the brief asks us to reach 0.8x of); for ``sac``, :class:`PlainSACLoop`;
* d3rlpy fit — stock d3rlpy 2.8.1: ``algo.fit(MDPDataset, ...)`` with its replay buffer and
  no logging (what a d3rlpy user runs). For ``sac`` that is d3rlpy's own ``DiscreteSAC``
  with the same shared settings: it has no conservative penalty, so it does slightly less
  work per update than ours (one logsumexp over the critics' outputs).

Every contender builds its networks untimed in ``setup``; ``run`` times the updates only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from offrec.bench import BenchOptions, BenchSuite, Comparison, Contender

__all__ = ["suite", "make_transitions", "PlainLoop", "PlainSACLoop"]

N_FEATURES = 32
N_ACTIONS = 50
EPISODE_LEN = 10
BATCH = 256
HIDDEN = (256, 256)
LR = 3e-4
GAMMA = 0.95
TARGET_EVERY = 1000
CQL_ALPHA = 1.0
N_CRITICS = 2


def make_transitions(n: int, seed: int) -> tuple[Any, Any, Any]:
    """Synthetic (Transitions, FeatureSpec, ActionSpace) in episode/step order."""
    from sql.dataset import ActionSpace, FeatureSpec, Transitions

    rng = np.random.default_rng(seed)
    n = max(EPISODE_LEN, n - n % EPISODE_LEN)
    states = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    steps = np.tile(np.arange(EPISODE_LEN), n // EPISODE_LEN)
    last = steps == EPISODE_LEN - 1
    episode = np.repeat(np.arange(n // EPISODE_LEN), EPISODE_LEN).astype(str).astype(object)
    popularity = np.exp(rng.normal(size=N_ACTIONS))
    actions = rng.choice(N_ACTIONS, size=n, p=popularity / popularity.sum())
    zeros = np.zeros(n)
    tr = Transitions(
        states=states,
        next_states=np.where(last[:, None], 0.0, np.roll(states, -1, axis=0)).astype(np.float32),
        actions=actions.astype(np.int64),
        rewards=(rng.random(n) < 0.1).astype(np.float64),
        components={"r_click": zeros, "r_cart": zeros, "r_purchase": zeros, "r_revenue": zeros},
        terminals=last,
        timeouts=np.zeros(n, dtype=bool),
        episode_ids=episode,
        steps=steps.astype(np.int64),
        propensities=np.full(n, np.nan),
        positions=np.zeros(n, dtype=np.int64),
        user_ids=episode,
        split=np.full(n, "train", dtype=object),
        version="bench",
    )
    spec = FeatureSpec(
        names=tuple(f"f{i}" for i in range(N_FEATURES)),
        kinds=("numeric",) * N_FEATURES,
        mean=np.zeros(N_FEATURES),
        std=np.ones(N_FEATURES),
        n_actions=N_ACTIONS,
        last_k=3,
        item_encoding="index",
    )
    space = ActionSpace(tuple(f"item{i}" for i in range(N_ACTIONS - 1)))
    return tr, spec, space


@dataclass
class PlainLoop:
    """A bare PyTorch DQN / Double-DQN+CQL loop on the same tensors, network and loss."""

    tensors: Any
    cql: bool
    seed: int
    net: Any = None
    target: Any = None
    optim: Any = None
    generator: Any = None
    _step: int = field(default=0)

    def setup(self) -> None:
        import torch

        torch.manual_seed(self.seed)
        self.net, self.target = _mlp(N_ACTIONS), _mlp(N_ACTIONS)
        self.target.load_state_dict(self.net.state_dict())
        self.optim = torch.optim.Adam(self.net.parameters(), lr=LR)
        self.generator = torch.Generator().manual_seed(self.seed)
        self._step = 0

    def run(self, n_updates: int) -> dict[str, Any]:
        import torch
        import torch.nn.functional as F

        t = self.tensors
        actions = t.actions.long().view(-1)
        rewards, terminals = t.rewards.view(-1), t.terminals.view(-1)
        pool = t.td_rows
        loss = torch.zeros(())
        for _ in range(n_updates):
            idx = pool[torch.randint(0, pool.shape[0], (BATCH,), generator=self.generator)]
            obs, nxt, act = t.observations[idx], t.next_observations[idx], actions[idx]
            with torch.no_grad():
                q_next = self.target(nxt)
                if self.cql:  # Double DQN target, as d3rlpy's discrete CQL
                    best = self.net(nxt).argmax(dim=1, keepdim=True)
                else:
                    best = q_next.argmax(dim=1, keepdim=True)
                y = rewards[idx] + GAMMA * q_next.gather(1, best).squeeze(1) * (
                    1.0 - terminals[idx]
                )
            q_all = self.net(obs)
            q_taken = q_all.gather(1, act.view(-1, 1)).squeeze(1)
            loss = F.smooth_l1_loss(q_taken, y)
            if self.cql:
                loss = loss + CQL_ALPHA * (torch.logsumexp(q_all, dim=1) - q_taken).mean()
            self.optim.zero_grad()
            loss.backward()
            self.optim.step()
            if self._step % TARGET_EVERY == 0:
                self.target.load_state_dict(self.net.state_dict())
            self._step += 1
        return {"updates": n_updates, "last_loss": float(loss.detach())}


def _mlp(out: int) -> Any:
    """Our default network: ``N_FEATURES`` -> hidden layers with ReLU -> ``out``."""
    from torch import nn

    layers: list[nn.Module] = []
    width = N_FEATURES
    for units in HIDDEN:
        layers += [nn.Linear(width, units), nn.ReLU()]
        width = units
    layers.append(nn.Linear(width, out))
    return nn.Sequential(*layers)


@dataclass
class PlainSACLoop:
    """A bare PyTorch conservative discrete SAC loop (the maths of :mod:`offline_rl.sac`).

    Twin critics with a hard-synced target copy, a categorical actor, a learned temperature
    with target entropy ``target_entropy_ratio * log A`` and the CQL penalty
    ``conservative_weight * sum_e mean_b [logsumexp_a Q_e - Q_e(s, a_b)]``.
    """

    tensors: Any
    seed: int
    conservative_weight: float
    target_entropy_ratio: float
    nets: dict[str, Any] = field(default_factory=dict)
    _step: int = field(default=0)

    def setup(self) -> None:
        import torch
        from torch import nn

        torch.manual_seed(self.seed)
        critics = nn.ModuleList([_mlp(N_ACTIONS) for _ in range(N_CRITICS)])
        targets = nn.ModuleList([_mlp(N_ACTIONS) for _ in range(N_CRITICS)])
        targets.load_state_dict(critics.state_dict())
        actor = _mlp(N_ACTIONS)
        log_temp = nn.Parameter(torch.zeros(1, 1))
        self.nets = {
            "critics": critics,
            "targets": targets,
            "actor": actor,
            "log_temp": log_temp,
            "critic_optim": torch.optim.Adam(critics.parameters(), lr=LR),
            "actor_optim": torch.optim.Adam(actor.parameters(), lr=LR),
            "temp_optim": torch.optim.Adam([log_temp], lr=LR),
            "generator": torch.Generator().manual_seed(self.seed),
        }
        self._step = 0

    def run(self, n_updates: int) -> dict[str, Any]:
        import math

        import torch
        import torch.nn.functional as F

        t, n = self.tensors, self.nets
        critics, targets, actor, log_temp = n["critics"], n["targets"], n["actor"], n["log_temp"]
        actions = t.actions.long().view(-1)
        rewards, terminals = t.rewards.view(-1, 1), t.terminals.view(-1, 1)
        pool = t.td_rows
        entropy_target = self.target_entropy_ratio * math.log(N_ACTIONS)
        loss = torch.zeros(())
        for _ in range(n_updates):
            idx = pool[torch.randint(0, pool.shape[0], (BATCH,), generator=n["generator"])]
            obs, nxt, act = t.observations[idx], t.next_observations[idx], actions[idx]
            temp = log_temp.detach().exp()
            with torch.no_grad():
                log_pi_next = F.log_softmax(actor(nxt), dim=1)
                q_next = torch.min(torch.stack([q(nxt) for q in targets]), dim=0).values
                v_next = (log_pi_next.exp() * (q_next - temp * log_pi_next)).sum(1, keepdim=True)
                y = rewards[idx] + GAMMA * v_next * (1.0 - terminals[idx])
            qs = torch.stack([q(obs) for q in critics])
            q_taken = qs.gather(2, act.view(1, -1, 1).expand(N_CRITICS, -1, 1))
            loss = F.smooth_l1_loss(q_taken, y.unsqueeze(0).expand_as(q_taken)) * N_CRITICS
            penalty = (torch.logsumexp(qs, dim=2, keepdim=True) - q_taken).mean() * N_CRITICS
            loss = loss + self.conservative_weight * penalty
            n["critic_optim"].zero_grad()
            loss.backward()
            n["critic_optim"].step()
            with torch.no_grad():
                q_now = torch.min(torch.stack([q(obs) for q in critics]), dim=0).values
            log_pi = F.log_softmax(actor(obs), dim=1)
            pi = log_pi.exp()
            gap = ((pi * log_pi).sum(1, keepdim=True) + entropy_target).detach()
            temp_loss = -(log_temp.exp() * gap).mean()
            n["temp_optim"].zero_grad()
            temp_loss.backward()
            n["temp_optim"].step()
            actor_loss = (pi * (log_temp.detach().exp() * log_pi - q_now)).sum(1).mean()
            n["actor_optim"].zero_grad()
            actor_loss.backward()
            n["actor_optim"].step()
            self._step += 1
            if self._step % TARGET_EVERY == 0:
                targets.load_state_dict(critics.state_dict())
        return {"updates": n_updates, "last_loss": float(loss.detach())}


def suite(opts: BenchOptions) -> BenchSuite:
    import torch

    from offline_rl._d3 import d3rlpy_module, quiet
    from offline_rl.algorithms import build_d3rlpy_config
    from offline_rl.config import ALGORITHM_DEFAULTS, TrainConfig, resolve_threads
    from offline_rl.data import TransitionTensors, make_generator, to_mdp_dataset
    from offline_rl.train import create_learner, run_updates

    d3 = d3rlpy_module()
    previous_threads = torch.get_num_threads()
    threads = resolve_threads(0)
    torch.set_num_threads(threads)
    n_rows = max(1000, int(50_000 * opts.scale))
    n_updates = max(20, int(400 * opts.scale))
    tr, spec, space = make_transitions(n_rows, opts.seed)
    tensors = TransitionTensors.build(tr, spec, N_ACTIONS, "cpu:0")
    mdp = to_mdp_dataset(tr, spec, N_ACTIONS)

    comparisons = []
    sac_defaults = ALGORITHM_DEFAULTS["sac"]
    for name, label in (("dqn", "DQN"), ("cql", "discrete CQL"), ("sac", "conservative SAC")):
        cfg = TrainConfig(
            algorithms=(name,),
            batch_size=BATCH,
            learning_rate=LR,
            gamma=GAMMA,
            target_update_interval=TARGET_EVERY,
            hidden_units=HIDDEN,
            seed=opts.seed,
            device="cpu",
            threads=threads,
            **({"cql": {"alpha": CQL_ALPHA}} if name == "cql" else {}),
        )
        ours_state: dict[str, Any] = {}

        def ours_setup(
            name: str = name, cfg: TrainConfig = cfg, state: dict[str, Any] = ours_state
        ) -> None:
            state["algo"] = create_learner(name, cfg, N_FEATURES, N_ACTIONS, "cpu:0")
            state["gen"] = make_generator(opts.seed, "cpu:0")

        def ours_run(state: dict[str, Any] = ours_state) -> dict[str, Any]:
            losses = run_updates(state["algo"], tensors, n_updates, state["gen"], td=True)
            return {
                "updates": n_updates,
                "mean_loss": losses.get("loss", losses.get("critic_loss")),
            }

        plain: PlainLoop | PlainSACLoop
        if name == "sac":
            plain = PlainSACLoop(
                tensors,
                seed=opts.seed,
                conservative_weight=float(sac_defaults["conservative_weight"]),
                target_entropy_ratio=float(sac_defaults["target_entropy_ratio"]),
            )
        else:
            plain = PlainLoop(tensors, cql=name == "cql", seed=opts.seed)
        stock_state: dict[str, Any] = {}

        def stock_setup(
            name: str = name, cfg: TrainConfig = cfg, state: dict[str, Any] = stock_state
        ) -> None:
            torch.manual_seed(opts.seed)
            config = build_d3rlpy_config(name, cfg)
            if name == "sac":  # d3rlpy's own DiscreteSAC with the same shared settings
                stock_fields = dataclasses.fields(d3.algos.DiscreteSACConfig)
                config = d3.algos.DiscreteSACConfig(
                    **{f.name: getattr(config, f.name) for f in stock_fields}
                )
            with quiet():
                state["algo"] = config.create(device="cpu:0")
                state["algo"].build_with_dataset(mdp)

        def stock_run(state: dict[str, Any] = stock_state) -> dict[str, Any]:
            from d3rlpy.logging import NoopAdapterFactory

            with quiet():
                state["algo"].fit(
                    mdp,
                    n_steps=n_updates,
                    n_steps_per_epoch=n_updates,
                    logger_adapter=NoopAdapterFactory(),
                    show_progress=False,
                    with_timestamp=False,
                )
            return {"updates": int(state["algo"].grad_step)}

        comparisons.append(
            Comparison(
                name=f"{name} updates",
                ours=Contender("ours (offline_rl)", ours_run, ours_setup),
                baselines=(
                    Contender("plain torch loop", lambda p=plain: p.run(n_updates), plain.setup),
                    Contender("d3rlpy fit (stock)", stock_run, stock_setup),
                ),
                n_items=float(n_updates),
                unit="updates",
                goal=f"{label}: ours >= 0.8x the plain torch loop's updates/s "
                f"(its ratio column >= 0.8)",
            )
        )

    def cleanup() -> None:
        torch.set_num_threads(previous_threads)

    notes = (
        f"{n_rows} transitions, {N_FEATURES} features, {N_ACTIONS} actions, batch {BATCH}, "
        f"hidden {list(HIDDEN)}, {n_updates} updates per repetition, torch threads "
        f"{threads}"
    )
    return BenchSuite(stage="train", comparisons=tuple(comparisons), notes=notes, cleanup=cleanup)
