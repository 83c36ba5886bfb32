"""SPSA: known worst cases on NumPy-only linear models, invariants on a Keras net, batching, query
counting, determinism and configuration errors."""

import numpy as np
import pytest
import tensorflow as tf

from tfrobust.attacks import per_example_norm
from tfrobust.attacks.spsa import SPSA
from tfrobust.errors import TfrobustError


@pytest.fixture
def binary_linear_problem(query_problem):
    """The shared ``query_problem`` (tests/conftest.py)."""
    return query_problem


def fooled(predict, x_adv, y):
    return np.argmax(predict(np.asarray(x_adv, np.float32)), axis=1) != y


@pytest.mark.parametrize("loss", ["margin", "ce"])
@pytest.mark.parametrize("norm,eps", [("linf", 0.05), ("l2", 0.1)])
def test_finds_points_within_half_eps_of_the_boundary_and_never_beyond_eps(binary_linear_problem, norm, eps, loss):
    inside, outside = [0.1, 0.3, 0.45, 0.49], [1.02, 1.2, 2.0]
    predict, x, y = binary_linear_problem(norm, eps, inside + outside)
    attack = SPSA(norm=norm, eps=eps, steps=30, samples=8, loss=loss, seed=0)
    x_adv = attack(predict, x, y)
    assert np.all(per_example_norm(x_adv - x, norm).numpy() <= eps + 1e-6)
    np.testing.assert_array_equal(fooled(predict, x_adv, y), [True] * len(inside) + [False] * len(outside))


def test_linf_approaches_the_worst_case_margin_of_a_linear_model(binary_linear_problem):
    # The margin is linear, so Adam on the SPSA estimate walks toward the vertex x + ε·sign(∇margin);
    # coordinates with tiny weights converge last, so compare the margin drop, not the vertex.
    eps = 0.05
    predict, x, y = binary_linear_problem("linf", eps, [3.0, 3.0])
    x_adv = SPSA(norm="linf", eps=eps, steps=40, samples=16)(predict, x, y).numpy()
    w_diff = predict.weights[:, 0]
    # z_0 − z_1 = ⟨w_diff, x − 0.5⟩ falls for label 0 and rises for label 1.
    drop = np.where(y == 0, -1.0, 1.0) * np.sum((x_adv - x).reshape(len(x), -1) * w_diff, axis=1)
    assert np.all(drop >= 0.95 * eps * np.abs(w_diff).sum())
    assert np.all(drop <= eps * np.abs(w_diff).sum() + 1e-5)


def test_targeted_spsa_reaches_the_target_on_a_multiclass_linear_model(counting_predict):
    rng = np.random.default_rng(1)
    predict = counting_predict(rng.normal(size=(12, 4)), np.zeros(4))
    x = rng.uniform(0.3, 0.7, size=(8, 12)).astype(np.float32)  # any input rank works
    targets = (np.argmax(predict(x), axis=1) + 1) % 4
    x_adv = SPSA(norm="linf", eps=0.3, steps=30, samples=8, targeted=True)(predict, x, targets).numpy()
    assert np.mean(np.argmax(predict(x_adv), axis=1) == targets) >= 0.75


@pytest.mark.parametrize("call", ["keras", "tf_function", "numpy"])
@pytest.mark.parametrize("norm,eps", [("linf", 0.2), ("l2", 0.5)])
def test_invariants_ball_range_and_no_accuracy_gain(small_convnet, border_images, call, norm, eps):
    model = small_convnet(seed=0)
    model_fn = {"keras": model, "tf_function": tf.function(lambda t: model(t)),
                "numpy": lambda a: np.asarray(model(a))}[call]
    x = border_images(12)  # range border
    y = np.argmax(model(x).numpy(), axis=1)
    y[:2] = (y[:2] + 1) % 3  # two points misclassified from the start
    attack = SPSA(norm=norm, eps=eps, steps=10, samples=8, learning_rate=0.05)
    x_adv = attack(model_fn, x, y)
    assert x_adv.dtype == tf.float32 and x_adv.shape == x.shape
    assert np.all(per_example_norm(x_adv - x, norm).numpy() <= eps + 1e-6)
    assert x_adv.numpy().min() >= 0.0 and x_adv.numpy().max() <= 1.0
    np.testing.assert_array_equal(x_adv.numpy()[:2], x[:2])  # already misclassified: untouched
    correct = np.argmax(model(x_adv).numpy(), axis=1) == y
    assert correct.mean() < 10 / 12, "SPSA changed no prediction on a random net at a large budget"
    assert attack.last_counts["backward"] == 0


def test_deterministic_under_a_seed_and_varies_with_it(binary_linear_problem):
    predict, x, y = binary_linear_problem("linf", 0.05, [3.0] * 3)
    make = lambda seed: SPSA(norm="linf", eps=0.05, steps=3, samples=4, seed=seed)
    a, b, c = make(3)(predict, x, y).numpy(), make(3)(predict, x, y).numpy(), make(4)(predict, x, y).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_counts_are_the_queries_made_and_calls_respect_the_batch_size(counting_predict, binary_linear_problem):
    predict, x, y = binary_linear_problem("linf", 0.05, [3.0, 3.0, 0.3, 3.0, 0.2])
    attack = SPSA(norm="linf", eps=0.05, steps=6, samples=5, batch_size=4)  # 10 probes: 3 calls
    attack(predict, x, y)
    n = len(x)
    assert attack.last_counts == {"forward": predict.count, "backward": 0}
    assert predict.count < n * (1 + 6 * (2 * 5 + 1))  # two points stop early
    assert predict.largest_call == len(x)  # the clean query; every later call holds ≤ 4 images
    later = counting_predict(predict.weights, predict.bias)
    attack(later, x[2:3], y[2:3])
    assert later.largest_call == 4
    far = counting_predict(predict.weights, predict.bias)
    attack(far, x[:2], y[:2])  # never adversarial: clean query, then per step 2·samples probes + 1
    assert attack.last_counts["forward"] == far.count == 2 * (1 + 6 * (2 * 5 + 1))
    wrong = (y + 1) % 2
    x_adv = attack(far, x[:1], wrong[:1])  # misclassified from the start: the clean query only
    assert attack.last_counts == {"forward": 1, "backward": 0}
    np.testing.assert_array_equal(x_adv.numpy(), x[:1])


def test_needs_no_gradients_and_reports_its_configuration():
    attack = SPSA(norm="l2", eps=0.5, steps=5, learning_rate=0.02, delta=0.005, samples=3, seed=2)
    assert SPSA.needs_gradients is False
    config = attack.get_config()
    assert config["name"] == "SPSA" and config["norm"] == "l2" and config["seed"] == 2
    assert {k: config[k] for k in ("steps", "learning_rate", "delta", "samples", "loss", "batch_size")} == {
        "steps": 5, "learning_rate": 0.02, "delta": 0.005, "samples": 3, "loss": "margin", "batch_size": 1024}


@pytest.mark.parametrize("kwargs,message", [
    ({"steps": 0}, r"steps must be in \[1, inf\), got 0"),
    ({"samples": 0}, r"samples must be in \[1, inf\), got 0"),
    ({"delta": 0.0}, r"delta must be in \(0.0, inf\), got 0.0"),
    ({"delta": -0.01}, r"delta must be in \(0.0, inf\), got -0.01"),
    ({"learning_rate": 0.0}, r"learning_rate must be in \(0.0, inf\)"),
    ({"batch_size": 0}, r"batch_size must be in \[1, inf\)"),
    ({"loss": "dlr"}, "unknown loss 'dlr'; valid choices: margin, ce"),
    ({"norm": "l1"}, "unknown norm 'l1'")])
def test_bad_configuration_fails_at_construction(kwargs, message):
    with pytest.raises(TfrobustError, match=message):
        SPSA(**kwargs)
