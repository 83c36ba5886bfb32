"""ConvNorm as a conv option: WideResNet-16-k with BN / ConvNorm / both / none (report Table 1)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrobust import models
from tfrobust.layers import ConvNorm2D, with_inference_form


@pytest.mark.parametrize("norm,conv", [("none", "standard"), ("batch", "standard"), ("none", "convnorm"),
                                       ("batch", "convnorm")])
def test_wrn16_takes_each_normalisation_of_table_1(norm, conv):
    model = models.build("wrn16", (8, 8, 3), 4, widen_factor=1, norm=norm, conv=conv)
    assert any(isinstance(layer, ConvNorm2D) for layer in model.layers) == (conv == "convnorm")
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers) == (norm == "batch")
    assert model(np.zeros((1, 8, 8, 3), np.float32)).shape == (1, 4)


def test_convnorm_wrn_trains_updates_running_estimates_and_has_an_exact_builtin_inference_form():
    model = models.build("wrn16", (8, 8, 3), 4, widen_factor=1, norm="batch", conv="convnorm")
    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 3)).astype(np.float32)
    y = np.array([0, 1, 2, 3])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = keras.optimizers.Adam(1e-2)
    # One eager training step (a compiled fit step costs ~30 s of tracing for 15 FFT layers on 2 CPUs).
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_weights)
    assert np.isfinite(loss.numpy()) and all(g is not None for g in grads)
    before = model(x).numpy()
    optimizer.apply_gradients(zip(grads, model.trainable_weights))
    assert np.abs(model(x).numpy() - before).max() > 0  # the step changed the model
    convnorms = [layer for layer in model.layers if isinstance(layer, ConvNorm2D)]
    assert len(convnorms) == 15 and all(layer.num_updates.numpy() == 1 for layer in convnorms)
    np.testing.assert_allclose(with_inference_form(model, "spatial")(x).numpy(), model(x).numpy(), atol=1e-4)
