"""APGD-CE / APGD-DLR / APGD-T and the DLR losses: known answers on linear models, the reference's
schedule and loss values, invariants, determinism, tracing, budgets and configuration errors."""

import numpy as np
import pytest
import tensorflow as tf

from tfrobust.attacks import losses, per_example_norm
from tfrobust.attacks.apgd import APGD, APGDT, apgd_checkpoints
from tfrobust.errors import TfrobustError


@pytest.fixture(scope="module")
def binary_problem(linear_model):
    """A binary linear model whose boundary passes through the centre 0.5 of the points' cube, with
    points 0.5 ± 0.1 (interior: no ε-ball used below reaches the [0, 1] box) labelled by the model.

    Returns (two-class model, four-class model with the same margin, w_other − w_y per point, x, y).
    The four-class model duplicates the two classes with logits lowered by 100: the sorted logits are
    then z_π1 = max(z₀, z₁), z_π3 = z_π1 − 100, so DLR = margin / 100 and maximising DLR is maximising
    the binary margin exactly.
    """
    rng = np.random.default_rng(0)
    d = 12
    weights = rng.normal(size=(d, 2)).astype(np.float32)
    centre = np.full(d, 0.5, np.float32)
    bias = np.array([-(weights[:, 0] - weights[:, 1]) @ centre, 0.0], np.float32)
    x = (0.5 + rng.uniform(-0.1, 0.1, size=(16, 2, 2, 3))).astype(np.float32)
    two = linear_model(weights, bias)
    y = np.argmax(two(x).numpy(), axis=1)
    four = linear_model(np.concatenate([weights, weights], 1),
                        np.concatenate([bias, bias - 100.0]).astype(np.float32))
    direction = (weights[:, 1 - y] - weights[:, y]).T
    return two, four, direction, x, y


def binary_margin(model_fn, x, y):
    logits = model_fn(tf.constant(x, tf.float32)).numpy()
    rows = np.arange(len(y))
    return logits[rows, 1 - y] - logits[rows, y]


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("loss", ["ce", "dlr"])
def test_apgd_reaches_the_exact_worst_case_margin_on_a_linear_model(binary_problem, norm, loss):
    two, four, direction, x, y = binary_problem
    dual = np.abs(direction).sum(1) if norm == "linf" else np.linalg.norm(direction, axis=1)
    clean = binary_margin(two, x, y)
    # ε at the median minimal adversarial distance: about half the points can be fooled.
    eps = float(np.median(-clean / dual))
    worst = clean + eps * dual  # max over the ball of the linear margin (CE and DLR grow with it)
    foolable = np.sum(worst > 0)
    assert 0 < foolable < len(y)
    attack = APGD(norm=norm, eps=eps, loss=loss, steps=30, restarts=2)
    x_adv = attack(two if loss == "ce" else four, x, y).numpy()
    # Fooled points (latest misclassified iterate) and robust ones (highest-loss point) alike.
    np.testing.assert_allclose(binary_margin(two, x_adv, y), worst, atol=2e-5)
    assert np.all(per_example_norm(x_adv - x, norm).numpy() <= eps + 1e-6)
    # The second restart attacks only the points the first one did not fool.
    runs = 16 * (30 + 1) + (16 - foolable) * (30 + 1)
    assert attack.last_counts == {"forward": 16 + runs, "backward": runs}


def test_apgd_t_fools_easy_points_and_never_provably_robust_ones(linear_model):
    rng = np.random.default_rng(1)
    classes, d, eps = 5, 8, 0.1
    weights = rng.normal(size=(d, classes)).astype(np.float32)
    model_fn = linear_model(weights, np.zeros(classes, np.float32))
    x = rng.uniform(0.3, 0.7, size=(24, d)).astype(np.float32)
    logits = model_fn(x).numpy()
    y = np.argmax(logits, axis=1)
    rows = np.arange(len(y))
    # Worst case over the (interior) L∞ ball of each linear margin z_j − z_y, in closed form.
    reach = eps * np.abs(weights[:, None, :] - weights[:, y][:, :, None]).sum(0)  # ε‖w_j − w_y‖₁
    gaps = logits - logits[rows, y][:, None] + reach
    gaps[rows, y] = -np.inf
    best_gap = gaps.max(1)
    easy, impossible = best_gap > 0.2, best_gap < 0
    assert easy.sum() >= 4 and impossible.sum() >= 4
    attack = APGDT(norm="linf", eps=eps, steps=20, num_target_classes=classes - 1)
    fooled = np.argmax(model_fn(attack(model_fn, x, y)).numpy(), axis=1) != y
    assert np.all(fooled[easy])
    assert not np.any(fooled[impossible])


def test_checkpoint_schedule_is_the_reference_one():
    schedule = apgd_checkpoints(100)
    assert [i for i, _ in schedule] == [21, 40, 56, 69, 79, 86, 92, 98]
    assert [k for _, k in schedule] == [22, 19, 16, 13, 10, 7, 6, 6]
    assert apgd_checkpoints(10) == [(1, 2), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1), (7, 1), (8, 1), (9, 1)]
    assert apgd_checkpoints(1) == [(0, 1)]


def test_dlr_losses_match_a_hand_computation():
    logits = tf.constant([[3.0, 1.0, 2.0, 0.5],    # y = 0 correct: −(3 − 2)/(3 − 1)
                          [3.0, 1.0, 2.0, 0.5],    # y = 1 wrong:   −(1 − 3)/(3 − 1)
                          [1.0, 1.0, 1.0, 0.0]])   # y = 3, z_π1 = z_π3: −(0 − 1)/1e−12
    labels = tf.constant([0, 1, 3])
    np.testing.assert_allclose(losses.dlr(logits, labels).numpy(), [-0.5, 1.0, 1e12], rtol=1e-5)
    assert losses.get("dlr") is losses.dlr

    # Targeted: −(z_y − z_t)/(z_π1 − (z_π3 + z_π4)/2).
    logits = tf.constant([[3.0, 1.0, 2.0, 0.5, -1.0],  # y = 0, t = 2: −(3 − 2)/(3 − (1 + 0.5)/2)
                          [3.0, 1.0, 2.0, 0.5, -1.0],  # y = 1, t = 3: −(1 − 0.5)/2.25
                          [1.0, 0.0, 1.0, 1.0, 1.0]])  # y = 1, t = 0, z_π1 = z_π3 = z_π4: −(0 − 1)/1e−12
    labels, targets = tf.constant([0, 1, 1]), tf.constant([2, 3, 0])
    expected = [-1.0 / 2.25, -0.5 / 2.25, 1e12]
    np.testing.assert_allclose(losses.dlr_targeted(logits, labels, targets).numpy(), expected, rtol=1e-5)
    stacked = tf.stack([labels, targets], axis=1)
    np.testing.assert_allclose(losses.get("dlr_targeted")(logits, stacked).numpy(), expected, rtol=1e-5)
    with pytest.raises(TfrobustError, match="needs target classes"):
        losses.dlr_targeted(logits, labels)
    with pytest.raises(TfrobustError, match="needs at least 3 classes, got 2"):
        losses.dlr(tf.zeros([2, 2]), tf.constant([0, 1]))
    with pytest.raises(TfrobustError, match="needs at least 4 classes, got 3"):
        losses.dlr_targeted(tf.zeros([2, 3]), tf.constant([0, 1]), tf.constant([1, 2]))


@pytest.fixture(scope="module")
def tiny_convnet(small_convnet, border_images):
    model = small_convnet(classes=5, seed=2)
    x = border_images(12)  # points on the range border exercise the clip
    y = np.argmax(model(x).numpy(), axis=1)
    y[:2] = (y[:2] + 1) % 5  # two clean mistakes: returned unchanged, still counted as not robust
    return model, x, y


@pytest.mark.parametrize("attack", [
    APGD(norm="linf", eps=0.1, steps=8, loss="ce"), APGD(norm="l2", eps=0.5, steps=8, loss="dlr", restarts=2),
    APGDT(norm="l2", eps=0.5, steps=5, num_target_classes=4)],
    ids=["apgd-ce-linf", "apgd-dlr-l2", "apgd-t-l2"])
def test_invariants_ball_range_and_no_accuracy_gain(tiny_convnet, attack):
    model, x, y = tiny_convnet
    x_adv = attack(model, x, y).numpy()
    assert x_adv.dtype == np.float32
    assert np.all(per_example_norm(x_adv - x, attack.threat.norm).numpy() <= attack.threat.eps + 1e-6)
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    np.testing.assert_array_equal(x_adv[:2], x[:2])
    clean = np.mean(np.argmax(model(x).numpy(), axis=1) == y)
    robust = np.mean(np.argmax(model(x_adv).numpy(), axis=1) == y)
    assert robust < clean, "the attack changed no prediction on a random net at a large budget"


def test_no_retracing_across_batch_sizes_and_deterministic_under_a_seed(binary_problem):
    two, _, _, x, y = binary_problem
    attack = APGD(norm="l2", eps=0.05, steps=2, seed=3)
    outputs = [attack(two, x[:n], y[:n]).numpy() for n in (16, 7, 16, 5)]
    assert attack.trace_count <= 2  # first shape, then one generalised trace
    # Each call draws a fresh stream; a fresh attack with the same seed replays the first one.
    assert not np.array_equal(outputs[0], outputs[2])
    np.testing.assert_array_equal(APGD(norm="l2", eps=0.05, steps=2, seed=3)(two, x, y).numpy(), outputs[0])


def test_counts_follow_the_documented_budget(binary_problem):
    two, four, _, x, y = binary_problem
    x, y = x[:8], y[:8].copy()
    y[:3] = 1 - y[:3]  # 3 clean mistakes: one clean forward pass each, never attacked
    # ε = 0: nothing can be fooled, so every restart/target attacks the 5 correct points.
    apgd = APGD(eps=0.0, steps=3, restarts=2)
    x_adv = apgd(two, x, y)
    np.testing.assert_array_equal(x_adv.numpy(), x)
    assert apgd.last_counts == {"forward": 8 + 2 * (3 + 1) * 5, "backward": 2 * (3 + 1) * 5}
    apgdt = APGDT(eps=0.0, steps=3)  # 9 targets by default, capped at 3 for 4 classes
    with pytest.warns(UserWarning, match="num_target_classes=9 but the model has 4 classes; using 3"):
        apgdt(four, x, y)
    assert apgdt.last_counts == {"forward": 8 + 3 * (3 + 1) * 5, "backward": 3 * (3 + 1) * 5}


def test_get_config_names_every_hyperparameter():
    assert APGD(eps=0.1, loss="dlr").get_config() == {
        "name": "APGD", "norm": "linf", "eps": 0.1, "clip_min": 0.0, "clip_max": 1.0, "targeted": False,
        "seed": 0, "loss": "dlr", "steps": 100, "restarts": 1, "rho": 0.75}
    config = APGDT(norm="l2", eps=0.5).get_config()
    assert (config["name"], config["steps"], config["num_target_classes"], config["restarts"],
            config["rho"]) == ("APGDT", 100, 9, 1, 0.75)


@pytest.mark.parametrize("make,message", [
    (lambda: APGD(steps=0), "steps must be in"), (lambda: APGD(restarts=0), "restarts must be in"),
    (lambda: APGD(rho=1.0), r"rho must be in \(0.0, 1.0\), got 1.0"), (lambda: APGD(rho=0), "rho must be in"),
    (lambda: APGD(loss="foo"), "unknown loss 'foo'"), (lambda: APGD(loss="dlr_targeted"), "use APGDT"),
    (lambda: APGD(norm="l1"), "unknown norm 'l1'"),
    (lambda: APGDT(num_target_classes=0), "num_target_classes must be in"),
    (lambda: APGDT(targeted=True), "targeted by construction"), (lambda: APGDT(steps=0), "steps must be in")])
def test_bad_configuration_fails_at_construction(make, message):
    with pytest.raises(TfrobustError, match=message):
        make()


def test_too_few_classes_fail_with_one_clear_error(linear_model, binary_problem):
    two, _, _, x, y = binary_problem
    with pytest.raises(TfrobustError, match="DLR loss needs a model with at least 3 classes, got 2"):
        APGD(eps=0.1, steps=1, loss="dlr")(two, x, y)
    three = linear_model(np.ones((12, 3), np.float32), np.arange(3, dtype=np.float32))
    with pytest.raises(TfrobustError, match=r"\(targeted DLR loss\) needs a model with at least 4 classes, got 3"):
        APGDT(eps=0.1, steps=1, num_target_classes=2)(three, x, np.full(len(x), 2))
