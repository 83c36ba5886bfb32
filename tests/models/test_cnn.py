"""Madry et al.'s MNIST CNN and the small four-layer CNN."""

import keras
import numpy as np
import pytest

from tfrobust import models
from tfrobust.errors import TfrobustError


def test_madry_cnn_matches_the_paper_architecture():
    model = models.build("madry_cnn", (28, 28, 1), 10)
    assert [model.get_layer(n).filters for n in ("conv1", "conv2")] == [32, 64]
    assert model.get_layer("conv1").kernel_size == (5, 5)
    assert model.get_layer("features").output.shape[1:] == (7, 7, 64)
    assert model.get_layer("fc1").units == 1024
    assert model.count_params() == 3_274_634  # the MNIST challenge model's parameter count


@pytest.mark.parametrize("downsample", ["pool", "stride"])
def test_small_cnn_downsampling(downsample, images):
    model = models.build("small_cnn", (28, 28, 1), 10, downsample=downsample, norm="batch", width=0.5)
    assert model.get_layer("features").output.shape[1:] == (7, 7, 32)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [16, 16, 32, 32]
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert len(pools) == (2 if downsample == "pool" else 0)
    assert [c.strides[0] for c in convs] == ([1, 1, 1, 1] if downsample == "pool" else [1, 2, 1, 2])
    assert model.get_layer("fc1").units == 128
    assert np.all(np.isfinite(model(images((28, 28, 1)), training=False)))


@pytest.mark.parametrize("options, message", [
    (dict(downsample="avg"), r"unknown downsample 'avg'; valid choices: pool, stride"),
    (dict(norm="batchnorm"), r"unknown norm 'batchnorm'; valid choices: batch, group, none"),
    (dict(hidden=0), r"hidden must be a positive integer"),
])
def test_bad_small_cnn_options(options, message):
    with pytest.raises(TfrobustError, match=message):
        models.build("small_cnn", (28, 28, 1), 10, **options)


def test_madry_cnn_has_no_norm_option():
    with pytest.raises(TfrobustError, match=r"unknown option 'norm' for model 'madry_cnn'; "
                                            r"valid options: width, mean, std, upsample"):
        models.build("madry_cnn", (28, 28, 1), 10, norm="batch")
