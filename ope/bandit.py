"""Bandit (per-decision) off-policy estimators, call-compatible with Open Bandit Pipeline 0.5.

Notation, for logged decision ``i`` of ``n`` (shapes in brackets):

* ``r_i`` reward (n,), ``a_i`` logged action (n,), ``k_i`` slot ``position`` (n,),
* ``p_i = pi_b(a_i | x_i, k_i)`` behaviour propensity ``pscore`` (n,), in (0, 1],
* ``pi_e(a | x_i, k)`` target probabilities ``action_dist`` (n, A) or (n, A, L),
* ``q(x_i, a, k)`` reward-model predictions ``estimated_rewards_by_reg_model``, same shape,
* ``w_i = pi_e(a_i | x_i, k_i) / p_i`` the importance weight,
* ``dm_i = sum_a pi_e(a | x_i, k_i) q(x_i, a, k_i)`` the model's value of the target at ``x_i``.

Every estimator is a frozen dataclass (hyper-parameters as fields, ``estimator_name`` keys
results) with ``estimate_policy_value``, ``estimate_interval`` and ``kernel``. The per-sample
kernel ``_estimate_round_rewards`` gives the point estimate as its mean (exactly obp's
formulas, checked against obp's own outputs in the tests); self-normalised estimators also
define their ratio form (:class:`ope.kernel.Kernel`) so that intervals resample numerator and
denominator together.

Clipping semantics follow obp 0.5: ``lambda_`` *caps* the weight (``min(w, lambda_)``) in IPW
and DR; Switch-DR *drops* the correction term of decisions with ``w > lambda_`` (falls back to
the model); DR-os *shrinks* it to ``lambda_ w / (w**2 + lambda_)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ope.bootstrap import DEFAULT_MAX_BYTES
from ope.errors import OPEError
from ope.intervals import Interval, estimate_interval
from ope.kernel import Kernel
from ope.types import FloatArray, IntArray, RandomState
from ope.validation import (
    as_action_dist,
    as_float_vector,
    as_int_vector,
    as_position,
    as_reward_model,
    check_action_range,
    check_hyperparameter,
    check_pscore,
    check_same_length,
)

__all__ = [
    "BanditInputs",
    "validate_bandit_inputs",
    "importance_weights",
    "BanditEstimator",
    "LoggedPolicyValue",
    "InverseProbabilityWeighting",
    "SelfNormalizedInverseProbabilityWeighting",
    "DirectMethod",
    "DoublyRobust",
    "SelfNormalizedDoublyRobust",
    "SwitchDoublyRobust",
    "DoublyRobustWithShrinkage",
]


@dataclass(frozen=True, eq=False)
class BanditInputs:
    """Validated logged-bandit arrays (see the module docstring for the notation).

    ``reward``, ``action`` and ``pscore`` are ``None`` when not given; ``action_dist`` and
    ``reward_model`` are 3-d (n, A, L); ``position`` is (n,) (zeros when L = 1).
    """

    n: int
    reward: FloatArray | None
    action: IntArray | None
    pscore: FloatArray | None
    action_dist: FloatArray | None
    position: IntArray
    reward_model: FloatArray | None

    def need(self, name: str, estimator: str) -> np.ndarray:
        """The named array, or an error saying ``estimator`` needs it."""
        attr = "reward_model" if name == "estimated_rewards_by_reg_model" else name
        value = getattr(self, attr)
        if value is None:
            shapes = {
                "reward": "(n,)",
                "action": "(n,)",
                "pscore": "(n,)",
                "action_dist": "(n, n_actions) or (n, n_actions, len_list)",
                "estimated_rewards_by_reg_model": "(n, n_actions) or (n, n_actions, len_list)",
            }
            raise OPEError(f"{estimator} needs {name} of shape {shapes[name]}; it was not given")
        return value

    def target_prob(self) -> FloatArray:
        """``pi_e(a_i | x_i, k_i)`` (n,)."""
        dist = self.need("action_dist", "this estimator")
        action = self.need("action", "this estimator")
        return dist[np.arange(self.n), action, self.position]

    def weights(self) -> FloatArray:
        """``w_i = pi_e(a_i | x_i, k_i) / p_i`` (n,)."""
        return self.target_prob() / self.need("pscore", "this estimator")

    def model_value(self) -> FloatArray:
        """``dm_i = sum_a pi_e(a|x_i,k_i) q(x_i,a,k_i) / sum_a pi_e(a|x_i,k_i)`` (n,).

        The division by the row sum (1 up to rounding) mirrors obp's ``np.average``.
        """
        dist = self.need("action_dist", "this estimator")
        q = self.need("estimated_rewards_by_reg_model", "this estimator")
        if dist.shape[2] == 1:  # views, no (n, A) copies
            pi, qa = dist[:, :, 0], q[:, :, 0]
        else:
            rows = np.arange(self.n)
            pi, qa = dist[rows, :, self.position], q[rows, :, self.position]
        return np.einsum("ij,ij->i", pi, qa) / pi.sum(axis=1)

    def model_factual(self) -> FloatArray:
        """``q(x_i, a_i, k_i)`` (n,)."""
        q = self.need("estimated_rewards_by_reg_model", "this estimator")
        return q[np.arange(self.n), self.need("action", "this estimator"), self.position]


def validate_bandit_inputs(
    *,
    reward: object = None,
    action: object = None,
    pscore: object = None,
    action_dist: object = None,
    estimated_rewards_by_reg_model: object = None,
    position: object = None,
) -> BanditInputs:
    """Check every given array and their consistency; return them as :class:`BanditInputs`."""
    r = as_float_vector("reward", reward) if reward is not None else None
    a = as_int_vector("action", action) if action is not None else None
    p = as_float_vector("pscore", pscore) if pscore is not None else None
    if p is not None:
        check_pscore("pscore", p)
    dist = as_action_dist("action_dist", action_dist) if action_dist is not None else None
    first = next(
        (
            (name, arr)
            for name, arr in (("action", a), ("reward", r), ("pscore", p))
            if arr is not None
        ),
        None,
    )
    if first is not None:
        check_same_length(first, ("reward", r), ("pscore", p), ("action", a))
        if dist is not None:
            check_same_length(first, ("action_dist", dist))
    if dist is None:
        if estimated_rewards_by_reg_model is not None:
            raise OPEError("estimated_rewards_by_reg_model was given without action_dist")
        if first is None:
            raise OPEError("no logged data given: pass reward, action, pscore and action_dist")
        n = first[1].shape[0]
        return BanditInputs(n, r, a, p, None, np.zeros(n, dtype=np.int64), None)
    n = dist.shape[0]
    if a is not None:
        check_action_range("action", a, dist.shape[1], "action_dist")
    pos = as_position(position, n, dist.shape[2])
    q = (
        as_reward_model(estimated_rewards_by_reg_model, dist.shape)
        if estimated_rewards_by_reg_model is not None
        else None
    )
    return BanditInputs(n, r, a, p, dist, pos, q)


def importance_weights(
    *, action: object, pscore: object, action_dist: object, position: object = None
) -> FloatArray:
    """``w_i = pi_e(a_i | x_i, k_i) / pi_b(a_i | x_i, k_i)`` (n,), validated."""
    inputs = validate_bandit_inputs(
        action=action, pscore=pscore, action_dist=action_dist, position=position
    )
    return inputs.weights()


class BanditEstimator:
    """Base of the bandit estimators: validation, point estimate, kernel and interval.

    Subclasses are frozen dataclasses whose fields are the hyper-parameters followed by
    ``estimator_name``; they set ``uses`` (the inputs they need) and override
    :meth:`_estimate_round_rewards` (and :meth:`_kernel` when the estimate is not a plain mean
    of it).
    """

    estimator_name: str
    uses: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.estimator_name, str) or not self.estimator_name:
            raise OPEError(
                f"{type(self).__name__}: estimator_name must be a non-empty string, "
                f"got {self.estimator_name!r}"
            )

    # ----------------------------------------------------------------- to override

    def _estimate_round_rewards(self, inputs: BanditInputs) -> FloatArray:
        """Per-decision contributions (n,) whose mean is the estimate."""
        raise NotImplementedError(f"{type(self).__name__} does not define a round kernel")

    def _kernel(self, inputs: BanditInputs) -> Kernel:
        return Kernel.mean(self._estimate_round_rewards(inputs), self.estimator_name)

    # ----------------------------------------------------------------- public API

    def _validated(self, **arrays: object) -> BanditInputs:
        inputs = validate_bandit_inputs(**arrays)
        for name in self.uses:
            inputs.need(name, type(self).__name__)
        return inputs

    def kernel_from_inputs(self, inputs: BanditInputs) -> Kernel:
        """The estimator's :class:`Kernel` from already validated inputs."""
        for name in self.uses:
            inputs.need(name, type(self).__name__)
        return self._kernel(inputs)

    def kernel(
        self,
        *,
        reward: object = None,
        action: object = None,
        pscore: object = None,
        action_dist: object = None,
        estimated_rewards_by_reg_model: object = None,
        position: object = None,
    ) -> Kernel:
        """The per-sample kernel (n rows) behind the point estimate and the intervals."""
        inputs = self._validated(
            reward=reward,
            action=action,
            pscore=pscore,
            action_dist=action_dist,
            estimated_rewards_by_reg_model=estimated_rewards_by_reg_model,
            position=position,
        )
        return self._kernel(inputs)

    def estimate_round_rewards(
        self,
        *,
        reward: object = None,
        action: object = None,
        pscore: object = None,
        action_dist: object = None,
        estimated_rewards_by_reg_model: object = None,
        position: object = None,
    ) -> FloatArray:
        """Per-decision contributions (n,), validated (obp's ``_estimate_round_rewards``)."""
        inputs = self._validated(
            reward=reward,
            action=action,
            pscore=pscore,
            action_dist=action_dist,
            estimated_rewards_by_reg_model=estimated_rewards_by_reg_model,
            position=position,
        )
        return self._estimate_round_rewards(inputs)

    def estimate_policy_value(
        self,
        *,
        reward: object = None,
        action: object = None,
        pscore: object = None,
        action_dist: object = None,
        estimated_rewards_by_reg_model: object = None,
        position: object = None,
    ) -> float:
        """Estimated policy value of the target ``action_dist`` (a float)."""
        return self.kernel(
            reward=reward,
            action=action,
            pscore=pscore,
            action_dist=action_dist,
            estimated_rewards_by_reg_model=estimated_rewards_by_reg_model,
            position=position,
        ).value()

    def estimate_interval(
        self,
        *,
        reward: object = None,
        action: object = None,
        pscore: object = None,
        action_dist: object = None,
        estimated_rewards_by_reg_model: object = None,
        position: object = None,
        alpha: float = 0.05,
        n_bootstrap_samples: int = 10000,
        random_state: RandomState = None,
        episode_ids: object = None,
        method: str = "percentile",
        scheme: str = "auto",
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> Interval:
        """Point estimate and ``1 - alpha`` interval.

        Args:
            alpha: 1 - confidence level.
            n_bootstrap_samples: resamples for ``method="percentile"``.
            random_state: seed or Generator for the resamples.
            episode_ids: (n,) session of each decision; sessions are resampled as units.
                ``None`` treats decisions as independent (obp's behaviour).
            method: ``"percentile"`` (session bootstrap) or ``"normal"`` (delta method).
            scheme: bootstrap scheme, see :mod:`ope.bootstrap`.
        """
        kernel = self.kernel(
            reward=reward,
            action=action,
            pscore=pscore,
            action_dist=action_dist,
            estimated_rewards_by_reg_model=estimated_rewards_by_reg_model,
            position=position,
        )
        return estimate_interval(
            kernel,
            episode_ids,
            alpha=alpha,
            n_bootstrap=n_bootstrap_samples,
            method=method,
            random_state=random_state,
            scheme=scheme,
            max_bytes=max_bytes,
        )


def _check_lambda(owner: BanditEstimator, value: float) -> None:
    check_hyperparameter(type(owner).__name__, "lambda_", value, minimum=0.0)


@dataclass(frozen=True)
class LoggedPolicyValue(BanditEstimator):
    """On-policy value of the logging policy: ``V = (1/n) sum_i r_i``.

    The natural baseline for :func:`ope.compare.compare` (lift over what is deployed).
    """

    estimator_name: str = "logged"
    uses: ClassVar[tuple[str, ...]] = ("reward",)

    def _estimate_round_rewards(self, inputs: BanditInputs) -> FloatArray:
        return inputs.need("reward", type(self).__name__).copy()


@dataclass(frozen=True)
class InverseProbabilityWeighting(BanditEstimator):
    """Inverse probability weighting (IPW / IPS), optionally with clipped weights.

    ``V = (1/n) sum_i min(w_i, lambda_) r_i``, ``w_i = pi_e(a_i|x_i,k_i) / pi_b(a_i|x_i,k_i)``.

    Unbiased when ``lambda_ = inf`` and the behaviour covers the target's support.
    References: Precup, Sutton & Singh (2000); Strehl, Langford, Li & Kakade (2010).

    Attributes:
        lambda_: weights above it are capped at it (``inf``: no clipping); ``>= 0``.
    """

    lambda_: float = math.inf
    estimator_name: str = "ipw"
    uses: ClassVar[tuple[str, ...]] = ("reward", "action", "pscore", "action_dist")

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_lambda(self, self.lambda_)

    def _estimate_round_rewards(self, inputs: BanditInputs) -> FloatArray:
        w = np.minimum(inputs.weights(), self.lambda_)
        return inputs.need("reward", "ipw") * w


@dataclass(frozen=True)
class SelfNormalizedInverseProbabilityWeighting(BanditEstimator):
    """Self-normalised IPW (SNIPW): ``V = sum_i w_i r_i / sum_i w_i``.

    Biased but consistent; bounded by the reward range and far less variable than IPW when a
    few weights are large. Intervals resample ``sum w r`` and ``sum w`` together.
    References: Swaminathan & Joachims (2015), "The self-normalized estimator for
    counterfactual learning"; Kallus & Uehara (2019).

    The round kernel (obp's) is ``w_i r_i / mean(w)``; its mean is ``V``.
    """

    estimator_name: str = "snipw"
    uses: ClassVar[tuple[str, ...]] = ("reward", "action", "pscore", "action_dist")

    def _estimate_round_rewards(self, inputs: BanditInputs) -> FloatArray:
        w = inputs.weights()
        return inputs.need("reward", "snipw") * w / w.mean()

    def _kernel(self, inputs: BanditInputs) -> Kernel:
        w = inputs.weights()
        return Kernel.ratio(inputs.need("reward", "snipw") * w, w, self.estimator_name)


@dataclass(frozen=True)
class DirectMethod(BanditEstimator):
    """Direct method (DM): ``V = (1/n) sum_i dm_i``, ``dm_i = sum_a pi_e(a|x_i,k_i) q(x_i,a,k_i)``.

    Low variance, biased by the reward model's errors. Needs ``action_dist`` and
    ``estimated_rewards_by_reg_model``; rewards and propensities are not used.
    Reference: Beygelzimer & Langford (2009).
    """

    estimator_name: str = "dm"
    uses: ClassVar[tuple[str, ...]] = ("action_dist", "estimated_rewards_by_reg_model")

    def _estimate_round_rewards(self, inputs: BanditInputs) -> FloatArray:
        return inputs.model_value()


@dataclass(frozen=True)
class DoublyRobust(BanditEstimator):
    """Doubly robust (DR): ``V = (1/n) sum_i [dm_i + min(w_i, lambda_) (r_i - q(x_i,a_i,k_i))]``.

    Unbiased when either the propensities or the reward model are correct (``lambda_ = inf``).
    A finite ``lambda_`` caps the weights (DR with pessimistic shrinkage, Su et al. 2020).
    Reference: Dudík, Langford & Li (2011), "Doubly robust policy evaluation and learning".

    Attributes:
        lambda_: weight cap, ``>= 0`` (``inf``: none).
    """

    lambda_: float = math.inf
    estimator_name: str = "dr"
    uses: ClassVar[tuple[str, ...]] = (
        "reward",
        "action",
        "pscore",
        "action_dist",
        "estimated_rewards_by_reg_model",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_lambda(self, self.lambda_)

    def _shrunk_weights(self, w: FloatArray) -> FloatArray:
        return np.minimum(w, self.lambda_)

    def _estimate_round_rewards(self, inputs: BanditInputs) -> FloatArray:
        w = self._shrunk_weights(inputs.weights())
        residual = inputs.need("reward", "dr") - inputs.model_factual()
        return inputs.model_value() + w * residual


@dataclass(frozen=True)
class SelfNormalizedDoublyRobust(BanditEstimator):
    """Self-normalised DR (SNDR): ``V = (1/n) sum_i dm_i + sum_i w_i (r_i - q_i) / sum_i w_i``.

    with ``q_i = q(x_i, a_i, k_i)``. The correction term is normalised by the weights' sum;
    intervals resample it as a ratio. Reference: Kallus & Uehara (2019), "Intrinsically
    efficient, stable, and bounded off-policy evaluation for reinforcement learning".
    """

    estimator_name: str = "sndr"
    uses: ClassVar[tuple[str, ...]] = DoublyRobust.uses

    def _estimate_round_rewards(self, inputs: BanditInputs) -> FloatArray:
        w = inputs.weights()
        residual = inputs.need("reward", "sndr") - inputs.model_factual()
        return inputs.model_value() + w * residual / w.mean()

    def _kernel(self, inputs: BanditInputs) -> Kernel:
        w = inputs.weights()
        residual = inputs.need("reward", "sndr") - inputs.model_factual()
        comp = np.column_stack([inputs.model_value(), w * residual, w, np.ones(inputs.n)])
        numerators = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
        denominators = np.array([[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0]])
        return Kernel(comp, numerators, denominators, np.ones(2), self.estimator_name)


@dataclass(frozen=True)
class SwitchDoublyRobust(DoublyRobust):
    """Switch-DR: ``V = (1/n) sum_i [dm_i + 1{w_i <= lambda_} w_i (r_i - q_i)]``.

    Decisions whose weight exceeds ``lambda_`` use the model alone (``lambda_ = inf`` is DR,
    ``lambda_ = 0`` is DM when no weight is 0). Reference: Wang, Agarwal & Dudík (2017),
    "Optimal and adaptive off-policy evaluation in contextual bandits".

    Attributes:
        lambda_: switching threshold, ``>= 0`` (required).
    """

    lambda_: float = field(default=math.nan)
    estimator_name: str = "switch-dr"

    def __post_init__(self) -> None:
        if isinstance(self.lambda_, float) and math.isnan(self.lambda_):
            raise OPEError(
                "SwitchDoublyRobust: lambda_ is required and must be a number >= 0 (the weight "
                "above which the model replaces the correction), e.g. "
                "SwitchDoublyRobust(lambda_=10.0)"
            )
        super().__post_init__()

    def _shrunk_weights(self, w: FloatArray) -> FloatArray:
        return np.where(w <= self.lambda_, w, 0.0)


@dataclass(frozen=True)
class DoublyRobustWithShrinkage(DoublyRobust):
    """DR with optimistic shrinkage (DR-os): the correction uses ``lambda_ w / (w**2 + lambda_)``.

    ``V = (1/n) sum_i [dm_i + lambda_ w_i / (w_i**2 + lambda_) (r_i - q_i)]``; ``lambda_ = inf``
    is DR and ``lambda_ = 0`` is DM (a weight of exactly 0 gives 0 for every ``lambda_``).
    Reference: Su, Dimakopoulou, Krishnamurthy & Dudík (2020), "Doubly robust off-policy
    evaluation with shrinkage".

    Attributes:
        lambda_: shrinkage strength, ``>= 0`` (required).
    """

    lambda_: float = field(default=math.nan)
    estimator_name: str = "dr-os"

    def __post_init__(self) -> None:
        if isinstance(self.lambda_, float) and math.isnan(self.lambda_):
            raise OPEError(
                "DoublyRobustWithShrinkage: lambda_ is required and must be a number >= 0 "
                "(shrinkage strength; 0 gives DM, inf gives DR), e.g. "
                "DoublyRobustWithShrinkage(lambda_=10.0)"
            )
        super().__post_init__()

    def _shrunk_weights(self, w: FloatArray) -> FloatArray:
        if math.isinf(self.lambda_):
            return w
        denom = w * w + self.lambda_
        return np.divide(self.lambda_ * w, denom, out=np.zeros_like(w), where=denom > 0.0)
