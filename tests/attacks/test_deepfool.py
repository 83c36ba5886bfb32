"""DeepFool (L2 and L∞) on linear models, where one linearised step is the exact minimal perturbation."""

import numpy as np
import pytest
import tensorflow as tf

from tfrobust.attacks.deepfool import DeepFool
from tfrobust.attacks.threat_model import per_example_norm
from tfrobust.errors import TfrobustError


@pytest.fixture
def binary_problem(boundary_problem):
    """The shared boundary problem (tests/conftest.py) as (model_fn, x, y, adversary margin
    m = z_other − z_y < 0, its gradient g = w_other − w_y shaped like x)."""
    def make(**kwargs):
        model_fn, _, x, y, _, g = boundary_problem(**kwargs)
        logits = model_fn(x).numpy()
        margin = logits[np.arange(len(y)), 1 - y] - logits[np.arange(len(y)), y]
        assert np.all(margin < 0)
        return model_fn, x, y, margin, g.reshape(x.shape)

    return make


def predictions(model_fn, x):
    return np.argmax(model_fn(tf.constant(x, tf.float32)).numpy(), axis=1)


def test_l2_finds_the_exact_minimal_distance_in_one_step(binary_problem):
    model_fn, x, y, margin, g = binary_problem()
    attack = DeepFool(overshoot=0.02)
    x_adv, norms = attack.minimal(model_fn, x, y)
    g_norm = np.linalg.norm(g.reshape(len(x), -1), axis=1)
    exact = np.abs(margin) / g_norm
    np.testing.assert_allclose(norms.numpy(), 1.02 * exact, rtol=1e-4)
    step = (1.02 * exact / g_norm).reshape(-1, 1, 1, 1) * g
    np.testing.assert_allclose(x_adv.numpy(), x + step, atol=1e-6)
    assert np.all(predictions(model_fn, x_adv) != y)
    # One iteration: initial forward, forward + 1 class-gradient backward, forward to check.
    assert attack.last_counts == {"forward": 3 * len(x), "backward": len(x)}


def test_linf_finds_the_exact_minimal_distance_in_one_step(binary_problem):
    model_fn, x, y, margin, g = binary_problem()
    x_adv, norms = DeepFool(norm="linf", overshoot=0.02).minimal(model_fn, x, y)
    exact = np.abs(margin) / np.abs(g.reshape(len(x), -1)).sum(axis=1)  # dual norm: L1
    np.testing.assert_allclose(norms.numpy(), 1.02 * exact, rtol=1e-4)
    np.testing.assert_allclose(x_adv.numpy(), x + 1.02 * exact.reshape(-1, 1, 1, 1) * np.sign(g), atol=1e-6)
    assert np.all(predictions(model_fn, x_adv) != y)


def test_multiclass_linear_model_step_goes_to_the_nearest_boundary(linear_model):
    # For an affine classifier the minimal L2 distance is min_k |f_k − f_y| / ‖w_k − w_y‖.
    rng = np.random.default_rng(3)
    weights = rng.normal(size=(10, 5)).astype(np.float32)
    model_fn = linear_model(weights, np.zeros(5, np.float32))
    x = rng.uniform(0.4, 0.6, size=(8, 10)).astype(np.float32)
    y = predictions(model_fn, x)
    logits = model_fn(x).numpy()
    exact = np.array([min(abs(logits[i, k] - logits[i, y[i]])
                          / np.linalg.norm(weights[:, k] - weights[:, y[i]]) for k in range(5) if k != y[i])
                      for i in range(len(x))])
    attack = DeepFool(overshoot=0.02, num_classes=5)
    x_adv, norms = attack.minimal(model_fn, x, y)
    np.testing.assert_allclose(norms.numpy(), 1.02 * exact, rtol=1e-4)
    assert np.all(predictions(model_fn, x_adv) != y)
    assert attack.last_counts == {"forward": 3 * len(x), "backward": 4 * len(x)}  # 4 candidate classes
    # Restricting the candidates to the top-2 classes (y and one other) costs 1 backward per step.
    top2 = DeepFool(overshoot=0.02, num_classes=2)
    _, norms2 = top2.minimal(model_fn, x, y)
    assert np.all(norms2.numpy() >= norms.numpy() - 1e-6)
    assert top2.last_counts["backward"] % len(x) == 0 and top2.last_counts["backward"] < 4 * len(x) * 2


def test_call_keeps_only_results_inside_the_ball(binary_problem):
    model_fn, x, y, margin, g = binary_problem()
    _, norms = DeepFool().minimal(model_fn, x, y)
    eps = float(np.median(norms.numpy()))
    x_adv = DeepFool(eps=eps)(model_fn, x, y).numpy()
    inside = norms.numpy() <= eps
    assert np.all(per_example_norm(x_adv - x, "l2").numpy() <= eps + 1e-6)
    assert np.all(predictions(model_fn, x_adv[inside]) != y[inside])
    np.testing.assert_array_equal(x_adv[~inside], x[~inside])
    # Robust accuracy at ε is the fraction of points whose minimal norm exceeds ε.
    assert np.mean(predictions(model_fn, x_adv) == y) == pytest.approx(np.mean(~inside))


def test_failure_gives_x_and_infinite_norm_and_misclassified_points_norm_zero():
    constant = lambda x: tf.zeros([tf.shape(x)[0], 3]) + tf.constant([1.0, 0.0, 0.0])
    x = np.full((4, 6), 0.5, np.float32)
    y = np.array([0, 0, 1, 2])  # the last two are already misclassified
    attack = DeepFool(steps=3)
    x_adv, norms = attack.minimal(constant, x, y)
    np.testing.assert_array_equal(x_adv.numpy(), x)
    np.testing.assert_array_equal(norms.numpy(), [np.inf, np.inf, 0.0, 0.0])
    # Two points stay active for all 3 steps: 4 + 2·3·2 forwards, 2 backward per step each.
    assert attack.last_counts == {"forward": 4 + 2 * 3 * 2, "backward": 2 * 3 * 2}


@pytest.mark.parametrize("norm,eps", [("l2", 1.0), ("linf", 0.1)])
def test_invariants_ball_range_and_no_accuracy_gain(small_convnet, border_images, norm, eps):
    model, x = small_convnet(), border_images(32)
    y = np.argmax(model(x).numpy(), axis=1)
    attack = DeepFool(norm=norm, eps=eps)  # 50 steps: clipping at the range's ends slows DeepFool
    x_adv = attack(model, x, y)
    assert x_adv.dtype == tf.float32
    assert np.all(per_example_norm(x_adv - x, norm).numpy() <= eps + 1e-6)
    assert x_adv.numpy().min() >= 0.0 and x_adv.numpy().max() <= 1.0
    assert np.mean(np.argmax(model(x_adv).numpy(), axis=1) == y) < 1.0
    x_min, norms = attack.minimal(model, x, y)
    found = np.isfinite(norms.numpy())
    assert np.mean(found) > 0.5
    # Found points are fooled: the true logit is not above the best other one. A point that clipping
    # to [0, 1] left exactly on the boundary is a tie, and the attack's compiled forward and this eager
    # one may break a tie differently (float rounding, ~1e-7), so ties count as fooled.
    logits = model(x_min.numpy()[found]).numpy()
    true_logit = logits[np.arange(len(logits)), y[found]]
    others = np.where(np.eye(3, dtype=bool)[y[found]], -np.inf, logits).max(axis=1)
    assert np.all(true_logit <= others + 1e-5 * np.maximum(1.0, np.abs(others)))


def test_no_retracing_across_batch_sizes(binary_problem):
    model_fn, x, y, _, _ = binary_problem(n=16)
    attack = DeepFool(steps=3)
    for n in (16, 7, 16, 5):
        attack(model_fn, x[:n], y[:n])
        attack.minimal(model_fn, x[:n], y[:n])
    assert attack.trace_count <= 2
    assert attack._compiled_minimal.experimental_get_tracing_count() <= 2


def test_defaults_and_config():
    attack = DeepFool()
    assert attack.threat.norm == "l2"
    config = attack.get_config()
    assert config["name"] == "DeepFool" and config["steps"] == 50 and config["overshoot"] == 0.02
    assert config["num_classes"] == 10


@pytest.mark.parametrize("kwargs,message", [
    ({"targeted": True}, "DeepFool is untargeted; targeted=True is not supported"),
    ({"steps": 0}, "steps must be in"), ({"overshoot": -0.1}, r"overshoot must be in \[0.0, inf\)"),
    ({"num_classes": 1}, "num_classes must be in"), ({"norm": "l1"}, "unknown norm 'l1'")])
def test_bad_configuration_fails_at_construction(kwargs, message):
    with pytest.raises(TfrobustError, match=message):
        DeepFool(**kwargs)
