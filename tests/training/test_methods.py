"""Training methods: parameter validation, each method's defining property, and that each one lowers its
own adversarial loss on a small separable problem."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrobust.errors import TfrobustError
from tfrobust.training import AdversarialModel, make_method, methods
from tests.separable_images import separable_images

EPS = 0.1


def tiny_net(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Flatten()(inputs)
    h = keras.layers.Dense(16, activation="relu", name="hidden")(h)
    h = keras.layers.Identity(name="features")(h)
    return keras.Model(inputs, keras.layers.Dense(2, dtype="float32", name="logits")(h))


def dataset(n=128, batch=64):
    x, y = separable_images(n)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def trained(method, *, epochs=1, learning_rate=0.1, data=None, **params):
    net = tiny_net()
    adv = AdversarialModel(net, method, **params)
    adv.compile(optimizer=keras.optimizers.SGD(learning_rate))
    history = adv.fit(data or dataset(), epochs=epochs, verbose=0, shuffle=False) if epochs else None
    return net, adv, history


def weights(net):
    return [w.numpy() for w in net.weights]


def max_difference(a, b):
    return max(float(np.abs(u - v).max()) for u, v in zip(a, b))


SMALL = {"standard": {}, "gaussian": {}, "fgsm_rs": {"eps": EPS}, "pgd_at": {"eps": EPS, "steps": 3},
         "free": {"eps": EPS, "replays": 2}, "trades": {"eps": EPS, "steps": 3},
         "mart": {"eps": EPS, "steps": 3}, "alp": {"eps": EPS, "steps": 3},
         "fat": {"eps": EPS, "steps": 3, "tau": 1}, "awp": {"eps": EPS, "steps": 3},
         "at_id": {"eps": EPS, "steps": 3, "lam": 0.1}}


def test_every_registered_method_is_covered():
    assert set(methods.names()) == set(SMALL)


@pytest.mark.parametrize("name", list(SMALL))
def test_each_method_lowers_its_own_adversarial_loss(name):
    net = tiny_net()
    adv = AdversarialModel(net, name, **SMALL[name])
    adv.compile(optimizer=keras.optimizers.SGD(0.1))
    data = dataset()
    before = adv.evaluate(data, verbose=0, return_dict=True)
    adv.fit(data, epochs=3, verbose=0, shuffle=False)
    after = adv.evaluate(data, verbose=0, return_dict=True)
    # The loss of evaluate is the method's loss on inputs crafted by the method's own attack.
    assert after["loss"] < 0.8 * before["loss"], (before, after)
    assert np.isfinite(after["loss"])
    for component in adv.method.components:
        assert component in after


@pytest.mark.parametrize("name,params,message", [
    ("nope", {}, "unknown method 'nope'; valid choices: standard, gaussian, fgsm_rs, pgd_at"),
    ("pgd_at", {}, "method 'pgd_at' needs eps > 0"),
    ("pgd_at", {"eps": 0.0}, r"eps must be in \(0.0, inf\), got 0.0"),
    ("fgsm_rs", {"eps": -0.1}, "eps must be in"),
    ("trades", {"eps": EPS, "beta": -1.0}, r"beta must be in \[0.0, inf\), got -1.0"),
    ("mart", {"eps": EPS, "beta": -1.0}, "beta must be in"),
    ("free", {"eps": EPS, "replays": 0}, r"replays must be in \[1, inf\), got 0"),
    ("pgd_at", {"eps": EPS, "steps": 0}, "steps must be in"),
    ("pgd_at", {"eps": EPS, "step_size": 0.0}, "step_size must be in"),
    ("pgd_at", {"eps": EPS, "beta": 6.0}, "unknown parameter 'beta' for method 'pgd_at'; valid parameters: eps"),
    ("pgd_at", {"eps": EPS, "label_mode": "guess"}, "unknown label_mode 'guess'; valid choices: true, predicted"),
    ("pgd_at", {"eps": EPS, "norm": "l1"}, "unknown norm 'l1'"),
    ("trades", {"eps": EPS, "label_mode": "predicted"}, "unknown parameter 'label_mode' for method 'trades'"),
    ("free", {"eps": EPS, "label_mode": "predicted"}, "unknown parameter 'label_mode' for method 'free'"),
    ("gaussian", {"sigma": [0.1, 0.0]}, "sigma must be in"),
    ("gaussian", {"probability": 0.0}, "probability must be in"),
    ("fat", {"eps": EPS, "tau": -1}, "tau must be in"),
    ("alp", {"eps": EPS, "lam": -0.5}, "lam must be in"),
    ("at_id", {"eps": EPS, "lam": -0.5}, "lam must be in"),
    ("awp", {"eps": EPS, "gamma": -1.0}, "gamma must be in"),
    ("awp", {"eps": EPS, "base": "free"}, "awp cannot wrap 'free'"),
    ("awp", {"base": "trades", "eps": EPS, "beta": -2.0}, "beta must be in"),
    ("standard", {"eps": EPS}, "unknown parameter 'eps' for method 'standard'; valid parameters: \\(none\\)"),
])
def test_bad_method_parameters_fail_at_construction_with_one_line(name, params, message):
    with pytest.raises(TfrobustError, match=message) as error:
        make_method(name, **params)
    assert "\n" not in str(error.value)


def test_defaults_follow_the_papers():
    assert make_method("pgd_at", eps=0.1).step_size == pytest.approx(0.025)  # 2.5·ε/k, k = 10
    assert make_method("fgsm_rs", eps=0.1).step_size == pytest.approx(0.125)  # 1.25·ε
    assert make_method("free", eps=0.1).step_size == pytest.approx(0.1)  # α = ε
    trades = make_method("trades", eps=8 / 255)
    assert (trades.beta, trades.steps, trades.random_start) == (6.0, 10, "normal")
    assert trades.step_size == pytest.approx(2 / 255)  # ε/4 ≈ 0.007 for ε = 0.031
    assert make_method("awp", eps=0.1).gamma == 1e-2 and methods.options("at_id")["lam"] == 0.01
    assert make_method("gaussian").sigma == pytest.approx([50 / 255, 75 / 255, 100 / 255])
    config = make_method("awp", eps=0.1, base="trades").get_config()
    assert config["base"]["name"] == "trades" and config["gamma"] == 5e-3


def test_trades_with_beta_zero_is_standard_training():
    standard, _, _ = trained("standard")
    trades, _, _ = trained("trades", eps=EPS, beta=0.0, steps=2)
    assert max_difference(weights(standard), weights(trades)) == 0.0


def test_at_id_with_lambda_zero_is_pgd_at():
    pgd, _, _ = trained("pgd_at", eps=EPS, steps=2)
    at_id, _, history = trained("at_id", eps=EPS, steps=2, lam=0.0)
    assert max_difference(weights(pgd), weights(at_id)) == 0.0
    assert history.history["denoise"] == [0.0]


def test_free_at_makes_m_updates_per_minibatch_and_carries_the_perturbation():
    data = dataset(n=100, batch=64)  # two minibatches, the last one smaller (36)
    _, adv, history = trained("free", eps=EPS, replays=3, epochs=2, data=data)
    assert int(adv.optimizer.iterations.numpy()) == 2 * 2 * 3  # epochs × minibatches × replays
    delta = adv.method.delta.numpy()
    assert delta.shape == (64, 8, 8, 1)  # a full batch; the small batch used its first rows
    assert np.abs(delta).max() == pytest.approx(EPS) and np.abs(delta).max() <= EPS + 1e-7
    assert np.count_nonzero(delta) > 0.5 * delta.size  # carried, not reset to 0 after each batch
    assert np.isfinite(history.history["loss"]).all()


def test_awp_restores_the_weights_after_the_perturbed_step():
    before = weights(tiny_net())
    net, _, history = trained("awp", eps=EPS, steps=2, gamma=0.5, learning_rate=0.0)
    assert max_difference(before, weights(net)) == 0.0  # bit-exact: saved copy, not (w + v) − v
    _, _, unperturbed = trained("awp", eps=EPS, steps=2, gamma=0.0, learning_rate=0.0)
    # The step's loss was measured at w + v: higher than at w.
    assert history.history["loss"][0] > unperturbed.history["loss"][0] + 0.1


def test_awp_perturbs_kernels_only():
    from tfrobust.training.methods.awp import perturbed_variables

    assert [v.name for v in perturbed_variables(tiny_net())] == ["kernel", "kernel"]


def _adv(method="pgd_at", **params):
    return AdversarialModel(tiny_net(), method, **params)


def test_fat_stops_each_example_tau_steps_after_it_is_misclassified():
    x, y = separable_images(16)
    seed = tf.constant([1, 2], tf.int64)
    adv = _adv("fat", eps=EPS, steps=5, random_start="none")
    predictions = tf.argmax(adv.model(x), -1)
    wrong_labels = 1 - predictions  # every example is already misclassified w.r.t. these labels
    x_stop = adv.method.craft(adv, tf.constant(x), wrong_labels, seed)
    np.testing.assert_array_equal(x_stop.numpy(), x)  # τ = 0: no step at all
    adv_tau = _adv("fat", eps=EPS, steps=5, tau=2, random_start="none")
    moved = np.abs(adv_tau.method.craft(adv_tau, tf.constant(x), wrong_labels, seed).numpy() - x)
    assert moved.max() > 0 and moved.max() <= EPS + 1e-6


def test_predicted_label_mode_crafts_against_the_models_predictions():
    x, _ = separable_images(16)
    x = tf.constant(x)
    seed = tf.constant([3, 4], tf.int64)
    adv = _adv("pgd_at", eps=EPS, steps=3, label_mode="predicted")
    predictions = tf.argmax(adv.model(x, training=False), -1)
    misleading = 1 - predictions  # the "true" labels are ignored for crafting
    labels, clean_logits = adv.method.crafting_labels(adv, x, misleading)
    np.testing.assert_array_equal(labels.numpy(), predictions.numpy())
    assert clean_logits is not None
    reference = make_method("pgd_at", eps=EPS, steps=3).craft(adv, x, predictions, seed)
    np.testing.assert_array_equal(adv.method.craft(adv, x, labels, seed).numpy(), reference.numpy())


def test_gaussian_noise_uses_the_sigma_set_and_probability():
    x = tf.fill([2000, 4, 4, 1], 0.5)
    method = make_method("gaussian", sigma=[0.05], probability=0.5)
    noised = method.craft(None, x, None, tf.constant([0, 1], tf.int64)).numpy() - 0.5
    changed = np.abs(noised).reshape(2000, -1).max(axis=1) > 0
    assert 0.45 < changed.mean() < 0.55
    assert noised[changed].std() == pytest.approx(0.05, rel=0.05)
    clipped = make_method("gaussian", sigma=2.0, probability=1.0).craft(None, x, None, tf.constant([0, 1]))
    assert float(tf.reduce_min(clipped)) >= 0.0 and float(tf.reduce_max(clipped)) <= 1.0


@pytest.mark.parametrize("name", ["pgd_at", "trades", "mart", "alp", "at_id", "fgsm_rs"])
def test_crafted_inputs_stay_in_the_ball_and_the_range(name):
    x, y = separable_images(32)
    adv = _adv(name, **SMALL[name])
    x_adv = adv.method.craft(adv, tf.constant(x), tf.constant(y), tf.constant([5, 6], tf.int64)).numpy()
    assert x_adv.dtype == np.float32
    assert np.abs(x_adv - x).max() <= EPS + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert np.abs(x_adv - x).max() > 0.5 * EPS  # it moved
