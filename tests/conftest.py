"""Shared test set-up.

Every test starts from the same random state, so tests that build randomly initialised models are
deterministic (a random net that an attack cannot break would otherwise make a test flaky).

The fixtures below are the linear problems whose answers are known in closed form, shared by the
attack and evaluation tests (each was copied into several test files before): ``linear_model`` builds
``logits = flatten(x) · W + b``; ``centred_binary_problem`` and ``boundary_problem`` build binary linear
models centred on 0.5 with interior points, labelled by the model or placed at known L2 distances from
its decision boundary.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf


@pytest.fixture(autouse=True)
def _seed_everything():
    keras.utils.set_random_seed(0)
    yield


def make_linear_model(weights, bias):
    """logits = flatten(x) · W + b, a model whose worst cases are known in closed form."""
    w = tf.constant(weights, tf.float32)
    b = tf.constant(bias, tf.float32)

    def model_fn(x):
        return tf.matmul(tf.reshape(x, [tf.shape(x)[0], -1]), w) + b

    return model_fn


@pytest.fixture(scope="session")
def linear_model():
    """The factory ``linear_model(weights [d, C], bias [C]) -> model_fn``."""
    return make_linear_model


@pytest.fixture(scope="session")
def centred_binary_problem():
    """The factory ``(n=16, d=12, seed=0, low=0.4, high=0.6, image=True) -> (model_fn, x, y, g)``.

    A binary linear model with weights ~ N(0, 1) centred on 0.5 (bias −½ Σ W), points uniform in
    ``[low, high]`` (shaped [n, 2, 2, d/4] if ``image`` else [n, d]) labelled by the model, and
    g = w_other − w_y per point (shaped like x): the loss gradient at any point is a positive multiple of g.
    """
    def make(n=16, d=12, seed=0, low=0.4, high=0.6, image=True):
        rng = np.random.default_rng(seed)
        weights = rng.normal(size=(d, 2)).astype(np.float32)
        model_fn = make_linear_model(weights, -0.5 * weights.sum(axis=0))
        x = rng.uniform(low, high, size=(n, 2, 2, d // 4) if image else (n, d)).astype(np.float32)
        y = np.argmax(model_fn(x).numpy(), axis=1)
        g = (weights[:, 1 - y] - weights[:, y]).T.reshape(x.shape)
        return model_fn, x, y, g

    return make


@pytest.fixture(scope="session")
def boundary_problem():
    """The factory ``(n=12, d=12, seed=0) -> (model_fn, weights, x, y, distance, g)``.

    A binary linear model centred on 0.5 and interior points [n, 2, 2, d/4] placed at known L2 distances
    D ∈ [0.03, 0.15] from the decision boundary (the exact minimal L2 perturbation has norm D); g [n, d]
    is the gradient w_other − w_y of the adversary's margin z_other − z_y, which is −D‖g‖ at each point.
    """
    def make(n=12, d=12, seed=0):
        rng = np.random.default_rng(seed)
        weights = rng.normal(size=(d, 2)).astype(np.float32)
        model_fn = make_linear_model(weights, -0.5 * weights.sum(axis=0))
        y = rng.integers(0, 2, size=n)
        g = (weights[:, 1 - y] - weights[:, y]).T
        distance = rng.uniform(0.03, 0.15, size=n)
        noise = rng.uniform(-0.05, 0.05, size=(n, d))
        g_norm = np.linalg.norm(g, axis=1)
        # Shift the noise along g so that ⟨x − 0.5, g⟩ = −D‖g‖: margin −D‖g‖, distance D.
        shift = (np.sum(noise * g, axis=1) + distance * g_norm) / g_norm ** 2
        x = (0.5 + noise - shift[:, None] * g).astype(np.float32).reshape(n, 2, 2, d // 4)
        assert np.all(np.argmax(model_fn(x).numpy(), axis=1) == y)
        return model_fn, weights, x, y, distance, g

    return make
