"""A sequential e-commerce environment with exact propensities and ground truth.

Public API (docs/simulator.md)::

    from offrec.simulator import (SimulatorConfig, simulate_events, write_logs, run_policy,
                                  run_behaviour, expected_rewards, per_decision_value)

* ``simulate_events(cfg, n_sessions=, seed=, record_states=, action_space=)`` -> events
  (Arrow table, canonical raw schema) and optionally the online raw states per impression;
* ``write_logs(out, cfg, ...)`` streams the logs to Parquet/CSV/JSON lines;
* ``run_policy(policy, action_space, n_sessions=, seed=, weights=, gamma=, config=)`` and
  ``run_behaviour(...)`` -> :class:`GroundTruth` (value, standard error, per-decision value);
* ``expected_rewards(user_ids, positions, action_space)`` -> exact ``(n, A)`` immediate
  rewards for logged decisions; ``per_decision_value`` applies a target distribution.

Names are loaded lazily so that importing ``offrec.simulator.config`` (the config parser does)
stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "SimulatorConfig",
    "RewardWeights",
    "StateOptions",
    "SimulatorError",
    "World",
    "simulate_events",
    "write_logs",
    "load_simulation_config",
    "SimulatedLogs",
    "RecordedStates",
    "SimulationSummary",
    "WriteSummary",
    "run_policy",
    "run_behaviour",
    "GroundTruth",
    "expected_rewards",
    "per_decision_value",
    "behaviour_action_probs",
    "behaviour_per_decision_value",
    "feature_names",
    "RAW_SCHEMA",
]

_WHERE = {
    "SimulatorConfig": "config",
    "RewardWeights": "config",
    "StateOptions": "config",
    "SimulatorError": "errors",
    "World": "world",
    "simulate_events": "generate",
    "write_logs": "generate",
    "load_simulation_config": "generate",
    "SimulatedLogs": "generate",
    "RecordedStates": "generate",
    "SimulationSummary": "generate",
    "WriteSummary": "generate",
    "run_policy": "truth",
    "run_behaviour": "truth",
    "GroundTruth": "truth",
    "expected_rewards": "truth",
    "per_decision_value": "truth",
    "behaviour_action_probs": "truth",
    "behaviour_per_decision_value": "truth",
    "feature_names": "features",
    "RAW_SCHEMA": "events",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'offrec.simulator' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"offrec.simulator.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
