"""CIFS (thesis eq. 4.1–4.3): layer contract, relevance = finite difference, IMGFs, label substitution,
mask paths, probe loss, and second-order input gradients through a reloaded SavedModel. CIFS ResNets:
tests/models/test_cifs_resnet.py."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.layer_checks import check_layer
from tfrobust import export
from tfrobust.attacks.losses import AuxiliaryLoss
from tfrobust.errors import TfrobustError
from tfrobust.layers.cifs import CIFS, beta_loss, training_labels

FEATURES = (4, 4, 6)


def _features(n=3, seed=0):
    return tf.random.stateless_normal([n, *FEATURES], seed=[seed, 1])


@pytest.mark.parametrize("kwargs", [{"probe": "linear"}, {"probe": "mlp", "hidden_units": 8, "relevance": "tape"}],
                         ids=["linear", "mlp-tape"])
def test_cifs_layer_contract(kwargs, tmp_path):
    check_layer(lambda: CIFS(5, **kwargs), FEATURES, expected_output_shape=[FEATURES, (5,)], tmp_path=tmp_path)


@pytest.mark.parametrize("probe", ["linear", "mlp"])
@pytest.mark.parametrize("method", ["closed_form", "tape"])
def test_relevance_is_the_finite_difference_of_the_summed_top_k_logits(probe, method):
    layer = CIFS(5, probe=probe, hidden_units=8, top_k=2)
    z = _features()
    layer(z)
    chosen = tf.reduce_sum(tf.one_hot(tf.math.top_k(layer.probe_logits(z), 2).indices, 5), axis=1)

    def summed_top_k(shift):  # Σ_{i∈top-k} A(z + δ·1ᵀ)_i with the top-k indices of the unshifted z
        return tf.reduce_sum(layer.probe_logits(z + shift[:, None, None, :]) * chosen, axis=1).numpy()

    h = 1e-2
    finite_difference = np.stack([
        (summed_top_k(h * tf.one_hot([c] * 3, 6)) - summed_top_k(-h * tf.one_hot([c] * 3, 6))) / (2 * h)
        for c in range(6)], axis=1)
    relevance = layer.channel_relevance(z, method=method).numpy()
    np.testing.assert_allclose(relevance, finite_difference, atol=2e-3, rtol=2e-3)


def test_closed_forms_equal_the_tape_oracle():
    z = _features()
    for probe in ("linear", "mlp"):
        layer = CIFS(5, probe=probe, hidden_units=8)
        layer(z)
        np.testing.assert_allclose(layer.channel_relevance(z, method="closed_form"),
                                   layer.channel_relevance(z, method="tape"), atol=1e-5)


def test_imgfs():
    z = _features()
    softmax = CIFS(5, imgf="softmax", temperature=0.5)
    softmax(z)
    mask = softmax.importance_mask(z).numpy()
    assert np.all(mask >= 0)
    np.testing.assert_allclose(mask.sum(axis=1), 1.0, atol=1e-5)
    relevance = softmax.channel_relevance(z).numpy()
    for imgf, alpha, expected in [("sigmoid", 3.0, lambda g: 1 / (1 + np.exp(-3 * g))),
                                  ("softplus", 3.0, lambda g: np.log1p(np.exp(3 * g)) / 3)]:
        layer = CIFS(5, imgf=imgf, alpha=alpha)
        layer(z)
        layer.set_weights(softmax.get_weights())
        np.testing.assert_allclose(layer.importance_mask(z), expected(relevance), rtol=1e-5, atol=1e-6)
    masked, probe_logits = softmax(z)
    np.testing.assert_allclose(masked, z * mask[:, None, None, :], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probe_logits, softmax.probe_logits(z), atol=1e-6)
    # mask_scale="channels": × C, so the softmax mask averages 1 (the features keep their scale).
    scaled = CIFS(5, imgf="softmax", temperature=0.5, mask_scale="channels")
    scaled(z)
    scaled.set_weights(softmax.get_weights())
    np.testing.assert_allclose(scaled(z)[0], 6 * masked, rtol=1e-5, atol=1e-6)
    assert CIFS.from_config(scaled.get_config()).mask_scale == "channels"


def test_training_labels_replace_the_top_1_prediction():
    layer = CIFS(5, top_k=2)
    z = _features()
    layer(z)
    top = tf.math.top_k(layer.probe_logits(z), 2).indices.numpy()
    labels = np.array([(top[i, 0] + 3) % 5 for i in range(3)])  # never the predicted top-1 or top-2
    labels = np.where(labels == top[:, 1], (labels + 1) % 5, labels)
    kernel = layer.kernel.numpy()
    expected = kernel[:, labels].T + kernel[:, top[:, 1]].T  # label + runner-up columns
    np.testing.assert_allclose(layer.channel_relevance(z, labels=tf.constant(labels)), expected, atol=1e-6)
    with training_labels(tf.constant(labels)):
        trained, _ = layer(z, training=True)
        inference, _ = layer(z, training=False)  # labels are ignored outside training
    np.testing.assert_allclose(trained, z * tf.nn.softmax(expected)[:, None, None, :], atol=1e-6)
    np.testing.assert_allclose(inference, layer(z)[0], atol=1e-7)


def test_full_and_detached_mask_paths():
    z = _features()
    full = CIFS(5, probe="mlp", hidden_units=8, mask_path="full")
    full(z)
    detached = CIFS(5, probe="mlp", hidden_units=8, mask_path="detached")
    detached(z)
    detached.set_weights(full.get_weights())

    def value_and_input_gradient(layer):
        with tf.GradientTape() as tape:
            tape.watch(z)
            masked, _ = layer(z)
            loss = tf.reduce_sum(masked * tf.range(6, dtype=tf.float32))
        return masked, tape.gradient(loss, z)

    masked_full, grad_full = value_and_input_gradient(full)
    masked_detached, grad_detached = value_and_input_gradient(detached)
    np.testing.assert_allclose(masked_full, masked_detached, atol=1e-7)
    mask = tf.stop_gradient(full.importance_mask(z))
    constant_mask_gradient = tf.ones_like(z) * (mask * tf.range(6, dtype=tf.float32))[:, None, None, :]
    np.testing.assert_allclose(grad_detached, constant_mask_gradient, atol=1e-6)  # the mask seen as constant
    assert np.max(np.abs(grad_full - grad_detached)) > 1e-4  # full: the mask's own input dependence
    # The probe still learns through a detached mask (second order through the relevance).
    with tf.GradientTape() as tape:
        masked, _ = detached(z)
        loss = tf.reduce_sum(masked * tf.range(6, dtype=tf.float32))
    weights = [detached.hidden_kernel, detached.hidden_bias, detached.kernel]  # not the output bias: g ignores it
    assert all(g is not None and np.any(g.numpy() != 0) for g in tape.gradient(loss, weights))


def test_probe_loss_is_added_in_training_mode_with_labels():
    layer = CIFS(5, probe_loss_weight=0.5)
    z = _features()
    labels = tf.constant([0, 1, 2])
    layer(z, training=True)
    assert layer.losses == []  # no labels: nothing to supervise
    with training_labels(labels):
        _, probe_logits = layer(z, training=True)
    expected = 0.5 * np.mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, probe_logits))
    np.testing.assert_allclose(float(layer.losses[0]), expected, rtol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"top_k": 0}, "top_k"), ({"top_k": 6}, "top_k"), ({"imgf": "sigmoid", "alpha": 0}, "alpha"),
    ({"imgf": "softplus", "alpha": -1.0}, "alpha"), ({"temperature": 0}, "temperature"), ({"imgf": "tanh"}, "imgf"),
    ({"probe": "conv"}, "probe"), ({"mask_path": "half"}, "mask_path"), ({"probe_loss_weight": -1}, "probe_loss"),
    ({"mask_scale": 0}, "mask_scale"), ({"mask_scale": "mean"}, "mask_scale"),
])
def test_bad_arguments_fail_at_construction(kwargs, message):
    with pytest.raises(TfrobustError, match=message) as error:
        CIFS(5, **kwargs)
    assert "\n" not in str(error.value)


def test_beta_loss_matches_the_attack_hook():
    outputs = {"logits": tf.random.stateless_normal([4, 5], [1, 1]),
               "a": tf.random.stateless_normal([4, 5], [1, 2]), "b": tf.random.stateless_normal([4, 5], [1, 3])}
    labels = tf.constant([0, 1, 2, 3])
    for beta in (0.0, 2.0, float("inf")):
        np.testing.assert_allclose(beta_loss(beta)(outputs, labels),
                                   AuxiliaryLoss.beta(beta, ["a", "b"])(outputs, labels), rtol=1e-6)


def _input_gradient(fn, x, y):
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(y, fn(x)))
    return tape.gradient(loss, x).numpy()


def test_tape_relevance_second_order_gradients_survive_a_savedmodel_reload(tmp_path):
    inputs = keras.Input(FEATURES)
    masked, _ = CIFS(5, probe="mlp", hidden_units=8, relevance="tape")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(5)(keras.layers.Flatten()(masked)))
    x = tf.random.stateless_uniform([3, *FEATURES], [4, 4])
    y = tf.constant([0, 1, 4])
    artifact = export.load(export.export_saved_model(model, str(tmp_path), "tape", version=1))
    live = _input_gradient(lambda images: model(images, training=False), x, y)
    np.testing.assert_allclose(_input_gradient(artifact.logits_fn, x, y), live, atol=1e-6, rtol=1e-4)
