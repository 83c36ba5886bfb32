"""HAT (eq. 2.3) through DenoisingModel: the loss against a hand computation, α = 0 as normal training,
the crafted observations, and the errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrobust import models
from tfrobust.errors import TfrobustError
from tfrobust.training import AdversarialModel
from tfrobust.training.denoising import DenoisingModel
from tfrobust.training.methods import HAT, names


def scaling_denoiser():
    """f(y) = clip(0.5·y + 0.25): a linear denoiser whose ObsAtk gradient and loss are known by hand."""
    images = keras.Input((4, 4, 1))
    conv = keras.layers.Conv2D(1, 1, kernel_initializer=keras.initializers.Constant(0.5),
                               bias_initializer=keras.initializers.Constant(0.25))
    return keras.Model(images, keras.layers.ReLU(max_value=1.0)(conv(images)))


def batch():
    rng = np.random.default_rng(0)
    clean = rng.uniform(0.3, 0.7, size=(3, 4, 4, 1)).astype(np.float32)
    noisy = np.clip(clean + rng.normal(scale=0.05, size=clean.shape), 0, 1).astype(np.float32)
    return tf.constant(noisy), tf.constant(clean)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.0])
def test_loss_matches_the_hand_computation(alpha):
    trainer = DenoisingModel(scaling_denoiser(), "hat", alpha=alpha, eps=5 / 255, steps=1)
    noisy, clean = batch()
    crafted = trainer.method.craft(trainer, noisy, clean, tf.constant([0, 0], tf.int64))
    record = trainer.method.loss(trainer, noisy, clean, crafted, training=False)
    y, x, y_adv = noisy.numpy(), clean.numpy(), crafted.numpy()
    f = lambda v: np.clip(0.5 * v + 0.25, 0, 1)
    reconstruction = np.mean((f(y) - x) ** 2)
    consistency = np.mean((f(y) - f(y_adv)) ** 2)
    expected = 0.5 * (reconstruction / (1 + alpha) + alpha / (1 + alpha) * consistency)
    assert float(record.total) == pytest.approx(expected, rel=1e-5)
    if alpha == 0:
        np.testing.assert_array_equal(y_adv, y)  # normal training: nothing crafted
        return
    # One full-budget step along the zero-mean gradient 2·0.5·(f(y) − x): the closed form of ObsAtk.
    grad = (f(y) - x).reshape(3, -1)
    grad -= grad.mean(axis=1, keepdims=True)
    budget = 5 / 255 * 4
    expected_adv = y.reshape(3, -1) + budget * grad / np.linalg.norm(grad, axis=1, keepdims=True)
    np.testing.assert_allclose(y_adv.reshape(3, -1), expected_adv, atol=1e-5)
    assert consistency > 0


def test_fit_trains_both_terms_and_reports_psnr():
    keras.utils.set_random_seed(0)
    net = models.build("dncnn", (None, None, 1), None, depth=3, width=4)
    trainer = DenoisingModel(net, "hat", alpha=1.0, steps=1)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)  # no trace: the test stays fast
    noisy, clean = batch()
    before = [w.numpy().copy() for w in net.trainable_weights]
    history = trainer.fit(noisy, clean, batch_size=3, epochs=1, verbose=0)
    assert set(history.history) == {"loss", "reconstruction", "consistency", "psnr", "adv_psnr"}
    assert all(np.isfinite(v).all() for v in history.history.values())
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, net.trainable_weights))
    logs = trainer.evaluate(noisy, clean, verbose=0, return_dict=True)
    expected_psnr = float(tf.reduce_mean(tf.image.psnr(net(noisy, training=False), clean, 1.0)))
    assert logs["psnr"] == pytest.approx(expected_psnr, rel=1e-5)
    assert logs["adv_psnr"] < logs["psnr"]


def test_bad_parameters_and_wrappers_raise_one_line():
    with pytest.raises(TfrobustError, match="alpha must be"):
        DenoisingModel(scaling_denoiser(), "hat", alpha=-1.0)
    with pytest.raises(TfrobustError, match="unknown denoising method 'trades'"):
        DenoisingModel(scaling_denoiser(), "trades")
    assert "hat" not in names()  # not offered to classifiers
    with pytest.raises(TfrobustError, match="eps must be"):
        HAT(eps=0.0)
    with pytest.raises(TfrobustError, match="method 'hat' trains denoisers"):
        AdversarialModel(scaling_denoiser(), HAT())
    trainer = DenoisingModel(scaling_denoiser(), "hat")
    with pytest.raises(TfrobustError, match="needs clean targets"):
        trainer.compile(optimizer="adam")
        trainer.fit(np.zeros((2, 4, 4, 1), np.float32), verbose=0)
