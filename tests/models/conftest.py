"""Fixtures shared by the model tests: tiny option sets, a mixed-precision policy, random images."""

import keras
import numpy as np
import pytest

#: Options that make each registered model tiny enough for the shared 2-core test machine.
SMALL_OPTIONS = {
    "resnet": dict(width=0.125),
    "resnet18": dict(width=0.125),
    "resnet20": dict(width=0.5),
    "resnet56": dict(width=0.25),
    "preact_resnet18": dict(width=0.125),
    "wide_resnet": dict(widen_factor=1),
    "wrn16": dict(widen_factor=1),
    "vgg16": dict(width=0.125, fc_units=(16, 16)),
    "alexnet": dict(width=0.125, fc_units=(16, 16)),
    "madry_cnn": dict(width=0.25),
    "small_cnn": dict(width=0.25),
}


@pytest.fixture
def small_options():
    """``small_options(name)``: tiny options for a registered model ({} for models added later)."""
    return lambda name: dict(SMALL_OPTIONS.get(name, {}))


@pytest.fixture
def images():
    """``images(shape, n=2, seed=0)``: float32 images in [0, 1], ``[n, *shape]``."""
    def make(shape, n=2, seed=0):
        return np.random.default_rng(seed).uniform(size=(n, *shape)).astype("float32")
    return make


@pytest.fixture
def mixed_bfloat16():
    """Runs the test under the ``mixed_bfloat16`` global policy, restoring the previous one after."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
