"""FGSM and PGD on models with known answers, plus the invariants every attack keeps."""

import numpy as np
import pytest
import tensorflow as tf

from tfrobust.attacks import FGSM, PGD, per_example_norm
from tfrobust.errors import TfrobustError


@pytest.fixture
def binary_problem(linear_model):
    rng = np.random.default_rng(0)
    d = 12
    weights = rng.normal(size=(d, 2)).astype(np.float32)
    # Interior points, so the ε-ball never touches the [0, 1] boundary and the worst case is exact.
    x = rng.uniform(0.3, 0.7, size=(16, 2, 2, 3)).astype(np.float32)
    y = rng.integers(0, 2, size=16)
    return linear_model(weights, np.zeros(2, np.float32)), weights, x, y


def exact_worst_case(weights, x, y, eps, norm):
    """For 2 classes the margin z_other − z_y is linear with gradient w_other − w_y: the worst case moves
    ε·sign(g) (L∞) or ε·g/‖g‖ (L2) from x."""
    g = (weights[:, 1 - y] - weights[:, y]).T.reshape(x.shape)
    if norm == "linf":
        return x + eps * np.sign(g)
    return x + eps * g / np.linalg.norm(g.reshape(len(x), -1), axis=1).reshape(-1, 1, 1, 1)


@pytest.mark.parametrize("norm,eps", [("linf", 0.05), ("l2", 0.3)])
def test_fgsm_equals_exact_worst_case_on_binary_linear_model(binary_problem, norm, eps):
    model_fn, weights, x, y = binary_problem
    x_adv = FGSM(norm=norm, eps=eps)(model_fn, x, y).numpy()
    np.testing.assert_allclose(x_adv, exact_worst_case(weights, x, y, eps, norm), atol=1e-5)


@pytest.mark.parametrize("norm,eps", [("linf", 0.05), ("l2", 0.3)])
@pytest.mark.parametrize("loss", ["ce", "margin"])
def test_pgd_reaches_exact_worst_case_on_binary_linear_model(binary_problem, norm, eps, loss):
    model_fn, weights, x, y = binary_problem
    attack = PGD(norm=norm, eps=eps, steps=20, step_size=eps / 4, random_start=True, loss=loss)
    x_adv = attack(model_fn, x, y).numpy()
    expected = exact_worst_case(weights, x, y, eps, norm)
    margin_found = _margin(model_fn, x_adv, y)
    margin_best = _margin(model_fn, expected, y)
    np.testing.assert_allclose(margin_found, margin_best, rtol=1e-3, atol=1e-4)


def _margin(model_fn, x, y):
    logits = model_fn(tf.constant(x, tf.float32)).numpy()
    return logits[np.arange(len(y)), 1 - y] - logits[np.arange(len(y)), y]


def test_pgd_targeted_reaches_target_on_multiclass_linear_model(linear_model):
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(8, 5)).astype(np.float32) * 3
    model_fn = linear_model(weights, np.zeros(5, np.float32))
    x = rng.uniform(0.2, 0.8, size=(20, 8)).astype(np.float32)
    predictions = np.argmax(model_fn(x).numpy(), axis=1)
    targets = (predictions + 1) % 5
    x_adv = PGD(norm="linf", eps=0.5, steps=40, step_size=0.05, targeted=True)(model_fn, x, targets)
    assert np.mean(np.argmax(model_fn(x_adv).numpy(), axis=1) == targets) >= 0.9


@pytest.mark.parametrize("attack", [
    FGSM(norm="linf", eps=0.1), FGSM(norm="l2", eps=0.5),
    PGD(norm="linf", eps=0.1, steps=5, restarts=2), PGD(norm="l2", eps=0.5, steps=5)])
def test_invariants_ball_range_and_no_accuracy_gain(small_convnet, border_images, attack):
    model, x = small_convnet(), border_images(32)  # points on the range boundary exercise the clip
    y = np.argmax(model(x).numpy(), axis=1)  # all correctly classified clean
    x_adv = attack(model, x, y)
    delta = x_adv - x
    norm = per_example_norm(delta, attack.threat.norm).numpy()
    assert np.all(norm <= attack.threat.eps + 1e-6)
    assert x_adv.numpy().min() >= 0.0 and x_adv.numpy().max() <= 1.0
    robust = np.mean(np.argmax(model(x_adv).numpy(), axis=1) == y)
    assert robust <= 1.0  # clean accuracy is 1 by construction
    assert robust < 1.0, "the attack changed no prediction on a random net at a large budget"


def test_pgd_is_deterministic_under_a_seed_and_varies_with_it(binary_problem):
    model_fn, _, x, y = binary_problem
    make = lambda seed: PGD(norm="linf", eps=0.1, steps=2, step_size=0.01, random_start=True, seed=seed)
    a, b, c = make(3)(model_fn, x, y), make(3)(model_fn, x, y), make(4)(model_fn, x, y)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())


def test_restarts_keep_the_worst_case_per_point(linear_model):
    # A model whose loss is highest at one corner: more restarts can only keep or raise the loss.
    model_fn = linear_model(np.array([[1.0, -1.0]] * 4, np.float32), np.zeros(2, np.float32))
    x = np.full((8, 4), 0.5, np.float32)
    y = np.zeros(8, np.int64)
    one = PGD(eps=0.1, steps=1, step_size=0.01, restarts=1, seed=0)(model_fn, x, y)
    many = PGD(eps=0.1, steps=1, step_size=0.01, restarts=8, seed=0)(model_fn, x, y)
    assert np.all(_margin(model_fn, many.numpy(), y) >= _margin(model_fn, one.numpy(), y) - 1e-6)


def test_no_retracing_across_batches_of_different_sizes(binary_problem):
    model_fn, _, x, y = binary_problem
    attack = PGD(eps=0.1, steps=2)
    for n in (16, 7, 16, 5, 3):
        attack(model_fn, x[:n], y[:n])
    assert attack.trace_count <= 2  # first shape, then one generalised trace


@pytest.mark.parametrize("kwargs,message", [
    ({"eps": -0.1}, "eps must be in"), ({"norm": "l1"}, "unknown norm 'l1'; valid choices: linf, l2"),
    ({"steps": 0}, "steps must be in"), ({"loss": "foo"}, "unknown loss 'foo'"),
    ({"restarts": 0}, "restarts must be in")])
def test_bad_configuration_fails_at_construction(kwargs, message):
    with pytest.raises(TfrobustError, match=message):
        PGD(**kwargs)


def test_bad_inputs_fail_with_one_clear_error(binary_problem):
    model_fn, _, x, y = binary_problem
    attack = FGSM(eps=0.1)
    with pytest.raises(TfrobustError, match="must lie in"):
        attack(model_fn, x * 255, y)
    with pytest.raises(TfrobustError, match="NaN"):
        attack(model_fn, np.where(x > 0.5, np.nan, x), y)
    with pytest.raises(TfrobustError, match="labels must be in"):
        attack(model_fn, x, y + 2)
    with pytest.raises(TfrobustError, match="labels must be integers"):
        attack(model_fn, x, y.astype(np.float32))
    with pytest.raises(TfrobustError, match="16 images but 3 labels"):
        attack(model_fn, x, y[:3])
    with pytest.raises(TfrobustError, match=r"\[N, num_classes\] logits"):
        attack(lambda t: tf.reduce_sum(t, axis=[1, 2, 3]), x, y)


def test_counts_are_per_example_forward_and_backward_passes(binary_problem):
    model_fn, _, x, y = binary_problem
    attack = PGD(eps=0.1, steps=4, restarts=3)
    attack(model_fn, x, y)
    n = len(x)
    # Each restart: 4 gradient steps (forward + backward) and one forward to score the result.
    assert attack.last_counts == {"forward": 3 * (4 + 1) * n, "backward": 3 * 4 * n}
    fgsm = FGSM(eps=0.1)
    fgsm(model_fn, x[:5], y[:5])
    assert fgsm.last_counts == {"forward": 5, "backward": 5}


def test_auxiliary_loss_hook_attacks_the_named_outputs():
    from tfrobust.attacks.losses import AuxiliaryLoss

    # The final logits ignore the input; only the auxiliary head depends on it. An attack on the
    # logits alone sees no gradient, the adaptive loss moves the input along the head's gradient.
    w = tf.constant([[1.0, -1.0]] * 4)

    def model_fn(x):
        head = tf.matmul(x, w)
        return {"logits": tf.zeros_like(head) + tf.constant([1.0, 0.0]), "probe": head}

    x = np.full((3, 4), 0.5, np.float32)
    y = np.zeros(3, np.int64)
    plain = FGSM(eps=0.1)(model_fn, x, y).numpy()
    np.testing.assert_array_equal(plain, x)
    adaptive = FGSM(eps=0.1, loss=AuxiliaryLoss.beta(float("inf"), ["probe"]))(model_fn, x, y).numpy()
    np.testing.assert_allclose(adaptive, x - 0.1, atol=1e-6)  # lowers the probe's logit of class 0
    beta2 = AuxiliaryLoss.beta(2.0, ["probe"])
    assert beta2.logits_weight == pytest.approx(1 / 3) and beta2.weights == {"probe": pytest.approx(2 / 3)}
    with pytest.raises(TfrobustError, match="without 'logits'"):
        FGSM(eps=0.1)(lambda t: {"probe": tf.matmul(t, w)}, x, y)
