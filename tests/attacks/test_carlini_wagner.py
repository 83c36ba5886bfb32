"""C&W-L2 (minimum-norm) and C&W-L∞ (PGD on the capped margin) on models with known answers."""

import numpy as np
import pytest
import tensorflow as tf

from tfrobust.attacks.carlini_wagner import CarliniWagnerL2, CarliniWagnerLinf
from tfrobust.attacks.losses import CWMarginLoss
from tfrobust.attacks.pgd import PGD
from tfrobust.attacks.threat_model import per_example_norm
from tfrobust.errors import TfrobustError


@pytest.fixture
def binary_problem(boundary_problem):
    """The shared boundary problem (tests/conftest.py) as (model_fn, weights, x, y, distance)."""
    return lambda **kwargs: boundary_problem(**kwargs)[:5]


def adversary_margin(model_fn, x, y):
    logits = model_fn(tf.constant(x, tf.float32)).numpy()
    return logits[np.arange(len(y)), 1 - y] - logits[np.arange(len(y)), y]


# A budget a unit test affords: the reference defaults (9 × 1000) are for real networks.
FAST_L2 = {"binary_search_steps": 6, "max_iterations": 150}


def test_l2_finds_the_exact_minimal_distance_within_a_few_percent(binary_problem):
    model_fn, _, x, y, distance = binary_problem()
    attack = CarliniWagnerL2(**FAST_L2)
    x_adv, norms = attack.minimal(model_fn, x, y)
    norms = norms.numpy()
    assert np.all(adversary_margin(model_fn, x_adv.numpy(), y) > 0)  # all misclassified
    np.testing.assert_allclose(norms, per_example_norm(x_adv - x, "l2").numpy(), rtol=1e-5)
    assert np.all(norms >= distance * (1 - 1e-4))  # nothing beats the exact minimum
    assert np.all(norms <= distance * 1.03)
    # Each Adam iteration is one forward and one backward pass per point.
    counts = attack.last_counts
    assert counts["forward"] == counts["backward"] and counts["forward"] % len(x) == 0
    assert len(x) * 6 <= counts["forward"] <= len(x) * 6 * 150


def test_l2_call_keeps_only_results_inside_the_ball(binary_problem):
    model_fn, _, x, y, distance = binary_problem()
    eps = float(np.median(distance))
    x_adv = CarliniWagnerL2(eps=eps, **FAST_L2)(model_fn, x, y).numpy()
    norms = per_example_norm(x_adv - x, "l2").numpy()
    assert np.all(norms <= eps + 1e-6)
    broken = adversary_margin(model_fn, x_adv, y) > 0
    # Points within ε (with C&W's few-% slack) are broken; points beyond ε are returned unchanged.
    assert np.all(broken[distance < eps / 1.03])
    np.testing.assert_array_equal(x_adv[distance > eps], x[distance > eps])
    # eps = inf: every adversarial example found is returned.
    unbounded = CarliniWagnerL2(eps=float("inf"), **FAST_L2)(model_fn, x, y).numpy()
    assert np.all(adversary_margin(model_fn, unbounded, y) > 0)


def test_l2_confidence_pushes_past_the_boundary(binary_problem):
    model_fn, _, x, y, distance = binary_problem(n=6)
    x_adv, norms = CarliniWagnerL2(confidence=1.0, **FAST_L2).minimal(model_fn, x, y)
    assert np.all(adversary_margin(model_fn, x_adv.numpy(), y) > 1.0)
    assert np.all(norms.numpy() > distance)


def test_l2_targeted_reaches_the_target_on_a_multiclass_linear_model(linear_model):
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(8, 5)).astype(np.float32) * 3
    model_fn = linear_model(weights, np.zeros(5, np.float32))
    x = rng.uniform(0.2, 0.8, size=(12, 8)).astype(np.float32)
    targets = (np.argmax(model_fn(x).numpy(), axis=1) + 1) % 5
    attack = CarliniWagnerL2(targeted=True, eps=float("inf"), **FAST_L2)
    x_adv = attack(model_fn, x, targets).numpy()
    assert np.mean(np.argmax(model_fn(x_adv).numpy(), axis=1) == targets) >= 0.9
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0


def test_l2_failure_returns_x_and_infinite_norm():
    # A model that ignores its input cannot be fooled.
    model_fn = lambda x: tf.zeros([tf.shape(x)[0], 2]) + tf.constant([1.0, 0.0])
    x = np.full((3, 4), 0.5, np.float32)
    attack = CarliniWagnerL2(binary_search_steps=2, max_iterations=5)
    x_adv, norms = attack.minimal(model_fn, x, np.zeros(3, int))
    np.testing.assert_array_equal(x_adv.numpy(), x)
    assert np.all(np.isinf(norms.numpy()))


def exact_linf_worst_case_margin(model_fn, weights, x, y, eps):
    g = (weights[:, 1 - y] - weights[:, y]).T.reshape(x.shape)
    return adversary_margin(model_fn, x + eps * np.sign(g), y)


def test_linf_equals_pgd_margin_exact_worst_case(binary_problem):
    model_fn, weights, x, y, _ = binary_problem()
    eps = 0.02
    attack = CarliniWagnerLinf(eps=eps, steps=20, step_size=eps / 4)
    found = adversary_margin(model_fn, attack(model_fn, x, y).numpy(), y)
    expected = exact_linf_worst_case_margin(model_fn, weights, x, y, eps)
    np.testing.assert_allclose(found, expected, rtol=1e-3, atol=1e-4)
    pgd = PGD(eps=eps, steps=20, step_size=eps / 4, loss="margin")
    np.testing.assert_allclose(found, adversary_margin(model_fn, pgd(model_fn, x, y).numpy(), y), atol=1e-4)
    assert attack.last_counts == {"forward": 21 * len(x), "backward": 20 * len(x)}


def test_linf_kappa_caps_the_margin(binary_problem):
    model_fn, weights, x, y, _ = binary_problem()
    eps = 0.03
    expected = exact_linf_worst_case_margin(model_fn, weights, x, y, eps)
    assert np.any(expected > 0.02) and np.any(expected < -0.02)  # some points breakable, some not
    found = adversary_margin(model_fn, CarliniWagnerLinf(eps=eps, steps=20, step_size=eps / 4, kappa=0.0)(
        model_fn, x, y).numpy(), y)
    assert np.all(found[expected > 0] > 0)  # broken (the cap only stops the push past κ)
    np.testing.assert_allclose(found[expected <= 0], expected[expected <= 0], atol=1e-4)


def test_margin_loss_is_capped_on_the_success_side_when_targeted():
    logits = tf.constant([[3.0, 0.0, 1.0]])
    # Untargeted from label 1: margin max(3, 1) − 0 = 3, capped at κ = 2.
    assert CWMarginLoss(2.0)(logits, tf.constant([1]))[0].numpy() == pytest.approx(2.0)
    # Targeted to class 0: success margin z_0 − max(z_1, z_2) = 2; the objective −loss is min(2, 1) = 1.
    assert -CWMarginLoss(1.0, targeted=True)(logits, tf.constant([0]))[0].numpy() == pytest.approx(1.0)


@pytest.mark.parametrize("attack", [
    CarliniWagnerL2(eps=1.0, binary_search_steps=3, max_iterations=30, learning_rate=0.05),
    CarliniWagnerLinf(eps=0.1, steps=5)])
def test_invariants_ball_range_and_no_accuracy_gain(small_convnet, border_images, attack):
    model, x = small_convnet(), border_images(32)
    y = np.argmax(model(x).numpy(), axis=1)
    x_adv = attack(model, x, y)
    assert x_adv.dtype == tf.float32
    assert np.all(per_example_norm(x_adv - x, attack.threat.norm).numpy() <= attack.threat.eps + 1e-6)
    assert x_adv.numpy().min() >= 0.0 and x_adv.numpy().max() <= 1.0
    assert np.mean(np.argmax(model(x_adv).numpy(), axis=1) == y) < 1.0


@pytest.mark.parametrize("make", [lambda: CarliniWagnerL2(binary_search_steps=2, max_iterations=3),
                                  lambda: CarliniWagnerLinf(eps=0.05, steps=2)])
def test_no_retracing_across_batch_sizes(binary_problem, make):
    model_fn, _, x, y, _ = binary_problem(n=16)
    attack = make()
    for n in (16, 7, 16, 5):
        attack(model_fn, x[:n], y[:n])
    assert attack.trace_count <= 2


def test_defaults_and_config():
    l2 = CarliniWagnerL2()
    assert l2.threat.norm == "l2"
    config = l2.get_config()
    assert config["name"] == "CarliniWagnerL2" and config["binary_search_steps"] == 9
    assert config["max_iterations"] == 1000 and config["initial_const"] == 1e-3 and config["confidence"] == 0
    linf = CarliniWagnerLinf(eps=0.03, kappa=5).get_config()
    assert linf["kappa"] == 5.0 and linf["norm"] == "linf"
    assert linf["loss"] == {"name": "cw_margin", "kappa": 5.0}


@pytest.mark.parametrize("make,message", [
    (lambda: CarliniWagnerL2(norm="linf"), "CarliniWagnerL2 minimises the L2 norm; got norm='linf'"),
    (lambda: CarliniWagnerL2(confidence=-1), "confidence must be in"),
    (lambda: CarliniWagnerL2(learning_rate=0), r"learning_rate must be in \(0.0, inf\)"),
    (lambda: CarliniWagnerL2(binary_search_steps=0), "binary_search_steps must be in"),
    (lambda: CarliniWagnerL2(max_iterations=0), "max_iterations must be in"),
    (lambda: CarliniWagnerL2(initial_const=0), "initial_const must be in"),
    (lambda: CarliniWagnerLinf(norm="l2"), "CarliniWagnerLinf is an L∞ attack; got norm='l2'"),
    (lambda: CarliniWagnerLinf(kappa=-1), "kappa must be in"),
    (lambda: CarliniWagnerLinf(steps=0), "steps must be in")])
def test_bad_configuration_fails_at_construction(make, message):
    with pytest.raises(TfrobustError, match=message):
        make()
