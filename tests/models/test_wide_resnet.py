"""Wide ResNet: WRN-depth-k layout, dropout, stride strings, bad depths."""

import keras
import pytest

from tfrobust import models
from tfrobust.errors import TfrobustError


def test_wrn16_layout():
    model = models.build("wrn16", (16, 16, 3), 10, widen_factor=2)
    assert model.name == "wrn16_2"
    assert model.get_layer("stem_conv").filters == 16
    assert [model.get_layer(f"stage{s}_block2_out").output.shape[-1] for s in (1, 2, 3)] == [32, 64, 128]
    assert model.get_layer("features").output.shape[1:3] == (4, 4)
    assert isinstance(model.get_layer("final_norm"), keras.layers.BatchNormalization)
    names = {layer.name for layer in model.layers}
    assert "stage1_block3_out" not in names  # (16 - 4) / 6 = 2 blocks per stage
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)


def test_depth_dropout_strides_and_norm():
    model = models.build("wide_resnet", (16, 16, 3), 10, depth=22, widen_factor=1, dropout=0.3,
                         strides="1-1-2", norm="group")
    assert model.get_layer("stage3_block3_dropout").rate == 0.3
    assert model.get_layer("features").output.shape[1:3] == (8, 8)
    assert isinstance(model.get_layer("stage1_block1_norm1"), keras.layers.GroupNormalization)


@pytest.mark.parametrize("options, message", [
    (dict(depth=15), r"depth must be 6n\+4 with n >= 1 \(e.g. 16, 22, 28, 34, 40\), got 15"),
    (dict(depth=4), r"depth must be 6n\+4"),
    (dict(widen_factor=0), r"widen_factor must be a positive integer"),
    (dict(dropout=1.0), r"dropout must be in \[0, 1\), got 1.0"),
    (dict(strides="1-2-2-2"), r"strides must have 3 entries"),
    (dict(norm="instance"), r"unknown norm 'instance'; valid choices: batch, group, none"),
])
def test_bad_wide_resnet_options(options, message):
    with pytest.raises(TfrobustError, match=message):
        models.build("wide_resnet", (16, 16, 3), 10, **options)
