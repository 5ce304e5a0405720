"""``offrec bench ope``: IPS, SNIPS and DR with a 1000-resample session bootstrap.

Input (scale 1): 1,000,000 logged decisions over 100 actions in ~200,000 sessions (1 to 9
decisions each), a softmax target policy and a reward model, both (n, 100) float64.

* ours — :class:`ope.OffPolicyEvaluation`-style path: validate the inputs, build the three
  kernels, then one joint session bootstrap (``scheme="auto"``: Poisson weights at this size,
  chunked matrix products) giving the three percentile intervals;
* ours (multinomial) — the same with the exact multinomial bootstrap;
* baseline — a straightforward obp-style implementation: compute the per-decision vectors once,
  then a Python loop over the 1000 resamples, each drawing sessions with replacement, gathering
  their rows (vectorised) and recomputing the three estimates (SNIPS as a ratio).

Both report their intervals in the JSON extras so they can be seen to agree.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from offrec.bench import BenchOptions, BenchSuite, Comparison, Contender

__all__ = ["suite", "make_data", "baseline_bootstrap", "our_bootstrap"]

N_ACTIONS = 100
N_BOOTSTRAP = 1000
ALPHA = 0.05


def make_data(n: int, seed: int) -> dict[str, np.ndarray]:
    """Synthetic logged data: sessions of 1-9 decisions, popularity-skewed behaviour."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 10, size=max(1, n // 5 * 2))
    ends = np.cumsum(lengths)
    lengths = lengths[: int(np.searchsorted(ends, n)) + 1]
    lengths[-1] -= int(lengths.sum() - n)
    episode_ids = np.repeat(np.arange(lengths.size, dtype=np.int64), lengths)
    popularity = np.exp(rng.normal(0.0, 1.0, size=N_ACTIONS))
    behaviour = popularity / popularity.sum()
    action = rng.choice(N_ACTIONS, size=n, p=behaviour)
    action_dist = rng.normal(0.0, 1.0, size=(n, N_ACTIONS))
    action_dist += np.log(behaviour)  # a target that mostly follows popularity, per-row noise
    np.exp(action_dist, out=action_dist)
    action_dist /= action_dist.sum(axis=1, keepdims=True)
    q_hat = rng.uniform(0.0, 0.2, size=(n, N_ACTIONS))
    reward = (rng.random(n) < q_hat[np.arange(n), action] + 0.02).astype(np.float64)
    return {
        "reward": reward,
        "action": action,
        "pscore": behaviour[action],
        "action_dist": action_dist,
        "estimated_rewards_by_reg_model": q_hat,
        "episode_ids": episode_ids,
    }


def our_bootstrap(data: dict[str, np.ndarray], scheme: str, seed: int) -> dict[str, Any]:
    """Validate, build the IPS/SNIPS/DR kernels, one joint session bootstrap."""
    from ope import (
        DoublyRobust,
        InverseProbabilityWeighting,
        OffPolicyEvaluation,
        SelfNormalizedInverseProbabilityWeighting,
        estimate_intervals,
    )

    runner = OffPolicyEvaluation(
        (
            InverseProbabilityWeighting(),
            SelfNormalizedInverseProbabilityWeighting(),
            DoublyRobust(),
        )
    )
    kernels = runner.kernels(
        reward=data["reward"],
        action=data["action"],
        pscore=data["pscore"],
        action_dist=data["action_dist"],
        estimated_rewards_by_reg_model=data["estimated_rewards_by_reg_model"],
    )
    intervals = estimate_intervals(
        kernels,
        data["episode_ids"],
        alpha=ALPHA,
        n_bootstrap=N_BOOTSTRAP,
        random_state=seed,
        scheme=scheme,
    )
    out: dict[str, Any] = {}
    for name, iv in intervals.items():
        out.update({f"{name}": iv.point, f"{name}_low": iv.low, f"{name}_high": iv.high})
    return out


def baseline_bootstrap(data: dict[str, np.ndarray], seed: int) -> dict[str, Any]:
    """Per-decision vectors once, then a Python loop over resamples of sessions."""
    n = data["reward"].shape[0]
    rows = np.arange(n)
    dist = data["action_dist"]
    q = data["estimated_rewards_by_reg_model"]
    w = dist[rows, data["action"]] / data["pscore"]
    ips_i = data["reward"] * w
    dm_i = np.einsum("ij,ij->i", dist, q)
    dr_i = dm_i + w * (data["reward"] - q[rows, data["action"]])
    ids = data["episode_ids"]  # sorted: rows of a session are contiguous
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    lengths = np.diff(np.r_[starts, n])
    n_sessions = starts.size
    rng = np.random.default_rng(seed)
    samples = np.empty((N_BOOTSTRAP, 3))
    for b in range(N_BOOTSTRAP):
        pick = rng.integers(0, n_sessions, size=n_sessions)
        counts = lengths[pick]
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        idx = np.repeat(starts[pick], counts) + offsets
        ips, wsum, dr = ips_i[idx].sum(), w[idx].sum(), dr_i[idx].sum()
        samples[b] = (ips / idx.size, ips / wsum, dr / idx.size)
    points = (ips_i.mean(), ips_i.sum() / w.sum(), dr_i.mean())
    lows = np.quantile(samples, ALPHA / 2, axis=0)
    highs = np.quantile(samples, 1 - ALPHA / 2, axis=0)
    out: dict[str, Any] = {}
    for j, name in enumerate(("ipw", "snipw", "dr")):
        out.update({name: points[j], f"{name}_low": lows[j], f"{name}_high": highs[j]})
    return out


def suite(opts: BenchOptions) -> BenchSuite:
    n = max(1000, int(1_000_000 * opts.scale))
    data = make_data(n, opts.seed)
    n_sessions = int(np.unique(data["episode_ids"]).size)

    ours = Contender("offrec (auto: poisson)", lambda: our_bootstrap(data, "auto", opts.seed))
    exact = Contender("offrec (multinomial)", lambda: our_bootstrap(data, "multinomial", opts.seed))
    baseline = Contender("obp-style loop", lambda: baseline_bootstrap(data, opts.seed))
    comparisons = (
        Comparison(
            name="ips+snips+dr, 1000 resamples",
            ours=ours,
            baselines=(baseline, exact),
            n_items=n,
            unit="decisions",
            goal=">= 5x faster than the loop over resamples, bounded memory",
        ),
    )

    def cleanup() -> None:
        data.clear()

    notes = (
        f"{n:,} decisions x {N_ACTIONS} actions, {n_sessions:,} sessions; "
        f"{N_BOOTSTRAP} session resamples; ours includes input validation and kernels"
    )
    return BenchSuite(stage="ope", comparisons=comparisons, notes=notes, cleanup=cleanup)
