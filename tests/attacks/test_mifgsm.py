"""MI-FGSM: the corner solution on a binary linear model, ball, range, counts, config errors."""

import numpy as np
import pytest
import tensorflow as tf

from tfrobust.attacks.mifgsm import MIFGSM
from tfrobust.attacks.threat_model import per_example_norm
from tfrobust.errors import TfrobustError


@pytest.fixture
def linear_problem(centred_binary_problem):
    """Binary linear model and interior points: every gradient is a positive multiple of
    g = w_other − w_y, so the momentum keeps that direction and the iterates walk straight to the
    worst case x + ε·sign(g) (L∞) or x + ε·g/‖g‖₂ (L2)."""
    return centred_binary_problem


@pytest.mark.parametrize("loss", ["ce", "margin"])
def test_linf_reaches_the_corner_solution(linear_problem, loss):
    model_fn, x, y, g = linear_problem()
    attack = MIFGSM(eps=0.05, steps=5, loss=loss)
    x_adv = attack(model_fn, x, y).numpy()
    np.testing.assert_allclose(x_adv, x + 0.05 * np.sign(g), atol=1e-5)
    assert attack.last_counts == {"forward": 5 * len(x), "backward": 5 * len(x)}


def test_l2_reaches_the_exact_worst_case(linear_problem):
    model_fn, x, y, g = linear_problem()
    x_adv = MIFGSM(norm="l2", eps=0.3, steps=4)(model_fn, x, y).numpy()
    unit_g = g / np.linalg.norm(g.reshape(len(x), -1), axis=1).reshape(-1, 1, 1, 1)
    np.testing.assert_allclose(x_adv, x + 0.3 * unit_g, atol=1e-5)


def test_targeted_moves_toward_the_target(linear_problem):
    model_fn, x, y, g = linear_problem()
    x_adv = MIFGSM(eps=0.05, steps=3, targeted=True)(model_fn, x, 1 - y).numpy()
    np.testing.assert_allclose(x_adv, x + 0.05 * np.sign(g), atol=1e-5)


def test_momentum_carries_past_a_kink_where_plain_iterates_oscillate():
    # The attacker ascends −|x₀ − 0.57| with steps of 0.05 from 0.5: plain iterates (μ = 0) go
    # 0.55, 0.60, 0.55, 0.60; with μ = 1 the accumulated direction (each gradient ±1 has L1 norm 1)
    # is 1, 2, 1, 0, so the iterates go 0.55, 0.60, 0.65, 0.65.
    def model_fn(x):
        return tf.stack([tf.zeros_like(x[:, 0]), -tf.abs(x[:, 0] - 0.57)], axis=1)

    x = np.array([[0.5, 0.5]], np.float32)
    y = np.array([0])
    make = lambda decay: MIFGSM(eps=0.2, steps=4, step_size=0.05, decay=decay, loss="margin")
    np.testing.assert_allclose(make(0.0)(model_fn, x, y).numpy(), [[0.60, 0.5]], atol=1e-6)
    np.testing.assert_allclose(make(1.0)(model_fn, x, y).numpy(), [[0.65, 0.5]], atol=1e-6)


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 0.8)])
def test_invariants_ball_range_and_no_accuracy_gain(small_convnet, border_images, norm, eps):
    model, x = small_convnet(), border_images(32)
    y = np.argmax(model(x).numpy(), axis=1)
    x_adv = MIFGSM(norm=norm, eps=eps, steps=5)(model, x, y)
    assert np.all(per_example_norm(x_adv - x, norm).numpy() <= eps + 1e-6)
    assert x_adv.numpy().min() >= 0.0 and x_adv.numpy().max() <= 1.0
    assert np.mean(np.argmax(model(x_adv).numpy(), axis=1) == y) < 1.0


def test_no_retracing_across_batch_sizes(linear_problem):
    model_fn, x, y, _ = linear_problem()
    attack = MIFGSM(eps=0.05, steps=2)
    for n in (16, 7, 16, 5):
        attack(model_fn, x[:n], y[:n])
    assert attack.trace_count <= 2


def test_defaults_and_config():
    attack = MIFGSM(eps=0.1)
    assert attack.steps == 10 and attack.decay == 1.0 and attack.step_size == pytest.approx(0.01)
    config = attack.get_config()
    assert config["name"] == "MIFGSM" and config["decay"] == 1.0 and config["loss"] == "ce"


@pytest.mark.parametrize("kwargs,message", [
    ({"steps": 0}, "steps must be in"), ({"decay": -0.5}, r"decay must be in \[0.0, inf\), got -0.5"),
    ({"step_size": 0.0}, r"step_size must be in \(0.0, inf\)"), ({"loss": "foo"}, "unknown loss 'foo'")])
def test_bad_configuration_fails_at_construction(kwargs, message):
    with pytest.raises(TfrobustError, match=message):
        MIFGSM(**kwargs)
