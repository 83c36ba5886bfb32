"""ODE nets of the thesis (ch. 3: ``odenet``, ``tisode``, ``odenet_cnn``): layouts, training losses, FDn and
IRd options, the NFE metric in ``fit``, mixed precision, and SavedModel reload with equal outputs and input
gradients."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrobust import export, models
from tfrobust.errors import TfrobustError
from tfrobust.layers.ode_block import ode_blocks
from tfrobust.training import DiagnosticsLogger


def _input_gradient(fn, x, y):
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(y, fn(x)))
    return tape.gradient(loss, x).numpy()


# DormandPrince: first-order input gradients survive the reload (the measured fact); ≈ 25 s here.
@pytest.mark.parametrize("solver", ["rk4", pytest.param("dopri5", marks=pytest.mark.slow)])
def test_odenet_reloads_with_the_same_outputs_and_input_gradients(solver, tmp_path):
    model = models.build("tisode", (12, 12, 1), 3, width=0.0625, solver=solver, steps=2)
    assert model.name == "tisode" and [b.name for b in ode_blocks(model)] == ["ode"]
    x = tf.random.stateless_uniform([2, 12, 12, 1], [5, 5])
    y = tf.constant([0, 2])
    artifact = export.load(export.export_saved_model(model, str(tmp_path), "ode", version=1))
    np.testing.assert_allclose(artifact.predict(x.numpy()), model(x).numpy(), atol=1e-5)
    live = _input_gradient(lambda images: model(images, training=False), x, y)
    assert np.max(np.abs(live)) > 0
    np.testing.assert_allclose(_input_gradient(artifact.logits_fn, x, y), live, atol=1e-6, rtol=1e-3)


def test_ode_builders_and_training_losses():
    x = tf.random.stateless_uniform([2, 8, 8, 1], [6, 6])
    tisode = models.build("tisode", (8, 8, 1), 3, width=0.0625, steps=2)
    tisode(x, training=True)
    assert len(tisode.losses) == 1 and float(tisode.losses[0]) > 0
    block = tisode.get_layer("ode")
    assert (block.steady_state_weight, block.steady_state_norm, block.time_dependent) == (0.01, "mean", False)
    odenet = models.build("odenet", (8, 8, 1), 3, width=0.0625, steps=2)
    odenet(x, training=True)
    assert odenet.losses == [] and odenet.get_layer("ode").time_dependent
    cnn = models.build("odenet_cnn", (8, 8, 1), 3, width=0.0625, denoise=True)
    assert cnn.name == "odenet_cnn" and cnn.get_layer("denoise") is not None
    # The CNN: the same layers without the time channel's kernel rows and the ODE block's NFE counter.
    assert cnn.count_params() == odenet.count_params() - 2 * 9 * 4 - 1 + cnn.get_layer("denoise").count_params()
    cifar = models.build("odenet", (32, 32, 3), 10, width=0.25)
    assert cifar.get_layer("features").output.shape[1:] == (8, 8, 16)  # Table 3.9: two stride-2 convs
    with pytest.raises(TfrobustError, match="size_range"):
        models.build("tisode", (8, 8, 1), 3, input_randomization=(6, 10))
    with pytest.raises(TfrobustError, match="steady_state_weight"):
        models.build("odenet_cnn", (8, 8, 1), 3, steady_state_weight=0.1)


def test_float32_export_copy_of_a_mixed_precision_ode_net_computes_in_float32():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = models.build("tisode", (8, 8, 1), 3, width=0.0625, steps=2)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert model.get_layer("ode").dynamics.compute_dtype == "bfloat16"
    copy = export.float32_model(model)
    dynamics = copy.get_layer("ode").dynamics
    assert dynamics.compute_dtype == "float32" and dynamics.convs[0].compute_dtype == "float32"
    x = tf.random.stateless_uniform([2, 8, 8, 1], [7, 7])
    np.testing.assert_allclose(copy(x), model(x), atol=5e-2)


def test_keras_fit_adds_the_steady_state_loss():
    model = models.build("tisode", (8, 8, 1), 3, width=0.0625, steps=2)
    model.compile(optimizer=keras.optimizers.SGD(0.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = tf.random.stateless_uniform([4, 8, 8, 1], [8, 8])
    y = tf.constant([0, 1, 2, 0])
    ce = float(tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, model(x, training=True))))
    steady_state = float(tf.add_n(model.losses))
    assert steady_state > 0
    np.testing.assert_allclose(model.train_on_batch(x, y), ce + steady_state, rtol=1e-4)


def test_nfe_is_logged_as_a_metric_by_fit():
    model = models.build("tisode", (8, 8, 1), 3, width=0.0625, solver="rk4", steps=3)
    model.compile(optimizer=keras.optimizers.SGD(0.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype(np.float32)
    history = model.fit(x, np.array([0, 1, 2, 0]), batch_size=2, epochs=1, verbose=0, callbacks=[DiagnosticsLogger()])
    assert history.history["nfe"] == [12.0]  # 3 RK4 steps × 4 stages, every batch
    assert ode_blocks(model)[0].diagnostics()["nfe"].numpy() == 12  # the layer-diagnostics hook


def test_fdn_is_a_classifier_head_for_any_builder():
    model = models.build("resnet20", (8, 8, 1), 3, width=0.25, pooling="fdn")
    denoise = model.get_layer("pool_denoise")
    assert denoise.mode == "dot" and model.get_layer("pool").input.shape == denoise.output.shape
    x = tf.random.stateless_uniform([2, 8, 8, 1], [9, 9])
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(model(x, training=True))
    grads = tape.gradient(loss, [x, *denoise.trainable_weights])
    assert all(g is not None and np.all(np.isfinite(g)) for g in grads)
