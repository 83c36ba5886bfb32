"""R+FGSM: exact structure on a binary linear model (random sign step + FGSM step), ball, range, seeds."""

import numpy as np
import pytest
import tensorflow as tf

from tfrobust.attacks.fgsm import FGSM
from tfrobust.attacks.rfgsm import RFGSM
from tfrobust.attacks.threat_model import per_example_norm
from tfrobust.errors import TfrobustError


@pytest.fixture
def linear_problem(centred_binary_problem):
    """A binary linear model centred on 0.5 and interior points: the loss gradient at any point is a
    positive multiple of g = w_other − w_y, so the FGSM step is known in closed form."""
    return centred_binary_problem


def adversary_margin(model_fn, x, y):
    logits = model_fn(tf.constant(x, tf.float32)).numpy()
    return logits[np.arange(len(y)), 1 - y] - logits[np.arange(len(y)), y]


def test_linf_is_a_random_sign_step_then_the_fgsm_step(linear_problem):
    model_fn, x, y, g = linear_problem()
    eps, alpha = 0.06, 0.02
    x_adv = RFGSM(eps=eps, alpha=alpha)(model_fn, x, y).numpy()
    random_part = (x_adv - x - (eps - alpha) * np.sign(g)) / alpha
    np.testing.assert_allclose(np.abs(random_part), 1.0, atol=1e-4)
    assert 0.3 < np.mean(random_part > 0) < 0.7  # a random sign, not a fixed direction
    # The margin to the wrong class grows by α⟨g, s⟩ + (ε − α)‖g‖₁ ≥ (ε − 2α)‖g‖₁ > 0.
    gain = adversary_margin(model_fn, x_adv, y) - adversary_margin(model_fn, x, y)
    l1 = np.abs(g).reshape(len(x), -1).sum(axis=1)
    assert np.all(gain >= (eps - 2 * alpha) * l1 - 1e-4)


def test_default_alpha_is_half_eps_and_margin_never_drops(linear_problem):
    model_fn, x, y, g = linear_problem()
    attack = RFGSM(eps=0.05)
    assert attack.alpha == pytest.approx(0.025)
    x_adv = attack(model_fn, x, y).numpy()
    gain = adversary_margin(model_fn, x_adv, y) - adversary_margin(model_fn, x, y)
    assert np.all(gain >= -1e-4) and np.mean(gain) > 0
    assert attack.last_counts == {"forward": len(x), "backward": len(x)}


def test_alpha_zero_is_fgsm(linear_problem):
    model_fn, x, y, _ = linear_problem()
    np.testing.assert_allclose(RFGSM(eps=0.05, alpha=0.0)(model_fn, x, y).numpy(),
                               FGSM(eps=0.05)(model_fn, x, y).numpy(), atol=1e-6)


def test_l2_analogue_stays_in_the_ball_and_takes_the_gradient_step(linear_problem):
    model_fn, x, y, g = linear_problem()
    eps, alpha = 0.5, 0.2
    x_adv = RFGSM(norm="l2", eps=eps, alpha=alpha)(model_fn, x, y).numpy()
    assert np.all(per_example_norm(x_adv - x, "l2").numpy() <= eps + 1e-6)
    unit_g = g / np.linalg.norm(g.reshape(len(x), -1), axis=1).reshape(-1, 1, 1, 1)
    random_part = x_adv - x - (eps - alpha) * unit_g
    np.testing.assert_allclose(per_example_norm(random_part, "l2").numpy(), alpha, rtol=1e-4)


def test_deterministic_under_a_seed_and_varies_with_it(linear_problem):
    model_fn, x, y, _ = linear_problem()
    a, b, c = (RFGSM(eps=0.05, seed=s)(model_fn, x, y).numpy() for s in (1, 1, 2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 0.8)])
def test_invariants_ball_range_and_no_accuracy_gain(small_convnet, border_images, norm, eps):
    model, x = small_convnet(), border_images(32)
    y = np.argmax(model(x).numpy(), axis=1)
    attack = RFGSM(norm=norm, eps=eps)
    x_adv = attack(model, x, y)
    assert np.all(per_example_norm(x_adv - x, norm).numpy() <= eps + 1e-6)
    assert x_adv.numpy().min() >= 0.0 and x_adv.numpy().max() <= 1.0
    assert x_adv.dtype == tf.float32
    assert np.mean(np.argmax(model(x_adv).numpy(), axis=1) == y) < 1.0


def test_no_retracing_across_batch_sizes(linear_problem):
    model_fn, x, y, _ = linear_problem()
    attack = RFGSM(eps=0.05)
    for n in (16, 7, 16, 5):
        attack(model_fn, x[:n], y[:n])
    assert attack.trace_count <= 2


@pytest.mark.parametrize("kwargs,message", [
    ({"eps": 0.05, "alpha": 0.1}, r"alpha must be in \[0.0, 0.05\], got 0.1"),
    ({"alpha": -0.1}, "alpha must be in"), ({"loss": "foo"}, "unknown loss 'foo'"),
    ({"norm": "l1"}, "unknown norm 'l1'")])
def test_bad_configuration_fails_at_construction(kwargs, message):
    with pytest.raises(TfrobustError, match=message):
        RFGSM(**kwargs)


def test_config_records_the_hyperparameters():
    config = RFGSM(eps=0.1, alpha=0.03, seed=4).get_config()
    assert config["name"] == "RFGSM" and config["alpha"] == 0.03 and config["loss"] == "ce"
    assert config["eps"] == 0.1 and config["seed"] == 4
