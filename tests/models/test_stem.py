"""Input preprocessing inside the model: per-channel normalisation and input upsampling."""

import keras
import numpy as np
import pytest

from tfrobust import models
from tfrobust.errors import TfrobustError

MEAN = [0.49, 0.48, 0.45]
STD = [0.25, 0.24, 0.26]
TINY_RESNET = dict(stage_blocks=[1, 1], stage_widths=[4, 8])


def copy_weights_by_name(source, target):
    for layer in target.layers:
        if layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())


def submodel(model, layer_name):
    return keras.Model(model.input, model.get_layer(layer_name).output)


def test_normalisation_layer_computes_x_minus_mean_over_std(images):
    model = models.build("resnet", (8, 8, 3), 4, mean=MEAN, std=STD, **TINY_RESNET)
    x = images((8, 8, 3))
    out = submodel(model, "input_normalization")(x)
    np.testing.assert_allclose(out, (x - np.array(MEAN)) / np.array(STD), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["resnet", "small_cnn"])
def test_model_with_mean_std_equals_plain_model_on_normalised_input(name, images):
    options = TINY_RESNET if name == "resnet" else dict(width=0.25)
    normalised = models.build(name, (8, 8, 3), 4, mean=MEAN, std=STD, **options)
    plain = models.build(name, (8, 8, 3), 4, **options)
    copy_weights_by_name(normalised, plain)
    x = images((8, 8, 3))
    manual = ((x - np.array(MEAN)) / np.array(STD)).astype("float32")
    np.testing.assert_allclose(normalised(x, training=False), plain(manual, training=False),
                               rtol=1e-4, atol=1e-5)


def test_default_stem_is_identity():
    model = models.build("small_cnn", (8, 8, 1), 2)
    names = {layer.name for layer in model.layers}
    assert not names & {"input_normalization", "input_upsampling"}


def test_scalar_mean_std_broadcast_and_only_std_given(images):
    model = models.build("small_cnn", (8, 8, 3), 2, std=0.5)
    x = images((8, 8, 3))
    np.testing.assert_allclose(submodel(model, "input_normalization")(x), x / 0.5, rtol=1e-6)


@pytest.mark.parametrize("factor", [2, 3])
def test_upsampling_scales_the_first_feature_map(factor):
    model = models.build("resnet", (16, 16, 3), 4, upsample=factor, **TINY_RESNET)
    assert model.get_layer("input_upsampling").output.shape == (None, 16 * factor, 16 * factor, 3)
    assert model.get_layer("stem_conv").output.shape[1:3] == (16 * factor, 16 * factor)
    plain = models.build("resnet", (16, 16, 3), 4, **TINY_RESNET)
    assert plain.get_layer("features").output.shape[1] * factor == \
        model.get_layer("features").output.shape[1]


def test_nearest_repeats_pixels_and_bilinear_differs(images):
    nearest = models.build("resnet", (8, 8, 3), 4, upsample=2, **TINY_RESNET)
    bilinear = models.build("resnet", (8, 8, 3), 4, upsample=2, upsample_interpolation="bilinear",
                            **TINY_RESNET)
    copy_weights_by_name(nearest, bilinear)
    x = images((8, 8, 3))
    up = np.asarray(submodel(nearest, "input_upsampling")(x))
    np.testing.assert_array_equal(up, x.repeat(2, axis=1).repeat(2, axis=2))
    up_bilinear = np.asarray(submodel(bilinear, "input_upsampling")(x))
    assert np.abs(up - up_bilinear).max() > 1e-3
    assert np.abs(np.asarray(nearest(x, training=False))
                  - np.asarray(bilinear(x, training=False))).max() > 1e-6


def test_stem_layers_run_in_float32_under_mixed_precision(mixed_bfloat16, images):
    model = models.build("resnet", (8, 8, 3), 4, mean=MEAN, std=STD, upsample=2, **TINY_RESNET)
    assert model.get_layer("input_normalization").compute_dtype == "float32"
    assert model.get_layer("input_upsampling").compute_dtype == "float32"
    assert model.get_layer("stem_conv").compute_dtype == "bfloat16"
    assert model(images((8, 8, 3)), training=False).dtype == "float32"


@pytest.mark.parametrize("upsample", [0, -1, 1.5, True])
def test_upsample_below_one_or_not_int_errors(upsample):
    with pytest.raises(TfrobustError, match=r"upsample must be (in \[1, inf\)|an integer), got"):
        models.build("small_cnn", (8, 8, 1), 2, upsample=upsample)


def test_bad_interpolation_lists_choices():
    with pytest.raises(TfrobustError,
                       match=r"unknown upsample_interpolation 'bicubic'; valid choices: nearest, bilinear"):
        models.build("small_cnn", (8, 8, 1), 2, upsample=2, upsample_interpolation="bicubic")


@pytest.mark.parametrize("options, message", [
    (dict(mean=[0.5, 0.5]), r"mean must be a number or 3 numbers \(one per channel\)"),
    (dict(std="wide"), r"std must be a number or 3 numbers"),
    (dict(mean=0.5, std=[0.2, 0.0, 0.2]), r"std must be positive"),
])
def test_bad_mean_std(options, message):
    with pytest.raises(TfrobustError, match=message):
        models.build("small_cnn", (8, 8, 3), 2, **options)
