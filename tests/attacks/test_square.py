"""Square Attack: known worst cases on NumPy-only linear models, AutoAttack's schedule, invariants on a
Keras net and a TFLite artifact, query counting, determinism and configuration errors."""

import functools

import numpy as np
import pytest
import tensorflow as tf

from tfrobust import export
from tfrobust.attacks import per_example_norm
from tfrobust.attacks.square import Square, eta, eta_rectangles
from tfrobust.errors import TfrobustError


@pytest.fixture
def binary_linear_problem(query_problem):
    """A binary linear model on ``size``×``size``×1 images and points whose distance to its decision
    boundary is ``ratio · eps`` in the attack's norm (|margin| / ‖w_diff‖₁ for L∞, / ‖w_diff‖₂ for L2).

    The points sit near 0.5 so the ε-ball never reaches the [0, 1] border and the distances are exact.
    The weights vanish on the last row and column: like AutoAttack's port, Square draws window positions
    from {0, …, h − s − 1}, so once the squares are smaller than the image those pixels keep the value
    of the start; on the remaining pixels the search can reach the exact worst case.
    """
    return functools.partial(query_problem, dead_border=True)


def fooled(predict, x_adv, y):
    return np.argmax(predict(np.asarray(x_adv, np.float32)), axis=1) != y


@pytest.mark.parametrize("loss", ["margin", "ce"])
def test_linf_reaches_the_exact_worst_case_region_on_a_binary_linear_model(binary_linear_problem, loss):
    eps = 0.05
    inside, outside = [0.2, 0.6, 0.9, 0.95, 0.98], [1.02, 1.2, 2.0]
    predict, x, y = binary_linear_problem("linf", eps, inside + outside)
    x_adv = Square(norm="linf", eps=eps, queries=1000, loss=loss, seed=0)(predict, x, y).numpy()
    assert np.all(np.abs(x_adv - x) <= eps + 1e-6)
    np.testing.assert_array_equal(fooled(predict, x_adv, y), [True] * len(inside) + [False] * len(outside))


def test_l2_finds_points_well_inside_the_ball_and_never_outside_it(binary_linear_problem):
    # Square's L2 proposals are structured (mass moved between windows, ±η patterns), so on a random
    # linear model its margin drop plateaus at about 75–85 % of the worst case ε·‖w_diff‖₂ on these
    # 5×5 images; points within 0.6 ε must be found, points beyond ε never.
    eps = 0.1
    inside, outside = [0.2, 0.4, 0.5, 0.6], [1.02, 1.2, 2.0]
    predict, x, y = binary_linear_problem("l2", eps, inside + outside)
    x_adv = Square(norm="l2", eps=eps, queries=1000, seed=0)(predict, x, y).numpy()
    assert np.all(np.linalg.norm((x_adv - x).reshape(len(x), -1), axis=1) <= eps + 1e-6)
    np.testing.assert_array_equal(fooled(predict, x_adv, y), [True] * len(inside) + [False] * len(outside))


def test_targeted_square_reaches_the_target_on_a_multiclass_linear_model(counting_predict):
    rng = np.random.default_rng(1)
    predict = counting_predict(rng.normal(size=(48, 4)), np.zeros(4))
    x = rng.uniform(0.3, 0.7, size=(8, 4, 4, 3)).astype(np.float32)
    targets = (np.argmax(predict(x), axis=1) + 1) % 4
    x_adv = Square(norm="linf", eps=0.3, queries=300, targeted=True)(predict, x, targets).numpy()
    assert np.mean(np.argmax(predict(x_adv), axis=1) == targets) >= 0.75


def test_square_size_schedule_matches_autoattack_for_5000_queries():
    def runs(norm, size):
        attack = Square(norm=norm, eps=0.1)
        sides = [attack.window_size(i, size, size) for i in range(5000)]
        changes = [0] + [i for i in range(1, 5000) if sides[i] != sides[i - 1]] + [5000]
        return [(sides[a], b - a) for a, b in zip(changes, changes[1:])]

    lengths = [11, 40, 150, 300, 500, 1000, 2000, 999]
    assert runs("linf", 32) == list(zip([29, 20, 14, 10, 7, 5, 4, 3], lengths))
    assert runs("l2", 32) == [(29, 11), (21, 40), (15, 150), (11, 300), (7, 500), (5, 3000), (3, 999)]
    assert Square(norm="linf", eps=0.1).window_size(0, 224, 224) == 200
    assert Square(norm="l2", eps=0.1).window_size(0, 224, 224) == 201
    rescaled = Square(norm="linf", eps=0.1, queries=100, rescale_schedule=True)
    assert rescaled.p_selection(99) == pytest.approx(0.8 / 512)  # 99 → 9900 on the 10 000 horizon
    assert Square(norm="linf", eps=0.1, queries=100).p_selection(99) == pytest.approx(0.4 / 2)


def test_eta_is_the_centred_double_square():
    np.testing.assert_allclose(eta_rectangles(1, 3), np.array([[0.25, 1.25, 0.25]]) / np.sqrt(1.6875))
    drawn = [eta(5, np.random.default_rng(seed)) for seed in range(8)]
    upright = [p for p in drawn if np.all(p[:2] > 0)]
    assert 0 < len(upright) < 8  # transposed with probability 1/2
    for pattern in drawn:
        np.testing.assert_array_equal(pattern if np.all(pattern[:2] > 0) else pattern.T, upright[0])
    pattern = upright[0]
    assert np.sum(pattern ** 2) == pytest.approx(1.0)
    assert np.all(pattern[2:] < 0)  # two rectangles of opposite sign (rows 0–1 and 2–4)
    np.testing.assert_allclose(pattern, pattern[:, ::-1])  # symmetric about the centre column
    assert pattern[3, 2] == pattern.min() and pattern[1, 2] == pattern[:2].max()  # peaks at the centres


@pytest.mark.parametrize("call", ["keras", "tf_dict", "numpy"])
@pytest.mark.parametrize("norm,eps", [("linf", 0.2), ("l2", 0.5)])
def test_invariants_ball_range_and_no_accuracy_gain(small_convnet, border_images, call, norm, eps):
    model = small_convnet(seed=0)
    model_fn = {"keras": model,
                "tf_dict": lambda t: {"logits": model(t), "features": tf.reduce_mean(t, axis=[1, 2])},
                "numpy": lambda a: np.asarray(model(a))}[call]
    x = border_images(12)  # range border
    y = np.argmax(model(x).numpy(), axis=1)
    y[:2] = (y[:2] + 1) % 3  # two points misclassified from the start
    attack = Square(norm=norm, eps=eps, queries=60)
    x_adv = attack(model_fn, x, y)
    assert x_adv.dtype == tf.float32 and x_adv.shape == x.shape
    assert np.all(per_example_norm(x_adv - x, norm).numpy() <= eps + 1e-6)
    assert x_adv.numpy().min() >= 0.0 and x_adv.numpy().max() <= 1.0
    np.testing.assert_array_equal(x_adv.numpy()[:2], x[:2])  # already misclassified: untouched
    correct = np.argmax(model(x_adv).numpy(), axis=1) == y
    assert correct.mean() <= 10 / 12
    assert correct.mean() < 10 / 12, "Square changed no prediction on a random net at a large budget"
    assert attack.last_counts["backward"] == 0


def test_deterministic_under_a_seed_and_varies_with_it_and_across_calls(binary_linear_problem):
    predict, x, y = binary_linear_problem("linf", 0.05, [1.5] * 4)
    make = lambda seed: Square(norm="linf", eps=0.05, queries=20, seed=seed)
    a, b, c = make(3)(predict, x, y).numpy(), make(3)(predict, x, y).numpy(), make(4)(predict, x, y).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    attack = make(3)
    first, second = attack(predict, x, y).numpy(), attack(predict, x, y).numpy()
    np.testing.assert_array_equal(first, a)
    assert not np.array_equal(first, second)  # a fresh stream per call


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_counts_are_the_queries_made_and_respect_the_budget(counting_predict, binary_linear_problem, norm):
    predict, x, y = binary_linear_problem(norm, 0.05, [0.3, 1.5, 2.0, 0.5])
    attack = Square(norm=norm, eps=0.05, queries=30, restarts=2)
    attack(predict, x, y)
    n = len(x)
    assert attack.last_counts == {"forward": predict.count, "backward": 0}
    assert predict.count <= n * (1 + 2 * (1 + 30))
    # Points that never succeed use the whole budget: clean query, then per restart start + 30.
    far = counting_predict(predict.weights, predict.bias)
    attack(far, x[1:3], y[1:3])
    assert attack.last_counts["forward"] == far.count == 2 * (1 + 2 * (1 + 30))


def test_successful_points_stop_querying(binary_linear_problem):
    predict, x, y = binary_linear_problem("linf", 0.05, [1.5, 1.5])
    attack = Square(norm="linf", eps=0.05, queries=25)
    wrong = (y + 1) % 2
    x_adv = attack(predict, x[:1], wrong[:1])  # misclassified from the start
    assert attack.last_counts == {"forward": 1, "backward": 0}
    np.testing.assert_array_equal(x_adv.numpy(), x[:1])
    attack(predict, x, np.array([wrong[0], y[1]]))
    assert attack.last_counts["forward"] == 1 + (1 + 1 + 25)  # the robust point pays for the search
    easy_predict, easy_x, easy_y = binary_linear_problem("linf", 0.05, [0.05, 0.05])
    attack(easy_predict, easy_x, easy_y)
    assert attack.last_counts["forward"] < 2 * (1 + 1 + 25)


def test_needs_no_gradients_and_reports_its_configuration():
    attack = Square(norm="l2", eps=0.5, queries=10, p_init=0.3, restarts=2, loss="ce", seed=7)
    assert Square.needs_gradients is False
    config = attack.get_config()
    assert config["name"] == "Square" and config["norm"] == "l2" and config["seed"] == 7
    assert {k: config[k] for k in ("queries", "p_init", "restarts", "loss", "rescale_schedule")} == {
        "queries": 10, "p_init": 0.3, "restarts": 2, "loss": "ce", "rescale_schedule": False}


@pytest.mark.parametrize("kwargs,message", [
    ({"queries": 0}, r"queries must be in \[1, inf\), got 0"),
    ({"p_init": 0.0}, r"p_init must be in \(0.0, 1.0\], got 0.0"),
    ({"p_init": 1.5}, r"p_init must be in \(0.0, 1.0\], got 1.5"),
    ({"restarts": 0}, r"restarts must be in \[1, inf\)"),
    ({"loss": "dlr"}, "unknown loss 'dlr'; valid choices: margin, ce"),
    ({"norm": "l1"}, "unknown norm 'l1'"), ({"eps": -1.0}, "eps must be in")])
def test_bad_configuration_fails_at_construction(kwargs, message):
    with pytest.raises(TfrobustError, match=message):
        Square(**kwargs)


def test_bad_inputs_fail_with_one_clear_error(binary_linear_problem):
    predict, x, y = binary_linear_problem("linf", 0.05, [1.5, 1.5])
    attack = Square(eps=0.05, queries=5)
    with pytest.raises(TfrobustError, match="must lie in"):
        attack(predict, x * 255, y)
    with pytest.raises(TfrobustError, match="labels must be in"):
        attack(predict, x, y + 2)
    with pytest.raises(TfrobustError, match=r"Square needs NHWC image batches \[N, H, W, C\]"):
        attack(predict, x.reshape(2, -1), y)
    with pytest.raises(TfrobustError, match=r"\[N, num_classes\] logits"):
        attack(lambda a: a.sum(axis=(1, 2, 3)), x, y)


@pytest.fixture(scope="module")
def tflite_artifact(small_convnet, tmp_path_factory):
    model = small_convnet(seed=0)
    base = str(tmp_path_factory.mktemp("square"))
    paths = export.export_all(model, base, "m", ["saved_model", "tflite_fp32"])
    return export.load(paths["tflite_fp32"])


def test_square_attacks_a_tflite_artifact_through_its_numpy_predict(tflite_artifact):
    rng = np.random.default_rng(3)
    x = rng.uniform(size=(10, 6, 6, 1)).astype(np.float32)
    clean = np.argmax(tflite_artifact.predict(x), axis=1)
    y = clean.copy()
    y[:3] = (y[:3] + 1) % 3
    attack = Square(norm="linf", eps=0.1, queries=40)
    x_adv = attack(tflite_artifact.predict, x, y).numpy()
    assert np.all(np.abs(x_adv - x) <= 0.1 + 1e-6) and x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    robust = np.mean(np.argmax(tflite_artifact.predict(x_adv), axis=1) == y)
    assert robust <= np.mean(clean == y) == 0.7
    assert 0 < attack.last_counts["forward"] <= 3 + 7 * (1 + 1 + 40)
