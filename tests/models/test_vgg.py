"""VGG-16 and AlexNet (feature-map paper, Appendix B): stride strings set the pooled feature size."""

import keras
import pytest

from tfrobust import models
from tfrobust.errors import TfrobustError

TINY = dict(width=0.125, fc_units=(16, 16))


def feature_size(model):
    return tuple(model.get_layer("features").output.shape[1:3])


@pytest.mark.parametrize("strides, size", [
    ("2-2-2-2-2", 1), ("1-1-2-2-2", 4), ("11222", 4), ("1-1-1-1-1", 32),
])
def test_vgg16_strides(strides, size):
    model = models.build("vgg16", (32, 32, 3), 10, strides=strides, **TINY)
    assert feature_size(model) == (size, size)


def test_vgg16_layout_and_stride_one_drops_the_pooling():
    model = models.build("vgg16", (32, 32, 3), 10, strides="1-1-2-2-2", **TINY)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 13
    names = {layer.name for layer in model.layers}
    assert "stage1_pool" not in names and "stage3_pool" in names
    assert model.get_layer("stage2_out").output.shape[1:3] == (32, 32)
    assert isinstance(model.get_layer("stage1_norm1"), keras.layers.BatchNormalization)
    assert isinstance(model.get_layer("pool"), keras.layers.GlobalAveragePooling2D)
    assert [model.get_layer(n).units for n in ("fc1", "fc2", "logits")] == [16, 16, 10]
    assert models.build("vgg16", (32, 32, 3), 10).get_layer("fc1").units == 256


@pytest.mark.parametrize("strides, size", [("2-2-2-2", 2), ("1-1-2-2", 8), ("1122", 8), ("1-1-1-1", 32)])
def test_alexnet_strides(strides, size):
    model = models.build("alexnet", (32, 32, 3), 10, strides=strides, **TINY)
    assert feature_size(model) == (size, size)


def test_alexnet_layout():
    model = models.build("alexnet", (32, 32, 3), 10)
    assert [model.get_layer(f"conv{i}").filters for i in range(1, 6)] == [64, 192, 384, 256, 256]
    assert [model.get_layer(f"conv{i}").kernel_size for i in (1, 2, 3)] == [(5, 5), (5, 5), (3, 3)]
    assert model.get_layer("conv1").strides == (2, 2)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    assert model.get_layer("conv1").use_bias
    assert [model.get_layer(n).units for n in ("fc1", "fc2")] == [512, 512]


@pytest.mark.parametrize("name, options, message", [
    ("vgg16", dict(strides="2-2-2-2"), r"strides must have 5 entries \(one per stage, e.g. '1-2-2-2-2'\)"),
    ("alexnet", dict(strides="1-1-2-2-2"), r"strides must have 4 entries"),
    ("vgg16", dict(norm="layer"), r"unknown norm 'layer'; valid choices: batch, group, none"),
    ("alexnet", dict(pooling="median"), r"unknown pooling 'median'; valid choices: avg, (\w+, )*max\b"),
    ("vgg16", dict(fc_units=(256, 0)), r"fc_units must be a list of positive integers"),
    ("alexnet", dict(dropout=-0.1), r"dropout must be in \[0, 1\)"),
])
def test_bad_vgg_alexnet_options(name, options, message):
    with pytest.raises(TfrobustError, match=message):
        models.build(name, (32, 32, 3), 10, **options)
