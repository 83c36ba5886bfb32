"""Shared test set-up: every test starts from the same random state, so tests that build randomly
initialised models are deterministic (a random net that an attack cannot break would otherwise make a
test flaky)."""

import keras
import pytest


@pytest.fixture(autouse=True)
def _seed_everything():
    keras.utils.set_random_seed(0)
    yield
