"""The JSON policy: always strict JSON; non-finite numbers as null with the reason."""

from __future__ import annotations

import json
import math

import numpy as np

from lensllm.outputs import json_safe, json_text


def _strict(text):
    def refuse(name):
        raise AssertionError(f"non-JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_numbers_become_null_with_the_reason():
    payload = [{"model": "a", "upper": math.inf, "lower": -math.inf, "rmse": math.nan,
                "ok": 1.5}, {"model": "b", "upper": 2.0}]
    data = _strict(json_text(payload))
    assert data[0]["upper"] is None and data[0]["lower"] is None and data[0]["rmse"] is None
    assert data[0]["nonfinite"] == {"upper": "inf", "lower": "-inf", "rmse": "nan"}
    assert data[0]["ok"] == 1.5
    assert data[1] == {"model": "b", "upper": 2.0}


def test_numpy_values_and_lists():
    data = _strict(json_text({"x": np.float64(np.inf), "v": np.array([1.0, np.nan]),
                              "n": np.int64(3), "b": np.bool_(True)}))
    assert data == {"x": None, "v": [1.0, None], "n": 3, "b": True,
                    "nonfinite": {"x": "inf", "v": "non-finite entries written as null"}}


def test_finite_payload_is_unchanged():
    payload = {"a": [1, 2.5, "s", None, True], "b": {"c": 1e300}}
    assert json_safe(payload) == payload
    assert _strict(json_text(payload)) == payload
