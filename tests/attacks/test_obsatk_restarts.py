"""ObsAtk's random starts (for restarts): the start lies in the zero-mean ball, is reproducible per seed and
new per call, and a random-start run still converges to the known maximiser on the identity denoiser."""

import numpy as np
import pytest
import tensorflow as tf

from tfrobust.attacks.obsatk import ObsAtk, random_zero_mean_start
from tfrobust.errors import TfrobustError


def test_random_start_is_in_the_zero_mean_ball_and_reproducible():
    budget = tf.constant([0.1, 0.5, 2.0, 2.0])
    start = random_zero_mean_start(tf.constant([4, 5, 5, 2]), budget, tf.constant([3, 0], tf.int64)).numpy()
    flat = start.reshape(4, -1)
    np.testing.assert_allclose(flat.mean(axis=1), 0.0, atol=1e-6)
    norms = np.linalg.norm(flat, axis=1)
    assert np.all(norms <= budget.numpy() * (1 + 1e-5)) and np.all(norms > 0)
    assert norms[2] != pytest.approx(norms[3])  # the radius is drawn per example
    again = random_zero_mean_start(tf.constant([4, 5, 5, 2]), budget, tf.constant([3, 0], tf.int64)).numpy()
    np.testing.assert_array_equal(start, again)
    other = random_zero_mean_start(tf.constant([4, 5, 5, 2]), budget, tf.constant([3, 1], tf.int64)).numpy()
    assert not np.allclose(start, other)


def test_random_start_differs_per_call_and_from_the_zero_start():
    rng = np.random.default_rng(0)
    y = rng.uniform(0.3, 0.7, size=(2, 4, 4, 1)).astype(np.float32)
    x = rng.uniform(0.3, 0.7, size=y.shape).astype(np.float32)
    identity = lambda images: images
    tiny = {"eps": 0.5, "eps_unit": "absolute", "steps": 1, "step_size": 1e-3}
    attack = ObsAtk(random_start=True, seed=7, **tiny)
    first, second = attack(identity, y, x).numpy(), attack(identity, y, x).numpy()
    zero = ObsAtk(**tiny)(identity, y, x).numpy()
    assert not np.allclose(first, second) and not np.allclose(first, zero)
    np.testing.assert_array_equal(first, ObsAtk(random_start=True, seed=7, **tiny)(identity, y, x).numpy())
    assert attack.get_config()["random_start"] is True


def test_random_start_run_reaches_the_maximiser_on_the_identity_denoiser():
    # f(y) = y: ‖y + δ − x‖² over the zero-mean ball is maximal at δ* = ε·P(y − x)/‖P(y − x)‖.
    rng = np.random.default_rng(1)
    y = rng.uniform(0.3, 0.7, size=(3, 4, 4, 2)).astype(np.float32)
    x = rng.uniform(0.3, 0.7, size=y.shape).astype(np.float32)
    eps = 0.05
    delta = (ObsAtk(eps=eps, eps_unit="absolute", steps=40, step_size=0.5, random_start=True, seed=2)(
        lambda images: images, y, x).numpy() - y).reshape(3, -1)
    direction = (y - x).reshape(3, -1)
    direction -= direction.mean(axis=1, keepdims=True)
    expected = eps * direction / np.linalg.norm(direction, axis=1, keepdims=True)
    np.testing.assert_allclose(delta, expected, atol=2e-4)


def test_random_start_must_be_a_bool():
    with pytest.raises(TfrobustError, match="random_start must be True or False"):
        ObsAtk(eps=0.1, random_start="yes")
