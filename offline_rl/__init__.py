"""Offline RL training on d3rlpy, and the policies it produces (docs/training.md).

Modules: ``train`` (``train_algorithms``), ``policies`` (the Policy interface and every
policy), ``artifacts`` (``load_model``, ``list_models``), ``model`` (``TrainedModel``),
``qfunction`` (``QFunction``, ``Imitator``, ``Actor``), ``config`` (``TrainConfig``), ``algorithms``,
``data`` (Transitions -> d3rlpy / tensors), ``encoding``, ``fused``, ``sac`` (the
conservative discrete soft actor-critic), ``validation``,
``progress``, ``run`` (``offrec train``). Importing this package imports nothing heavy.
"""

__all__: list[str] = []
