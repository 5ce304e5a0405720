"""Conservative discrete soft actor-critic (``sac``): an actor network and twin critics.

d3rlpy 2.8.1's ``DiscreteSAC`` (Christodoulou 2019) trains, on a mini-batch
``(s, a, r, s', done)`` with ``A`` actions, ``E`` critics ``Q_e``, target critics ``Q'_e``,
actor ``pi(.|s)`` (a categorical over the ``A`` actions) and temperature ``alpha = exp(log_t)``:

* soft target: ``y = r + gamma * (1 - done) * sum_a pi(a|s') [min_e Q'_e(s', a)
  - alpha * log pi(a|s')]``;
* critic loss: ``sum_e mean_b huber(Q_e(s_b, a_b) - y_b)`` (Huber with delta 1);
* actor loss (after the critic step): ``mean_b sum_a pi(a|s_b) [alpha * log pi(a|s_b)
  - min_e Q_e(s_b, a)]``;
* temperature loss: ``-mean_b alpha * (sum_a pi(a|s_b) log pi(a|s_b) + H*)`` with the target
  entropy ``H* = 0.98 * log A``, hard-coded in d3rlpy.

Offline, two things go wrong with that on recommendation logs (docs/training.md has the
simulator figures):

* the actor maximises the critics over *every* action, and the critics are never corrected on
  actions the logs do not contain, so the actor drifts to over-estimated, unlogged actions;
* ``H* = 0.98 log A`` keeps the actor within 2 % of the uniform distribution's entropy: with
  ~50 actions its distribution is nearly uniform, and so is its value.

So our ``sac`` adds two fields to d3rlpy's config (everything else is d3rlpy's):

* ``conservative_weight`` ``c``: the critic loss gets the CQL penalty of every critic,
  ``c * sum_e mean_b [logsumexp_a Q_e(s_b, a) - Q_e(s_b, a_b)]`` (Kumar et al. 2020, the
  SAC-based CQL(H)), which pushes Q down on actions the logs do not support;
* ``target_entropy_ratio`` ``rho``: ``H* = rho * log A``.

With ``c = 0`` and ``rho = 0.98`` the update is exactly d3rlpy's (a test compares losses and
parameters step by step). Each update is one pass of the actor on ``s'``, the target critics
on ``s'``, the critics on ``s`` (TD error and penalty share it), then, after the critic step,
the critics on ``s`` again without gradients and the actor on ``s`` (d3rlpy's order).
"""

from __future__ import annotations

import math
from typing import Any

from offline_rl._d3 import d3rlpy_module
from offline_rl.errors import TrainError

__all__ = ["sac_classes", "CONFIG_TYPE"]

CONFIG_TYPE = "offrec_conservative_discrete_sac"

_CLASSES: dict[str, type] | None = None


def sac_classes() -> dict[str, type]:
    """``{"config": ..., "algo": ..., "impl": ...}``, built and registered with d3rlpy once."""
    global _CLASSES
    if _CLASSES is not None:
        return _CLASSES
    d3rlpy_module()
    import dataclasses

    import torch
    import torch.nn.functional as F
    from d3rlpy.algos.qlearning.sac import DiscreteSAC, DiscreteSACConfig
    from d3rlpy.algos.qlearning.torch.sac_impl import DiscreteSACImpl
    from d3rlpy.base import register_learnable
    from d3rlpy.models import MeanQFunctionFactory
    from d3rlpy.models.torch.parameters import get_parameter

    @dataclasses.dataclass()
    class ConservativeDiscreteSACConfig(DiscreteSACConfig):
        """d3rlpy's ``DiscreteSACConfig`` plus ``conservative_weight`` and
        ``target_entropy_ratio`` (module docstring)."""

        conservative_weight: float = 0.0
        target_entropy_ratio: float = 0.98

        def create(self, device: Any = False, enable_ddp: bool = False) -> Any:
            return ConservativeDiscreteSAC(self, device, enable_ddp)

        @staticmethod
        def get_type() -> str:
            return CONFIG_TYPE

    class ConservativeDiscreteSAC(DiscreteSAC):
        """d3rlpy's ``DiscreteSAC`` whose networks train with :class:`ConservativeSACImpl`."""

        def inner_create_impl(self, observation_shape: Any, action_size: int) -> None:
            if not isinstance(self._config.q_func_factory, MeanQFunctionFactory):
                raise TrainError(
                    f'sac: q_func_factory = "{self._config.q_func_factory.get_type()}"; the '
                    f'conservative actor-critic supports only "mean" Q-functions'
                )
            super().inner_create_impl(observation_shape, action_size)
            impl = self._impl
            impl.__class__ = ConservativeSACImpl
            impl.conservative_weight = float(self._config.conservative_weight)
            impl.target_entropy = float(self._config.target_entropy_ratio) * math.log(action_size)

    def all_q(q_funcs: Any, x: Any) -> Any:
        """(E, B, A) Q-values of every critic."""
        return torch.stack([q(x).q_value for q in q_funcs], dim=0)

    class ConservativeSACImpl(DiscreteSACImpl):
        """One update of the module docstring (mean Q-functions only)."""

        conservative_weight: float = 0.0
        target_entropy: float = 0.0

        def _temperature(self) -> Any:
            log_temp = self._modules.log_temp
            return None if log_temp is None else get_parameter(log_temp).exp()

        def inner_update(self, batch: Any, grad_step: int) -> dict[str, float]:
            mods = self._modules
            temp = self._temperature()
            # critics
            mods.critic_optim.zero_grad()
            with torch.no_grad():
                dist = mods.policy(batch.next_observations)
                log_pi, pi = dist.logits, dist.probs
                q_next = all_q(mods.targ_q_funcs, batch.next_observations).min(dim=0).values
                soft = q_next if temp is None else q_next - temp * log_pi
                v_next = (pi * soft).sum(dim=1, keepdim=True)
                y = batch.rewards + (self._gamma**batch.intervals) * v_next * (
                    1.0 - batch.terminals
                )
            qs = all_q(mods.q_funcs, batch.observations)
            n_critics = qs.shape[0]
            index = batch.actions.long().view(1, -1, 1).expand(n_critics, -1, 1)
            q_taken = qs.gather(2, index)
            td = F.smooth_l1_loss(q_taken, y.unsqueeze(0).expand_as(q_taken), beta=1.0)
            critic_loss = td * n_critics
            penalty = None
            if self.conservative_weight > 0.0:
                penalty = (torch.logsumexp(qs, dim=2, keepdim=True) - q_taken).mean() * n_critics
                critic_loss = critic_loss + self.conservative_weight * penalty
            critic_loss.backward()
            mods.critic_optim.step()
            # critic_loss first: reports plot the first loss of a model's metrics
            metrics = {"critic_loss": float(critic_loss.detach())}
            if penalty is not None:
                metrics["conservative_loss"] = float(penalty.detach())
            # actor (and temperature), on the critics after their step
            mods.q_funcs.eval()
            mods.actor_optim.zero_grad()
            with torch.no_grad():
                q_now = all_q(mods.q_funcs, batch.observations).min(dim=0).values
            dist = mods.policy(batch.observations)
            log_pi, pi = dist.logits, dist.probs
            if mods.temp_optim is not None and temp is not None:
                mods.temp_optim.zero_grad()
                with torch.no_grad():
                    gap = (pi * log_pi).sum(dim=1, keepdim=True) + self.target_entropy
                temp_loss = -(self._temperature() * gap).mean()
                temp_loss.backward()
                mods.temp_optim.step()
                metrics["temp_loss"] = float(temp_loss.detach())
            if temp is None:
                actor_loss = -(pi * q_now).sum(dim=1).mean()
            else:
                temp = self._temperature().detach()  # after its own step, as in d3rlpy
                metrics["temp"] = float(temp)
                actor_loss = (pi * (temp * log_pi - q_now)).sum(dim=1).mean()
            actor_loss.backward()
            mods.actor_optim.step()
            metrics["actor_loss"] = float(actor_loss.detach())
            if grad_step % self._target_update_interval == 0:
                self.update_target()
            return metrics

    register_learnable(ConservativeDiscreteSACConfig)
    _CLASSES = {
        "config": ConservativeDiscreteSACConfig,
        "algo": ConservativeDiscreteSAC,
        "impl": ConservativeSACImpl,
    }
    return _CLASSES
