"""The model registry: every registered name builds and maps [0,1] images to float32 logits; bad names
and options are reported with the valid choices."""

import functools

import numpy as np
import pytest

from tfrobust import models
from tfrobust.errors import TfrobustError
from tfrobust.models import registry

SHAPES = [(28, 28, 1), (32, 32, 3)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", models.names())
def test_every_model_builds_and_gives_finite_float32_logits(name, shape, small_options, images):
    model = models.build(name, shape, 7, **small_options(name))
    logits = model(images(shape), training=False)
    assert tuple(logits.shape) == (2, 7)
    assert logits.dtype == "float32"
    assert np.all(np.isfinite(np.asarray(logits)))
    assert model.input.dtype == "float32"


@pytest.mark.parametrize("name", ["resnet18", "vgg16", "small_cnn"])
def test_mixed_bfloat16_still_gives_float32_logits(name, small_options, images, mixed_bfloat16):
    model = models.build(name, (32, 32, 3), 10, norm="batch", **small_options(name))
    assert model.get_layer("stem_conv" if name == "resnet18" else "features").compute_dtype == "bfloat16"
    logits = model(images((32, 32, 3)), training=False)
    assert logits.dtype == "float32"
    assert np.all(np.isfinite(np.asarray(logits)))


def test_expected_names_are_registered():
    assert {"madry_cnn", "small_cnn", "resnet", "resnet18", "resnet20", "resnet56", "preact_resnet18",
            "wide_resnet", "wrn16", "vgg16", "alexnet"} <= set(models.names())


def test_options_lists_defaults_of_partials():
    assert models.options("resnet20")["depth"] == 20
    assert models.options("preact_resnet18")["block"] == "preact"
    assert models.options("wrn16")["depth"] == 16
    assert set(models.STEM_OPTIONS) <= set(models.options("alexnet"))


def test_unknown_model_lists_choices():
    with pytest.raises(TfrobustError, match=r"unknown model 'resnet19'; valid choices: .*resnet18"):
        models.build("resnet19", (32, 32, 3), 10)


def test_unknown_option_names_option_and_lists_valid_ones():
    with pytest.raises(TfrobustError,
                       match=r"unknown option 'foo' for model 'resnet'; valid options: depth, "):
        models.build("resnet", (32, 32, 3), 10, foo=1)


@pytest.mark.parametrize("shape", [(32, 32), (32, 32, 0), "32x32x3"])
def test_bad_input_shape(shape):
    with pytest.raises(TfrobustError, match="input_shape must be"):
        models.build("small_cnn", shape, 10)


def test_bad_num_classes():
    with pytest.raises(TfrobustError, match="num_classes must be a positive integer"):
        models.build("small_cnn", (28, 28, 1), 0)


def test_register_new_model_and_duplicates(small_options):
    name = "test_tiny_resnet"
    builder = functools.partial(models.resnet.resnet, stage_blocks=[1], stage_widths=[4])
    try:
        models.register(name, builder)
        assert name in models.names()
        assert models.build(name, (8, 8, 3), 3).output.shape == (None, 3)
        with pytest.raises(TfrobustError, match="already registered"):
            models.register(name, builder)
        models.register(name, builder, overwrite=True)
    finally:
        registry._BUILDERS.pop(name, None)
    assert name not in models.names()
