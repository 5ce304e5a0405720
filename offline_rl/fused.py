"""Same maths as d3rlpy's DQN / Double DQN / discrete CQL updates, fewer network passes.

d3rlpy 2.8.1 computes some forward passes twice per update:

* ``DQNImpl.compute_target`` runs the target network on ``s'`` once for the argmax and again to
  read the value at that argmax;
* ``DiscreteCQLImpl.compute_loss`` runs the online network on ``s`` once for the TD error and
  again (with its own backward pass) for the conservative penalty.

The subclasses here compute each pass once and reuse it. For mean Q-functions (d3rlpy's
default ``q_func_factory = "mean"``) the loss values and gradients are identical to d3rlpy's
(tests compare both on the same batch). With ``n_critics = E`` critics:

* target (DQN): ``a* = argmax_a mean_e Q'_e(s', a)``, ``y = r + gamma * (1 - done) *
  min_e Q'_e(s', a*)``;
* TD loss: ``sum_e mean_b huber(Q_e(s_b, a_b) - y_b)`` (Huber with delta 1);
* CQL penalty: ``mean_b [logsumexp_a Qbar(s_b, a) - Qbar(s_b, a_b)]`` with
  ``Qbar = mean_e Q_e``; loss = TD + alpha * penalty.

Other Q-function types (``qr``, ``iqn``) keep d3rlpy's own implementation.
"""

from __future__ import annotations

from typing import Any

from offline_rl._d3 import d3rlpy_module

__all__ = ["accelerate", "fused_classes"]

_CLASSES: dict[type, type] | None = None


def fused_classes() -> dict[type, type]:
    """d3rlpy impl class -> our fused subclass (built on first use: needs torch and d3rlpy)."""
    global _CLASSES
    if _CLASSES is not None:
        return _CLASSES
    d3rlpy_module()
    import torch
    import torch.nn.functional as F
    from d3rlpy.algos.qlearning.torch.cql_impl import DiscreteCQLImpl, DiscreteCQLLoss
    from d3rlpy.algos.qlearning.torch.dqn_impl import DoubleDQNImpl, DQNImpl, DQNLoss

    def all_q(q_funcs: Any, x: Any) -> Any:
        """(E, B, A) Q-values of every critic."""
        return torch.stack([q(x).q_value for q in q_funcs], dim=0)

    def td_loss(self: Any, batch: Any, q_tpn: Any) -> tuple[Any, Any]:
        """(sum over critics of the mean Huber TD error, (E, B, A) online Q-values)."""
        qs = all_q(self._modules.q_funcs, batch.observations)
        n_critics = qs.shape[0]
        y = batch.rewards + (self._gamma**batch.intervals) * q_tpn * (1.0 - batch.terminals)
        index = batch.actions.long().view(1, -1, 1).expand(n_critics, -1, 1)
        q_taken = qs.gather(2, index)
        loss = F.smooth_l1_loss(q_taken, y.unsqueeze(0).expand_as(q_taken), beta=1.0)
        return loss * n_critics, qs

    class FusedDQNImpl(DQNImpl):
        """d3rlpy DQN update with one target-network pass."""

        def compute_target(self, batch: Any) -> Any:
            with torch.no_grad():
                qs = all_q(self._modules.targ_q_funcs, batch.next_observations)
                best = qs.mean(dim=0).argmax(dim=1)
                index = best.view(1, -1, 1).expand(qs.shape[0], -1, 1)
                return qs.gather(2, index).min(dim=0).values

        def compute_loss(self, batch: Any, q_tpn: Any) -> Any:
            loss, _ = td_loss(self, batch, q_tpn)
            return DQNLoss(loss=loss)

    class FusedDoubleDQNImpl(DoubleDQNImpl):
        """d3rlpy Double DQN update (its target already needs both networks once)."""

        def compute_loss(self, batch: Any, q_tpn: Any) -> Any:
            loss, _ = td_loss(self, batch, q_tpn)
            return DQNLoss(loss=loss)

    class FusedDiscreteCQLImpl(DiscreteCQLImpl):
        """d3rlpy discrete CQL update with one online pass shared by TD and penalty."""

        def compute_loss(self, batch: Any, q_tpn: Any) -> Any:
            td, qs = td_loss(self, batch, q_tpn)
            mean_q = qs.mean(dim=0)
            taken = mean_q.gather(1, batch.actions.long().view(-1, 1))
            penalty = (torch.logsumexp(mean_q, dim=1, keepdim=True) - taken).mean()
            return DiscreteCQLLoss(
                loss=td + self._alpha * penalty, td_loss=td, conservative_loss=penalty
            )

    _CLASSES = {
        DQNImpl: FusedDQNImpl,
        DoubleDQNImpl: FusedDoubleDQNImpl,
        DiscreteCQLImpl: FusedDiscreteCQLImpl,
    }
    return _CLASSES


def accelerate(algo: Any) -> bool:
    """Switch a built d3rlpy algorithm to the fused update when it is exactly equivalent.

    Applies to DQN, Double DQN and discrete CQL with mean Q-functions; returns whether it did.
    The switch changes only methods (the subclass adds no state), so saving, loading and
    inference are untouched.
    """
    d3 = d3rlpy_module()
    impl = algo.impl
    if impl is None:
        return False
    q_factory = getattr(algo.config, "q_func_factory", None)
    if not isinstance(q_factory, d3.models.MeanQFunctionFactory):
        return False
    fused = fused_classes().get(type(impl))
    if fused is None:
        return False
    impl.__class__ = fused
    return True
