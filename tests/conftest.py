"""Shared test set-up.

Every test starts from the same random state, so tests that build randomly initialised models are
deterministic (a random net that an attack cannot break would otherwise make a test flaky).

The fixtures below are the linear problems whose answers are known in closed form, shared by the
attack and evaluation tests (each was copied into several test files before): ``linear_model`` builds
``logits = flatten(x) · W + b``; ``centred_binary_problem`` and ``boundary_problem`` build binary linear
models centred on 0.5 with interior points, labelled by the model or placed at known L2 distances from
its decision boundary.
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

# An attack returning a point outside its ε-ball or range (or a NaN) fails the test instead of being
# restored and counted as an attack failure (tfrobust.evaluation.robustness.verify_points).
os.environ.setdefault("TFROBUST_STRICT_ATTACKS", "1")


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


@pytest.fixture(scope="session")
def small_convnet():
    """The factory ``(classes=3, seed=None) -> keras.Sequential``: Conv2D(4, 3, relu) → Flatten →
    Dense(classes) on 6×6×1 images, a small non-linear model for the attacks' invariants. ``seed`` reseeds
    Keras first; None builds from the current state (reseeded to 0 before every test)."""
    def make(classes=3, seed=None):
        if seed is not None:
            keras.utils.set_random_seed(seed)
        return keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                                 keras.layers.Flatten(), keras.layers.Dense(classes)])

    return make


@pytest.fixture(scope="session")
def border_images():
    """The factory ``(n, seed=2) -> float32 [n, 6, 6, 1]`` with pixels in {0, 0.02, 0.5, 0.98, 1}: points
    on and next to the range border exercise the clip."""
    def make(n, seed=2):
        rng = np.random.default_rng(seed)
        return rng.choice([0.0, 0.02, 0.5, 0.98, 1.0], size=(n, 6, 6, 1)).astype(np.float32)

    return make


class CountingPredict:
    """A pure-NumPy ``predict`` (logits = flatten(x)·W + b) that counts the images it scores and checks
    that every probe is a float32 array inside [0, 1]."""

    def __init__(self, weights, bias):
        self.weights, self.bias = weights, bias
        self.count, self.largest_call = 0, 0

    def __call__(self, x):
        assert isinstance(x, np.ndarray) and x.dtype == np.float32
        assert x.min() >= 0.0 and x.max() <= 1.0  # probes stay in the valid range
        self.count += len(x)
        self.largest_call = max(self.largest_call, len(x))
        return x.reshape(len(x), -1).astype(np.float64) @ self.weights + self.bias


@pytest.fixture(scope="session")
def counting_predict():
    """The class ``CountingPredict(weights, bias)`` (prediction-only attacks' model)."""
    return CountingPredict


@pytest.fixture(scope="session")
def query_problem():
    """The factory ``(norm, eps, ratios, seed=0, size=5, dead_border=False) -> (predict, x, y)``.

    A binary linear model (a ``CountingPredict``) on ``size``×``size``×1 images and points whose distance
    to its decision boundary is ``ratio · eps`` in the attack's norm (|margin| / ‖w_diff‖₁ for L∞,
    / ‖w_diff‖₂ for L2). The points sit near 0.5 so the ε-ball never reaches the [0, 1] border and the
    distances are exact. ``dead_border`` zeroes the weights on the last row and column (see
    test_square.py: Square never moves those pixels once its squares are smaller than the image).
    """
    def make(norm, eps, ratios, seed=0, size=5, dead_border=False):
        rng = np.random.default_rng(seed)
        w_diff = rng.normal(size=(size, size, 1))
        if dead_border:
            w_diff[-1, :] = w_diff[:, -1] = 0.0
        w_diff = w_diff.reshape(-1)
        # z_0 − z_1 = ⟨w_diff, x − 0.5⟩: the boundary passes through the constant 0.5 image.
        predict = CountingPredict(np.stack([w_diff, np.zeros_like(w_diff)], axis=1),
                                  np.array([-0.5 * w_diff.sum(), 0.0]))
        dual = np.abs(w_diff).sum() if norm == "linf" else np.linalg.norm(w_diff)
        ratios = np.asarray(ratios, np.float64)
        y = np.arange(len(ratios)) % 2
        margin = np.where(y == 0, 1.0, -1.0) * ratios * eps * dual  # z_0 − z_1 at each point
        x = 0.5 + margin[:, None] * w_diff[None] / w_diff.dot(w_diff)
        return predict, x.reshape(-1, size, size, 1).astype(np.float32), y

    return make
