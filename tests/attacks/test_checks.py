"""AutoAttack's checks: probabilities, randomness on normalised logits, Square stronger than white-box."""

import numpy as np
import tensorflow as tf

from tfrobust.attacks import checks
from tfrobust.attacks.eot import logits_std


def test_probability_outputs_are_recognised():
    logits = np.random.default_rng(0).normal(size=(8, 10))
    assert checks.looks_like_probabilities(tf.nn.softmax(logits).numpy())
    assert not checks.looks_like_probabilities(logits)
    assert not checks.looks_like_probabilities(np.full((4, 10), 0.05))  # in [0, 1] but rows sum to 0.5


def test_randomness_check_ignores_float_noise_of_large_logits_but_not_randomness():
    w = tf.constant(np.random.default_rng(1).normal(size=(4, 5)) * 100, tf.float32)
    x = tf.constant(np.random.default_rng(2).uniform(size=(16, 4)), tf.float32)
    y = np.zeros(16, np.int64)

    def jittery(v):  # deterministic model + GPU-like float jitter of 1e-4 on logits of size ~100
        return tf.matmul(v, w) + tf.random.uniform([tf.shape(v)[0], 5], -1e-4, 1e-4)

    def randomised(v):
        return tf.matmul(v + tf.random.uniform(tf.shape(v), -0.1, 0.1), w)

    assert logits_std(jittery, x) > 1e-5  # the old absolute threshold would flag this model
    assert not checks.randomness(jittery, x, y)["flagged"]
    assert checks.randomness(randomised, x, y)["flagged"]


def test_square_stronger_flag_follows_check_square_sr():
    assert checks.square_stronger([("clean", 0.9), ("apgd-ce", 0.5), ("square", 0.499)])["flagged"] is False
    flagged = checks.square_stronger([("clean", 0.9), ("apgd-ce", 0.5), ("apgd-t", 0.45), ("square", 0.4)])
    assert flagged == {"flagged": True, "before_square": 0.45, "after_square": 0.4}
    assert checks.square_stronger([("clean", 0.9), ("apgd-ce", 0.5)]) is None
