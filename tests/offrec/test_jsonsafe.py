"""json_safe: what strict JSON cannot hold becomes null or a plain number."""

from __future__ import annotations

import json

import numpy as np

from offrec.jsonsafe import json_safe


def test_non_finite_floats_become_null_and_numpy_scalars_plain_numbers():
    value = {
        "a": float("nan"),
        "b": [1.5, float("inf"), (np.float32(2.5), np.int64(3))],
        "c": {"d": np.float64("-inf"), "e": "text"},
    }
    out = json_safe(value)
    assert out == {"a": None, "b": [1.5, None, [2.5, 3]], "c": {"d": None, "e": "text"}}
    assert isinstance(out["b"][2][1], int)
    json.dumps(out, allow_nan=False)
