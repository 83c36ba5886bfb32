"""BPDA: a classifier that rounds its input to 4 grey levels has zero gradients everywhere; PGD through
BPDA (identity on the backward pass) breaks it while its predictions stay those of the real model."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrobust.attacks import PGD
from tfrobust.attacks.bpda import BPDA, bpda_model, straight_through
from tfrobust.errors import TfrobustError
from tfrobust.evaluation import gradient_health, run_suite


class Quantize(keras.layers.Layer):
    """Rounds [0, 1] inputs to 4 grey levels (0, 1/3, 2/3, 1): gradient zero almost everywhere."""

    def call(self, inputs):
        return keras.ops.round(inputs * 3) / 3


def quantized_classifier():
    return keras.Sequential([keras.Input((4, 4, 1)), Quantize(name="quantize"), keras.layers.Flatten(),
                             keras.layers.Dense(3)])


@pytest.fixture
def problem():
    model = quantized_classifier()
    x = np.random.default_rng(0).uniform(0, 1, size=(40, 4, 4, 1)).astype(np.float32)
    return model, x, np.argmax(model(x).numpy(), axis=1)


def test_pgd_through_bpda_breaks_what_plain_pgd_cannot_see(problem):
    model, x, y = problem
    attackable = bpda_model(model, ["quantize"])
    np.testing.assert_array_equal(attackable(x).numpy(), model(x).numpy())  # forward pass unchanged
    assert gradient_health(model, x, y)["zero"] == 1.0
    assert gradient_health(attackable, x, y)["zero"] == 0.0
    attack = PGD(eps=0.2, steps=10, random_start=False)
    plain = run_suite(model, x, y, {"pgd": attack})["rows"][0]["accuracy"]
    through = run_suite(attackable, x, y, {"pgd": attack})
    assert plain == 1.0  # zero gradients: PGD never moves
    # The suite evaluates the rewired model, whose predictions are the real model's.
    assert through["rows"][0]["accuracy"] < 0.5


def test_bpda_on_an_input_transform_and_a_custom_approximation(problem):
    model, x, y = problem
    classifier = keras.Sequential(model.layers[1:])
    fn = BPDA(classifier, input_transform=lambda v: tf.round(v * 3) / 3)
    np.testing.assert_allclose(fn(x).numpy(), model(x).numpy(), rtol=1e-6)
    x_adv = PGD(eps=0.2, steps=10, random_start=False)(fn, x, y).numpy()
    assert np.mean(np.argmax(model(x_adv).numpy(), axis=1) == y) < 0.5
    # A given approximation's gradient is used: g(x) = 2x doubles the identity's gradient.
    v = tf.constant([[0.2, 0.7]])
    with tf.GradientTape() as tape:
        tape.watch(v)
        out = straight_through(lambda t: tf.round(t), lambda t: 2 * t)(v)
    np.testing.assert_array_equal(out.numpy(), [[0.0, 1.0]])
    np.testing.assert_array_equal(tape.gradient(out, v).numpy(), [[2.0, 2.0]])


def test_bpda_rejects_unknown_layers(problem):
    with pytest.raises(TfrobustError, match="no layer named 'jpeg'"):
        bpda_model(problem[0], ["jpeg"])
