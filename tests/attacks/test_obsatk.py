"""ObsAtk: the two-step projection is the exact projection (Theorem 2.3.1), the attack's constraints,
its counts, and that it beats random zero-mean noise of the same norm on a small trained denoiser."""

import numpy as np
import pytest
import scipy.optimize
import tensorflow as tf

from tfrobust.attacks.obsatk import ObsAtk, ZeroMeanNoise, project_zero_mean_ball, zero_mean
from tfrobust.attacks.obsatk_spsa import ObsAtkSPSA
from tfrobust.errors import TfrobustError
from tests.denoising_fixtures import trained_denoiser  # noqa: F401  (a pytest fixture, requested by name below)


def exact_projection(delta, eps):
    """argmin_z ‖z − δ‖² s.t. Σz = 0, ‖z‖² ≤ ε², by a general constrained solver (trust-constr)."""
    constraints = [scipy.optimize.LinearConstraint(np.ones((1, len(delta))), 0.0, 0.0),
                   scipy.optimize.NonlinearConstraint(lambda z: z @ z, -np.inf, eps ** 2, jac=lambda z: 2 * z[None])]
    result = scipy.optimize.minimize(lambda z: np.sum((z - delta) ** 2), np.zeros_like(delta),
                                     jac=lambda z: 2 * (z - delta), hess=lambda z: 2 * np.eye(len(z)),
                                     constraints=constraints, method="trust-constr",
                                     options={"gtol": 1e-12, "xtol": 1e-12, "maxiter": 2000})
    assert result.success, result.message
    return result.x


@pytest.mark.parametrize("seed", range(6))
def test_two_step_projection_is_the_exact_projection(seed):
    rng = np.random.default_rng(seed)
    delta = rng.normal(size=7) + rng.normal() * 3  # a large mean component: the hyperplane step matters
    for eps in (0.3, 1.0, 50.0):  # outside the ball after the first step, and inside it
        ours = project_zero_mean_ball(tf.constant(delta[None, :, None, None], tf.float64), eps).numpy().ravel()
        np.testing.assert_allclose(ours, exact_projection(delta, eps), atol=1e-4)


def test_projection_constraints_and_idempotence():
    delta = tf.random.stateless_normal([5, 6, 4, 3], [1, 2]) + 0.7
    eps = tf.constant([0.1, 0.5, 1.0, 2.0, 100.0])
    projected = project_zero_mean_ball(delta, eps)
    flat = tf.reshape(projected, [5, -1]).numpy()
    np.testing.assert_allclose(flat.mean(axis=1), 0.0, atol=1e-6)
    assert np.all(np.linalg.norm(flat, axis=1) <= eps.numpy() * (1 + 1e-6))
    # The last example fits in its ball after centring: the projection is only the centring.
    np.testing.assert_allclose(projected[4].numpy(), zero_mean(delta)[4].numpy(), atol=1e-6)
    np.testing.assert_allclose(project_zero_mean_ball(projected, eps).numpy(), projected.numpy(), atol=1e-6)


def linear_denoiser(weights):
    """f(y) = W·vec(y) reshaped: ‖f(y + δ) − x‖² is a convex quadratic in δ."""
    weights = tf.constant(weights, tf.float32)

    def denoise(images):
        flat = tf.reshape(images, [tf.shape(images)[0], -1])
        return tf.reshape(tf.matmul(flat, weights, transpose_b=True), tf.shape(images))

    return denoise


def test_one_step_on_a_linear_denoiser_has_the_closed_form():
    # At δ = 0 the gradient is 2Wᵀ(Wy − x); one step of the full budget lands on ε·P(g)/‖P(g)‖.
    rng = np.random.default_rng(0)
    weights = np.eye(12) + 0.1 * rng.normal(size=(12, 12))
    y = rng.uniform(0.3, 0.7, size=(2, 2, 2, 3)).astype(np.float32)
    x = np.clip(y + rng.normal(scale=0.05, size=y.shape), 0, 1).astype(np.float32)
    attack = ObsAtk(eps=0.05, eps_unit="absolute", steps=1, step_size=1.0)
    y_adv = attack(linear_denoiser(weights), y, x).numpy()
    flat_y, flat_x = y.reshape(2, -1), x.reshape(2, -1)
    grad = 2 * (flat_y @ weights.T - flat_x) @ weights
    grad -= grad.mean(axis=1, keepdims=True)
    expected = flat_y + 0.05 * grad / np.linalg.norm(grad, axis=1, keepdims=True)
    np.testing.assert_allclose(y_adv.reshape(2, -1), expected, atol=1e-5)
    assert attack.last_counts == {"forward": 2, "backward": 2}


def test_perturbation_is_zero_mean_inside_the_budget_and_clipped():
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(48, 48))
    y = rng.uniform(0.2, 0.8, size=(3, 4, 4, 3)).astype(np.float32)
    x = rng.uniform(0.2, 0.8, size=y.shape).astype(np.float32)
    attack = ObsAtk(eps=5 / 255, steps=5)
    assert attack.budget(y.shape) == pytest.approx(5 / 255 * np.sqrt(48))
    delta = (attack(linear_denoiser(weights), y, x).numpy() - y).reshape(3, -1)
    np.testing.assert_allclose(delta.mean(axis=1), 0.0, atol=1e-6)  # no pixel reached the range's border
    np.testing.assert_allclose(np.linalg.norm(delta, axis=1), attack.budget(y.shape), rtol=1e-4)
    saturated = ObsAtk(eps=0.5, eps_unit="absolute", steps=3)(linear_denoiser(weights), np.ones_like(y), x).numpy()
    assert saturated.min() >= 0.0 and saturated.max() <= 1.0


def test_zero_mean_noise_has_exactly_the_budget():
    y = np.full((2, 8, 8, 1), 0.5, np.float32)
    noise = ZeroMeanNoise(eps=5 / 255, seed=3)
    delta = (noise(None, y, y).numpy() - y).reshape(2, -1)
    np.testing.assert_allclose(delta.mean(axis=1), 0.0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(delta, axis=1), 5 / 255 * 8, rtol=1e-5)
    np.testing.assert_array_equal(ZeroMeanNoise(eps=5 / 255, seed=3)(None, y, y).numpy(), noise.__class__(
        eps=5 / 255, seed=3)(None, y, y).numpy())


@pytest.mark.parametrize("kwargs, message", [
    ({"eps": 0.0}, "eps must be"), ({"eps": -1.0}, "eps must be"), ({"eps": 0.1, "steps": 0}, "steps must be"),
    ({"eps": 0.1, "eps_unit": "pixels"}, "unknown eps_unit"), ({"eps": 0.1, "step_size": 0}, "step_size must be")])
def test_bad_arguments_raise_one_line(kwargs, message):
    with pytest.raises(TfrobustError, match=message):
        ObsAtk(**kwargs)


def test_bad_images_raise_one_line():
    attack = ObsAtk(eps=0.1)
    identity = lambda images: images
    good = np.full((1, 4, 4, 1), 0.5, np.float32)
    with pytest.raises(TfrobustError, match="must be 4-D"):
        attack(identity, good[0], good[0])
    with pytest.raises(TfrobustError, match=r"must lie in \[0.0, 1.0\]"):
        attack(identity, good * 255, good)
    with pytest.raises(TfrobustError, match="same shape"):
        attack(identity, good, np.full((1, 4, 5, 1), 0.5, np.float32))
    with pytest.raises(TfrobustError, match="shaped like its input"):
        attack(lambda images: images[:, :2], good, good)


def test_obsatk_beats_zero_mean_noise_on_a_small_trained_denoiser(trained_denoiser):  # noqa: F811  (the fixture)
    model, noisy, clean = trained_denoiser
    eps = 8 / 255
    restored = {
        "none": model(noisy, training=False),
        "random": model(ZeroMeanNoise(eps=eps, seed=0)(None, noisy, clean), training=False),
        "obsatk": model(ObsAtk(eps=eps, steps=5)(lambda images: model(images, training=False), noisy, clean),
                        training=False),
    }
    psnr = {name: float(tf.reduce_mean(tf.image.psnr(out, clean, 1.0))) for name, out in restored.items()}
    # Same norm, same zero mean: the attack's direction costs decibels more than a random one (the
    # measured gap is about 3 dB).
    assert psnr["obsatk"] < psnr["random"] < psnr["none"], psnr
    assert psnr["random"] - psnr["obsatk"] > 1.5, psnr


def test_query_attack_respects_the_constraints_and_beats_random_noise():
    rng = np.random.default_rng(2)
    weights = rng.normal(size=(16, 16))
    predict = lambda images: (images.reshape(len(images), -1) @ weights.T).reshape(images.shape)
    y = rng.uniform(0.3, 0.7, size=(4, 4, 4, 1)).astype(np.float32)
    x = rng.uniform(0.3, 0.7, size=y.shape).astype(np.float32)
    attack = ObsAtkSPSA(eps=0.2, eps_unit="absolute", steps=5, samples=32, seed=0)
    y_adv = attack(predict, y, x).numpy()
    delta = (y_adv - y).reshape(4, -1)
    np.testing.assert_allclose(delta.mean(axis=1), 0.0, atol=1e-6)
    assert np.all(np.linalg.norm(delta, axis=1) <= 0.2 + 1e-5)
    assert attack.last_counts == {"forward": 4 * (1 + 5 * (2 * 32 + 1)), "backward": 0}
    loss = lambda images: np.sum((predict(images) - x) ** 2, axis=(1, 2, 3))
    random = ZeroMeanNoise(eps=0.2, eps_unit="absolute", seed=0)(None, y, x).numpy()
    assert np.all(loss(y_adv) > loss(random))
