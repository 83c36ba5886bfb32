"""CIFS ResNets (thesis ch. 4): placement of the CIFS layers, ℓβ's probe terms in training mode, the vanilla
baseline, and SavedModel reload with equal outputs and input gradients (through the mask path)."""

import numpy as np
import pytest
import tensorflow as tf

from tfrobust import export, models
from tfrobust.errors import TfrobustError
from tfrobust.layers.cifs import cifs_layers, probe_keys, probed_model, set_mask_path, training_labels


def _input_gradient(fn, x, y):
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(y, fn(x)))
    return tape.gradient(loss, x).numpy()


def test_cifs_resnet_reloads_with_the_same_outputs_and_input_gradients(tmp_path):
    model = models.build("cifs_resnet10", (12, 12, 1), 4, width=0.25, probes=("mlp", "linear"))
    assert [layer.name for layer in cifs_layers(model)] == ["stage3_block1_cifs", "stage4_block1_cifs"]
    assert probe_keys(model) == ["stage3_block1_cifs", "stage4_block1_cifs"]
    x = tf.random.stateless_uniform([3, 12, 12, 1], [2, 2])
    y = tf.constant([0, 1, 2])
    artifact = export.load(export.export_saved_model(model, str(tmp_path), "cifs", version=1))
    np.testing.assert_allclose(artifact.predict(x.numpy()), model(x).numpy(), atol=1e-5)
    live = _input_gradient(lambda images: model(images, training=False), x, y)
    reloaded = _input_gradient(artifact.logits_fn, x, y)
    assert np.max(np.abs(live)) > 0
    np.testing.assert_allclose(reloaded, live, atol=1e-6, rtol=1e-4)
    # The probed view shares the weights; the detached copy has the same outputs.
    outputs = probed_model(model)(x)
    np.testing.assert_allclose(outputs["logits"], model(x), atol=1e-6)
    np.testing.assert_allclose(set_mask_path(model, "detached")(x), model(x), atol=1e-6)


def test_cifs_resnet_training_adds_beta_over_l_probe_losses():
    model = models.build("cifs_resnet10", (8, 8, 1), 3, width=0.0625, beta=2.0)
    x = tf.random.stateless_uniform([2, 8, 8, 1], [3, 3])
    y = tf.constant([0, 2])
    with training_labels(y):
        with tf.GradientTape() as tape:
            outputs = probed_model(model)(x, training=True)
            total = tf.add_n(model.losses)
    expected = sum(np.mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, outputs[k]))
                   for k in probe_keys(model))  # β/L = 1 per layer
    np.testing.assert_allclose(float(total), expected, rtol=1e-5)
    grads = tape.gradient(total, model.trainable_weights)
    assert sum(g is not None for g in grads) > 4
    vanilla = models.build("cifs_resnet10", (8, 8, 1), 3, width=0.0625, cifs_blocks=0)
    assert vanilla.name == "resnet10" and not cifs_layers(vanilla)
    with pytest.raises(TfrobustError, match="probes"):
        models.build("cifs_resnet10", (8, 8, 1), 3, probes=("mlp",))


