"""FAB-T: the box-constrained hyperplane projections against LP/QP solvers, the minimal adversarial
distance on linear models, invariants, determinism, tracing, budgets and configuration errors."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import optimize

from tfrobust.attacks import per_example_norm
from tfrobust.attacks.fab import FABT, project_onto_hyperplane_box
from tfrobust.errors import TfrobustError


# -- projections ------------------------------------------------------------------------------------
def projection_instances(seed, rows=60, dim=6):
    """Points in [0, 1]^dim, normals with some zero coordinates, and offsets b spread from 'the
    hyperplane passes near t' (box inactive) to 'beyond every corner' (infeasible)."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 1, size=(rows, dim))
    t[::7, 0] = 0.0  # points on the box boundary
    w = rng.normal(size=(rows, dim))
    w[::5, 1] = 0.0  # coordinates that must never move
    reach = np.abs(w).sum(1)
    b = (w * t).sum(1) + rng.uniform(-0.8, 0.8, size=rows) * reach
    return t, w, b


def solve_linf(t, w, b):
    """min s s.t. |d_i| ≤ s, ⟨w, t + d⟩ = b, 0 ≤ t + d ≤ 1, over (d, s); None when infeasible."""
    dim = len(t)
    cost = np.r_[np.zeros(dim), 1.0]
    eye = np.eye(dim)
    a_ub = np.block([[eye, -np.ones((dim, 1))], [-eye, -np.ones((dim, 1))]])
    bounds = [(-ti, 1 - ti) for ti in t] + [(0, None)]
    res = optimize.linprog(cost, A_ub=a_ub, b_ub=np.zeros(2 * dim), A_eq=np.r_[w, 0.0][None],
                           b_eq=[b - w @ t], bounds=bounds, method="highs")
    return res.x[:dim] if res.status == 0 else None


def solve_l2(t, w, b):
    res = optimize.minimize(lambda d: d @ d, np.zeros(len(t)), jac=lambda d: 2 * d, method="SLSQP",
                            bounds=[(-ti, 1 - ti) for ti in t],
                            constraints=[{"type": "eq", "jac": lambda d: w,
                                          "fun": lambda d: w @ (t + d) - b}],
                            options={"ftol": 1e-14, "maxiter": 500})
    return res.x


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_projection_matches_an_lp_qp_solver_and_the_infeasible_rule(norm):
    t, w, b = projection_instances(0 if norm == "linf" else 1)
    d = project_onto_hyperplane_box(tf.constant(t, tf.float32), tf.constant(w, tf.float32),
                                    tf.constant(b, tf.float32), norm).numpy().astype(np.float64)
    assert np.all(d[w == 0] == 0)
    feasible = infeasible = box_active = 0
    for i in range(len(t)):
        assert np.all(t[i] + d[i] >= -1e-6) and np.all(t[i] + d[i] <= 1 + 1e-6)
        exact = solve_linf(t[i], w[i], b[i])
        if exact is None:
            # Unreachable hyperplane: every movable coordinate goes to the bound that pushes <w, .>
            # towards b.
            infeasible += 1
            towards = np.sign(b[i] - w[i] @ t[i]) * np.sign(w[i])
            np.testing.assert_allclose(d[i], np.where(towards > 0, 1 - t[i], -t[i]) * (w[i] != 0), atol=1e-6)
            continue
        feasible += 1
        box_active += np.any(((t[i] + d[i] < 1e-6) | (t[i] + d[i] > 1 - 1e-6)) & (d[i] != 0))
        assert abs(w[i] @ (t[i] + d[i]) - b[i]) < 1e-4
        if norm == "linf":
            assert np.max(np.abs(d[i])) == pytest.approx(np.max(np.abs(exact)), abs=1e-5)
        else:
            np.testing.assert_allclose(d[i], solve_l2(t[i], w[i], b[i]), atol=1e-4)
    assert feasible >= 20 and infeasible >= 5 and box_active >= 10


def test_projection_on_an_interior_point_is_the_closed_form():
    # Box inactive: λ = (⟨w,t⟩ − b)/‖w‖₁ (L∞) and α = (⟨w,t⟩ − b)/‖w‖₂² (L2).
    t = tf.fill([1, 4], 0.5)
    w = tf.constant([[1.0, -2.0, 0.5, 0.0]])
    b = tf.constant([-0.1])  # <w, t> − b = −0.25 + 0.1 = −0.15
    linf = project_onto_hyperplane_box(t, w, b, "linf").numpy()
    np.testing.assert_allclose(linf, [[0.15 / 3.5, -0.15 / 3.5, 0.15 / 3.5, 0.0]], rtol=1e-6)
    l2 = project_onto_hyperplane_box(t, w, b, "l2").numpy()
    np.testing.assert_allclose(l2, 0.15 / 5.25 * w.numpy(), rtol=1e-6)


# -- the attack ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def binary_problem(linear_model):
    """Binary linear model through the cube's centre, points 0.5 ± 0.1 labelled by the model: the
    minimal adversarial points lie well inside [0, 1] (see test_apgd.py)."""
    rng = np.random.default_rng(0)
    d = 12
    weights = rng.normal(size=(d, 2)).astype(np.float32)
    bias = np.array([-(weights[:, 0] - weights[:, 1]) @ np.full(d, 0.5), 0.0], np.float32)
    x = (0.5 + rng.uniform(-0.1, 0.1, size=(16, 2, 2, 3))).astype(np.float32)
    model_fn = linear_model(weights, bias)
    y = np.argmax(model_fn(x).numpy(), axis=1)
    return model_fn, (weights[:, 1 - y] - weights[:, y]).T, x, y


def fab_overshoot(steps, alpha_max=0.1, eta=1.05, beta=0.9):
    """On a linear model with an inactive box every FAB iterate is x₀ + c·d* (d* the minimal
    adversarial displacement), so the attack reduces to this scalar recursion; it returns the smallest
    c > 1 the attack records, i.e. its answer in units of the minimal distance (1.00521… for the
    defaults: the overshoot η leaves FAB just past the boundary)."""
    c, best = 0.0, np.inf
    for _ in range(steps):
        a1 = max(abs(1 - c), 1e-8)
        alpha = min(a1 / (a1 + 1.0), alpha_max)
        c = (1 - alpha) * (c + eta * (1 - c)) + alpha * eta
        if c > 1:
            best, c = min(best, c), beta * c
    return best


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_fab_t_finds_the_minimal_adversarial_distance_on_a_linear_model(binary_problem, norm):
    model_fn, direction, x, y = binary_problem
    logits = model_fn(x).numpy()
    margin = logits[np.arange(16), y] - logits[np.arange(16), 1 - y]
    dual = np.abs(direction).sum(1) if norm == "linf" else np.linalg.norm(direction, axis=1)
    minimal = margin / dual  # closed form: |margin| / ‖w_other − w_y‖_dual
    expected = fab_overshoot(10) * minimal
    assert fab_overshoot(10) == pytest.approx(1.0052133, abs=1e-6)
    eps = float(np.median(expected))
    attack = FABT(norm=norm, eps=eps, steps=10, num_target_classes=1)
    x_adv = attack(model_fn, x, y).numpy()
    found = per_example_norm(x_adv - x, norm).numpy()
    within = expected <= eps
    assert 0 < within.sum() < 16
    np.testing.assert_allclose(found[within], expected[within], rtol=2e-4)
    assert np.all(found[within] >= minimal[within])
    # On or over the decision boundary, and only within ε; every other point is returned unchanged.
    adv_logits = model_fn(x_adv).numpy()
    assert np.all(adv_logits[within, 1 - y[within]] >= adv_logits[within, y[within]])
    np.testing.assert_array_equal(x_adv[~within], x[~within])


@pytest.fixture(scope="module")
def tiny_convnet(small_convnet, border_images):
    model = small_convnet(classes=5, seed=2)
    x = border_images(12)  # points on the range border exercise the clip
    y = np.argmax(model(x).numpy(), axis=1)
    y[:2] = (y[:2] + 1) % 5  # clean mistakes are returned unchanged
    return model, x, y


@pytest.mark.parametrize("attack", [FABT(norm="linf", eps=0.1, steps=10, num_target_classes=2),
                                    FABT(norm="l2", eps=0.5, steps=10, num_target_classes=4, restarts=2)],
                         ids=["linf", "l2"])
def test_invariants_ball_range_and_no_accuracy_gain(tiny_convnet, attack):
    model, x, y = tiny_convnet
    x_adv = attack(model, x, y).numpy()
    assert x_adv.dtype == np.float32
    assert np.all(per_example_norm(x_adv - x, attack.threat.norm).numpy() <= attack.threat.eps + 1e-6)
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    np.testing.assert_array_equal(x_adv[:2], x[:2])
    changed = np.any(x_adv != x, axis=(1, 2, 3))
    predictions = np.argmax(model(x_adv).numpy(), axis=1)
    assert np.all(predictions[changed] != y[changed])  # a returned change is always an adversarial point
    assert np.mean(predictions == y) < np.mean(np.argmax(model(x).numpy(), axis=1) == y)


def test_no_retracing_across_batch_sizes_and_deterministic_under_a_seed(binary_problem):
    model_fn, _, x, y = binary_problem
    def make():
        return FABT(norm="linf", eps=0.05, steps=3, num_target_classes=1, restarts=2, seed=5)

    attack = make()
    outputs = [attack(model_fn, x[:n], y[:n]).numpy() for n in (16, 7, 16, 5)]
    assert attack.trace_count <= 2
    np.testing.assert_array_equal(make()(model_fn, x, y).numpy(), outputs[0])


def test_counts_follow_the_documented_budget(binary_problem):
    model_fn, _, x, y = binary_problem
    x, y = x[:8], y[:8].copy()
    y[:3] = 1 - y[:3]  # 3 clean mistakes: one clean forward pass each, never attacked
    # ε = 0: every point found lies beyond ε, so each run attacks the 5 correct points.
    attack = FABT(eps=0.0, steps=3, restarts=2)  # 9 targets by default, capped at 1 for 2 classes
    with pytest.warns(UserWarning, match="num_target_classes=9 but the model has 2 classes; using 1"):
        x_adv = attack(model_fn, x, y)
    np.testing.assert_array_equal(x_adv.numpy(), x)
    assert attack.last_counts == {"forward": 8 + 1 * 2 * 2 * 3 * 5, "backward": 1 * 2 * 3 * 5}


def test_get_config_names_every_hyperparameter():
    assert FABT(norm="l2", eps=0.5).get_config() == {
        "name": "FABT", "norm": "l2", "eps": 0.5, "clip_min": 0.0, "clip_max": 1.0, "targeted": False,
        "seed": 0, "steps": 100, "num_target_classes": 9, "restarts": 1, "alpha_max": 0.1, "eta": 1.05,
        "beta": 0.9}


@pytest.mark.parametrize("kwargs,message", [
    ({"steps": 0}, "steps must be in"), ({"num_target_classes": 0}, "num_target_classes must be in"),
    ({"restarts": 0}, "restarts must be in"), ({"alpha_max": 1.5}, r"alpha_max must be in \[0.0, 1.0\]"),
    ({"eta": 0.9}, "eta must be in"), ({"beta": 0.0}, r"beta must be in \(0.0, 1.0\]"),
    ({"targeted": True}, "targeted by construction"), ({"norm": "l1"}, "unknown norm 'l1'")])
def test_bad_configuration_fails_at_construction(kwargs, message):
    with pytest.raises(TfrobustError, match=message):
        FABT(**kwargs)


def test_single_class_model_fails_with_one_clear_error(binary_problem):
    _, _, x, y = binary_problem
    with pytest.raises(TfrobustError, match="FABT needs a model with at least 2 classes, got 1"):
        FABT(eps=0.1, steps=1)(lambda t: tf.reduce_sum(tf.reshape(t, [tf.shape(t)[0], -1]), 1, keepdims=True),
                               x, np.zeros(len(x), np.int64))
