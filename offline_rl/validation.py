"""Per-epoch validation metrics, computed on a fixed sample of the validation split.

For a model with Q-function ``Q`` (greedy value ``V(s) = max_{a in M(s)} Q(s, a)``, ``M`` the
allowed actions), on ``m`` validation rows ``(s_i, a_i, r_i, s'_i, done_i)``:

* ``td_error`` = mean over rows with a known next state of
  ``(Q(s_i, a_i) - r_i - gamma * (1 - done_i) * V(s'_i))^2`` (online network, reward units; with a
  non-multiplicative d3rlpy reward scaler, on that scaler's scale);
* ``initial_value`` = mean of ``V(s)`` over the first decision of each sampled episode
  (in reward units per episode, discounted);
* for ``sac`` (actor ``pi``, critics ``Q``, temperature ``alpha``; ``V`` is its soft value
  ``V(s) = sum_a pi(a|s) [Q(s, a) - alpha * log pi(a|s)]``, what its critics are trained
  towards): ``td_error`` uses that ``V(s')``, ``initial_value`` is ``sum_a pi(a|s) Q(s, a)``
  and the top action is the actor's most likely one;
* ``agreement`` = share of rows where the model's top action equals the logged action;
* ``top_action_share`` = share of rows whose top action is the model's most frequent top
  action (near 1: the policy recommends one action everywhere, a collapse worth checking);
* ``ips`` = self-normalised per-decision IPS estimate of the mean reward per decision of the
  target policy ``pi`` (epsilon-greedy head for Q-models and sac, the classifier for behaviour
  cloning): ``sum_i w_i r_i / sum_i w_i`` with ``w_i = pi(a_i|s_i) / mu(a_i|s_i)``;
  ``mu`` is the logged action-level propensity when every sampled row has one
  (``ips_behaviour = "logged"``), else the train split's action frequencies
  (``"marginal"``, a rough stand-in). ``ips_ess = (sum w)^2 / sum w^2``. ``logged_reward``
  is the plain mean reward of the sampled rows, the behaviour policy's on-policy value.

This is a quick training monitor; the ``ope`` stage does the careful evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from offline_rl.data import episode_bounds

__all__ = ["ValidationSample", "prepare_validation", "epoch_metrics"]


@dataclass(frozen=True)
class ValidationSample:
    """Rows drawn once per run; every epoch and every model is scored on the same rows."""

    split: str  # "validation" or "train" (when no validation rows were given)
    states: np.ndarray  # (m, d) raw
    actions: np.ndarray  # (m,) int64
    rewards: np.ndarray  # (m,) float64
    next_states: np.ndarray  # (m, d) raw, zeros where there is none
    done: np.ndarray  # (m,) bool terminal
    has_next: np.ndarray  # (m,) bool: not a timeout-final row
    first: np.ndarray  # (m,) bool: first decision of its episode
    behaviour: np.ndarray  # (m,) float64 mu(a_i | s_i)
    behaviour_source: str  # "logged" | "marginal"


def prepare_validation(
    validation: Any, train: Any, n_actions: int, actions: Any, max_rows: int, seed: int
) -> ValidationSample:
    """Draw up to ``max_rows`` rows of ``validation`` (or of ``train`` when it is empty)."""
    source = validation if validation is not None and len(validation) > 0 else train
    split = "validation" if source is validation else "train"
    n = len(source)
    states = np.asarray(source.states, dtype=np.float64)
    terminals = np.asarray(source.terminals, dtype=bool)
    timeouts = np.asarray(source.timeouts, dtype=bool)
    last = terminals | timeouts
    nxt = np.zeros_like(states)
    nxt[:-1] = states[1:]
    nxt[last] = 0.0
    starts, _ = episode_bounds(np.asarray(source.episode_ids))
    first = np.zeros(n, dtype=bool)
    first[starts] = True
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=max_rows, replace=False)) if n > max_rows else np.arange(n)

    acts = np.asarray(source.actions, dtype=np.int64)[rows]
    props = np.asarray(source.propensities, dtype=np.float64)[rows]
    if props.size and np.isfinite(props).all() and (props > 0).all():
        mu = props.copy()
        n_other = len(actions.other_items) if actions is not None else 0
        if n_other > 0:
            in_other = acts == n_actions - 1
            mu[in_other] = np.minimum(1.0, props[in_other] * n_other)
        behaviour_source = "logged"
    else:
        freq = np.bincount(np.asarray(train.actions, dtype=np.int64), minlength=n_actions)
        freq = (freq + 1.0) / (freq.sum() + n_actions)
        mu = freq[acts]
        behaviour_source = "marginal"
    return ValidationSample(
        split=split,
        states=states[rows],
        actions=acts,
        rewards=np.asarray(source.rewards, dtype=np.float64)[rows],
        next_states=nxt[rows],
        done=terminals[rows],
        has_next=~timeouts[rows],
        first=first[rows],
        behaviour=mu,
        behaviour_source=behaviour_source,
    )


def epoch_metrics(
    model: Any, sample: ValidationSample, *, gamma: float, ips_epsilon: float
) -> dict[str, Any]:
    """The metrics above for ``model`` (a :class:`~offline_rl.model.TrainedModel`)."""
    out: dict[str, Any] = {"split": sample.split, "n_rows": int(sample.actions.shape[0])}
    m = sample.actions.shape[0]
    rows = np.arange(m)
    if model.kind == "sac":
        out.update(_actor_critic_values(model, sample, gamma))
        greedy = model.actor.logits(sample.states).argmax(axis=1)
        pi_logged = (1.0 - ips_epsilon) * (greedy == sample.actions) + ips_epsilon / model.n_actions
        top = greedy
    elif model.has_q:
        qf = model.q_function
        q, allowed = qf.q_and_allowed(sample.states)
        masked = np.where(allowed, q, -np.inf)
        greedy = masked.argmax(axis=1)
        v = masked[rows, greedy]
        td_rows = sample.has_next
        if td_rows.any():
            qn, allowed_n = qf.q_and_allowed(sample.next_states[td_rows])
            v_next = np.where(allowed_n, qn, -np.inf).max(axis=1)
            r = sample.rewards[td_rows]
            scaler = model.algo.config.reward_scaler
            if qf.units != "reward":  # Q is on the scaler's scale: compare like with like
                r = np.asarray(
                    scaler.transform_numpy(r.reshape(-1, 1).astype(np.float32)), dtype=np.float64
                ).reshape(-1)
            target = r + gamma * (~sample.done[td_rows]) * v_next
            out["td_error"] = float(
                np.mean((q[rows[td_rows], sample.actions[td_rows]] - target) ** 2)
            )
        else:
            out["td_error"] = None
        out["initial_value"] = float(v[sample.first].mean()) if sample.first.any() else None
        pi_logged = (1.0 - ips_epsilon) * (greedy == sample.actions) + ips_epsilon / q.shape[1]
        top = greedy
    else:
        pi = model.imitator.probs(sample.states)
        pi_logged = pi[rows, sample.actions]
        top = pi.argmax(axis=1)
        out["td_error"] = None
        out["initial_value"] = None
    out["agreement"] = float(np.mean(top == sample.actions)) if m else None
    out["top_action_share"] = float(np.bincount(top, minlength=1).max() / m) if m else None
    w = pi_logged / sample.behaviour
    out["ips"] = float(np.sum(w * sample.rewards) / np.sum(w)) if m and w.sum() > 0 else None
    out["ips_ess"] = float(w.sum() ** 2 / np.sum(w**2)) if m and w.sum() > 0 else None
    out["ips_behaviour"] = sample.behaviour_source
    out["logged_reward"] = float(sample.rewards.mean()) if m else None
    return out


def _actor_critic_values(model: Any, sample: ValidationSample, gamma: float) -> dict[str, Any]:
    """``td_error`` and ``initial_value`` of a ``sac`` model (soft value, module docstring)."""
    qf, actor = model.q_function, model.actor
    rows = np.arange(sample.actions.shape[0])
    q = qf.q_values(sample.states)
    pi = actor.probs(sample.states)
    out: dict[str, Any] = {
        "initial_value": float((pi * q).sum(axis=1)[sample.first].mean())
        if sample.first.any()
        else None
    }
    td_rows = sample.has_next
    if not td_rows.any():
        out["td_error"] = None
        return out
    nxt = sample.next_states[td_rows]
    log_pi = actor.logits(nxt)
    log_pi = log_pi - np.logaddexp.reduce(log_pi, axis=1, keepdims=True)
    # the temperature is on the training reward scale; the critics are reported divided by it
    alpha = _temperature(model) / qf.scale
    v_next = (np.exp(log_pi) * (qf.q_values(nxt) - alpha * log_pi)).sum(axis=1)
    r = sample.rewards[td_rows]
    if qf.units != "reward":  # Q is on the scaler's scale: compare like with like
        scaler = model.algo.config.reward_scaler
        r = np.asarray(
            scaler.transform_numpy(r.reshape(-1, 1).astype(np.float32)), dtype=np.float64
        ).reshape(-1)
    target = r + gamma * (~sample.done[td_rows]) * v_next
    out["td_error"] = float(np.mean((q[rows[td_rows], sample.actions[td_rows]] - target) ** 2))
    return out


def _temperature(model: Any) -> float:
    log_temp = model.algo.impl.modules.log_temp
    if log_temp is None:
        return 0.0
    return float(next(log_temp.parameters()).detach().exp().cpu().reshape(-1)[0])
