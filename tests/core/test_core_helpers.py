"""tfrobust.core: atomic files, the registry, first_line, the auxiliary (ℓβ) loss, group counts, dtype."""

import json
import math

import numpy as np
import pytest

from tfrobust.core import files
from tfrobust.core.auxiliary_loss import AuxiliaryLoss, check_beta, cross_entropy
from tfrobust.core.group_norm import group_count
from tfrobust.core.layer_config import with_dtype
from tfrobust.core.messages import first_line
from tfrobust.core.registry import Registry, check_options, keyword_options
from tfrobust.core.run_layout import RunLayout
from tfrobust.errors import TfrobustError


def test_write_json_is_atomic_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "sub" / "result.json"
    files.write_json(str(path), {"a": 1})
    files.write_json(str(path), {"a": 2})  # replaces
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]
    with pytest.raises(ValueError):
        files.write_json(str(path), {"a": math.nan}, allow_nan=False)
    assert json.loads(path.read_text()) == {"a": 2}  # a failed write leaves the old file
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]


def test_atomic_path_keeps_the_basename_and_cleans_up_on_error(tmp_path):
    final = tmp_path / "w.weights.h5"
    with pytest.raises(RuntimeError):
        with files.atomic_path(str(final)) as temp:
            assert temp.endswith("w.weights.h5") and temp != str(final)
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_registry_registration_lookup_and_options():
    registry = Registry("widget")

    def widget(x, *, size=3, color="red"):
        return x, size, color

    registry.register("w", widget)
    assert registry.lookup("w") is widget and registry.names() == ["w"]
    with pytest.raises(TfrobustError, match="widget 'w' is already registered; pass overwrite=True"):
        registry.register("w", widget)
    with pytest.raises(TfrobustError, match="widget 'v' must be registered with a callable"):
        registry.register("v", 3)
    with pytest.raises(TfrobustError, match="unknown shape 'q'; valid choices: w"):
        registry.lookup("q", option="shape")
    assert keyword_options(widget) == {"size": 3, "color": "red"}
    with pytest.raises(TfrobustError, match="unknown option 'sise' for widget 'w'; valid options: size, color"):
        check_options("widget", "w", widget, {"sise": 1})


def test_first_line_and_small_helpers():
    assert first_line(ValueError("one\ntwo")) == "one"
    assert first_line(KeyError()) == "KeyError"
    assert [group_count(c) for c in (16, 48, 7, 64)] == [16, 24, 7, 32]
    config = {"class_name": "Dense", "config": {"units": 2, "dtype": "mixed_float16"}}
    assert with_dtype(config, "float32")["config"] == {"units": 2, "dtype": "float32"}
    assert with_dtype(config, None) is config
    layout = RunLayout("/r")
    assert (layout.summary, layout.last_weights, layout.worker("worker", 1).backup) == (
        "/r/summary.json", "/r/checkpoints/last.weights.h5", "/r/workers/worker_1/backup")


def test_beta_loss_weights_and_validation():
    rng = np.random.default_rng(0)
    outputs = {"logits": rng.normal(size=(4, 3)).astype(np.float32),
               "p1": rng.normal(size=(4, 3)).astype(np.float32), "p2": rng.normal(size=(4, 3)).astype(np.float32)}
    labels = np.array([0, 1, 2, 1])
    ce = {k: cross_entropy(v, labels).numpy() for k, v in outputs.items()}
    expected = ce["logits"] / 3 + 2 / 3 * (ce["p1"] + ce["p2"]) / 2  # β = 2, L = 2
    np.testing.assert_allclose(AuxiliaryLoss.beta(2.0)(outputs, labels), expected, rtol=1e-6)  # keys read per call
    np.testing.assert_allclose(AuxiliaryLoss.beta(2, ["p1", "p2"])(outputs, labels), expected, rtol=1e-6)
    np.testing.assert_allclose(AuxiliaryLoss.beta(math.inf, ["p1"])(outputs, labels), ce["p1"], rtol=1e-6)
    for bad in (-1.0, True, "2"):
        with pytest.raises(TfrobustError, match="beta must be a number >= 0 or inf"):
            check_beta(bad)
    with pytest.raises(TfrobustError, match="beta must be a finite number >= 0, got inf"):
        check_beta(math.inf, allow_inf=False)
