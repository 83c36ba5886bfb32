"""A small trained denoiser shared by the denoising tests (trained once per session, in seconds).

Import the fixture into a test module: ``from tests.denoising_fixtures import trained_denoiser  # noqa: F401``.
"""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrobust import models
from tfrobust.data.denoising import add_noise, make_denoising_dataset, sample_patches
from tfrobust.data.image_folder import embedded_images
from tfrobust.training.denoising import DenoisingModel


@functools.lru_cache(maxsize=1)
def _train():
    keras.utils.set_random_seed(0)
    train, _ = embedded_images("train", "gray")
    patches = sample_patches(train, 16, 2048, seed=0)
    net = models.build("dncnn", (None, None, 1), None, depth=4, width=16)
    trainer = DenoisingModel(net, "hat", alpha=0.0)
    trainer.compile(optimizer=keras.optimizers.Adam(3e-3))
    trainer.fit(make_denoising_dataset(patches, 32, gamma=25 / 255, seed=0), epochs=1, verbose=0)
    test, _ = embedded_images("test", "gray")
    clean = np.stack([image[100:132, 100:132] for image in test[:4]])
    noisy = add_noise(tf.constant(clean), "gaussian", 15 / 255, tf.constant([0, 1], tf.int64)).numpy()
    return net, noisy, clean


@pytest.fixture(scope="session")
def trained_denoiser():
    """(DnCNN depth 4 × 16 trained normally for 64 steps on 16×16 patches, noisy 32×32 crops of the
    held-out embedded images at σ = 15/255, their clean crops)."""
    return _train()
