"""Gaussian noise: σ = 0 is the identity, the noise has the right scale, seeds, worst-of-k."""

import numpy as np
import pytest

from tfrobust.attacks.gaussian_noise import GaussianNoise
from tfrobust.errors import TfrobustError


@pytest.fixture
def binary_problem(centred_binary_problem):
    """A binary linear model centred on 0.5 and 64 interior points [64, 12] near its boundary."""
    return lambda: centred_binary_problem(n=64, low=0.45, high=0.55, image=False)[:3]


def test_sigma_zero_returns_x(binary_problem):
    model_fn, x, y = binary_problem()
    np.testing.assert_array_equal(GaussianNoise(sigma=0.0)(model_fn, x, y).numpy(), x)


def test_noise_has_standard_deviation_sigma_on_interior_points(binary_problem):
    model_fn, x, y = binary_problem()
    attack = GaussianNoise(sigma=0.02)
    delta = attack(model_fn, x, y).numpy() - x  # 768 draws, 0.45–0.55 ± 0.1 never clips
    assert abs(delta.std() - 0.02) < 0.02 * 0.08
    assert abs(delta.mean()) < 0.02 * 0.15
    assert attack.last_counts == {"forward": 0, "backward": 0}  # one sample: no model evaluation


def test_deterministic_under_a_seed_fresh_per_call_and_varies_with_seed(binary_problem):
    model_fn, x, y = binary_problem()
    make = lambda seed: GaussianNoise(sigma=0.1, seed=seed)
    a, b, c = make(5), make(5), make(6)
    first_a, first_b, first_c = (attack(model_fn, x, y).numpy() for attack in (a, b, c))
    np.testing.assert_array_equal(first_a, first_b)
    assert not np.array_equal(first_a, first_c)
    assert not np.array_equal(first_a, a(model_fn, x, y).numpy())  # a new draw on the next batch


def test_output_is_clipped_to_the_range(binary_problem):
    model_fn, x, y = binary_problem()
    x_adv = GaussianNoise(sigma=2.0)(model_fn, x, y).numpy()
    assert x_adv.dtype == np.float32 and x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert np.mean((x_adv == 0.0) | (x_adv == 1.0)) > 0.5


def test_eps_is_sigma_unless_sigma_is_given():
    assert GaussianNoise(eps=0.07).sigma == pytest.approx(0.07)
    attack = GaussianNoise(eps=0.07, sigma=0.01, samples=3)
    assert attack.sigma == 0.01 and attack.needs_gradients is False
    config = attack.get_config()
    assert config["name"] == "GaussianNoise" and config["sigma"] == 0.01 and config["samples"] == 3


def test_worst_of_several_samples_breaks_more_points(binary_problem):
    model_fn, x, y = binary_problem()
    one = GaussianNoise(sigma=0.05, seed=1)
    many = GaussianNoise(sigma=0.05, samples=8, seed=1)
    broken_one = np.mean(np.argmax(model_fn(one(model_fn, x, y)).numpy(), axis=1) != y)
    broken_many = np.mean(np.argmax(model_fn(many(model_fn, x, y)).numpy(), axis=1) != y)
    assert broken_many > broken_one
    assert many.last_counts == {"forward": 8 * len(x), "backward": 0}


def test_no_retracing_across_batch_sizes(binary_problem):
    model_fn, x, y = binary_problem()
    for samples in (1, 3):
        attack = GaussianNoise(sigma=0.1, samples=samples)
        for n in (16, 7, 16, 5):
            attack(model_fn, x[:n], y[:n])
        assert attack.trace_count <= 2


@pytest.mark.parametrize("kwargs,message", [
    ({"sigma": -0.1}, r"sigma must be in \[0.0, inf\), got -0.1"), ({"samples": 0}, "samples must be in"),
    ({"eps": -1.0}, "eps must be in")])
def test_bad_configuration_fails_at_construction(kwargs, message):
    with pytest.raises(TfrobustError, match=message):
        GaussianNoise(**kwargs)
