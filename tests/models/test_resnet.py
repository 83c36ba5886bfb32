"""ResNet builder: stride strings, depth presets, registries (blocks, norms, heads), serialization."""

import keras
import numpy as np
import pytest

from tfrobust import models
from tfrobust.errors import TfrobustError
from tfrobust.models import components

TINY = 0.0625  # ResNet-18 widths 4-8-16-32


def spatial(model, layer_name):
    return tuple(model.get_layer(layer_name).output.shape[1:3])


@pytest.mark.parametrize("strides, size", [
    ("1-2-2-2", 4), ("1-1-2-2", 8), ("1122", 8), ("1-2-1-2", 8), ("1-1-1-2", 16), ([1, 1, 1, 1], 32),
])
def test_stride_string_sets_final_feature_map_size(strides, size):
    model = models.build("resnet18", (32, 32, 3), 10, strides=strides, width=TINY)
    assert spatial(model, "stage4_block2_out") == (size, size)
    assert spatial(model, "features") == (size, size)


def test_default_strides_and_only_first_conv_of_a_stage_is_strided():
    model = models.build("resnet18", (32, 32, 3), 10, width=TINY)
    sizes = [spatial(model, f"stage{s}_block{b}_out")[0] for s in (1, 2, 3, 4) for b in (1, 2)]
    assert sizes == [32, 32, 16, 16, 8, 8, 4, 4]
    assert model.get_layer("stem_conv").strides == (1, 1)
    assert model.get_layer("stage2_block1_conv1").strides == (2, 2)
    assert model.get_layer("stage2_block2_conv1").strides == (1, 1)


@pytest.mark.parametrize("strides, size", [(None, 8), ("1-1-2", 16)])
def test_three_stage_resnet20_strides(strides, size):
    model = models.build("resnet20", (32, 32, 3), 10, strides=strides, width=0.25)
    assert spatial(model, "stage3_block3_out") == (size, size)


def test_depth_presets_and_widths():
    model = models.build("resnet56", (16, 16, 3), 10)
    assert model.get_layer("stage3_block9_out").output.shape[-1] == 64
    assert model.get_layer("stem_conv").filters == 16
    assert model.name == "resnet56"
    resnet18 = models.build("resnet18", (32, 32, 3), 10)
    # 11,173,962: the trainable-parameter count of the usual PyTorch CIFAR ResNet-18.
    assert sum(int(np.prod(w.shape)) for w in resnet18.trainable_weights) == 11_173_962


def test_explicit_stage_blocks_and_widths():
    model = models.build("resnet", (16, 16, 3), 10, stage_blocks=[1, 1, 1, 1],
                         stage_widths=[16, 16, 32, 64], width=0.5)
    assert model.get_layer("stem_conv").filters == 8
    assert [model.get_layer(f"stage{s}_block1_out").output.shape[-1] for s in (1, 2, 3, 4)] == \
        [8, 8, 16, 32]
    with pytest.raises(ValueError):
        model.get_layer("stage1_block2_out")


def test_preact_resnet18_has_final_norm_and_preactivated_blocks():
    model = models.build("preact_resnet18", (32, 32, 3), 10, width=TINY)
    assert isinstance(model.get_layer("final_norm"), keras.layers.BatchNormalization)
    assert isinstance(model.get_layer("stage1_block1_out"), keras.layers.Add)
    assert "stem_norm" not in {layer.name for layer in model.layers}


def test_group_norm_uses_largest_divisor_up_to_32():
    model = models.build("resnet18", (16, 16, 3), 10, norm="group", width=0.75)  # 48 … 384 channels
    assert model.get_layer("stem_norm").groups == 24
    assert model.get_layer("stage4_block2_norm2").groups == 32
    assert components.group_count(12) == 12 and components.group_count(96) == 32
    assert components.group_count(50) == 25


def test_norm_none_gives_conv_bias_and_no_norm_layers():
    model = models.build("resnet18", (16, 16, 3), 10, norm="none", width=TINY)
    assert model.get_layer("stem_conv").use_bias
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    assert not models.build("resnet18", (16, 16, 3), 10, width=TINY).get_layer("stem_conv").use_bias


def test_avg_and_max_heads():
    avg = models.build("resnet18", (16, 16, 3), 10, width=TINY)
    mx = models.build("resnet18", (16, 16, 3), 10, width=TINY, pooling="max")
    assert isinstance(avg.get_layer("pool"), keras.layers.GlobalAveragePooling2D)
    assert isinstance(mx.get_layer("pool"), keras.layers.GlobalMaxPooling2D)


def test_block_options_are_forwarded_and_checked():
    model = models.build("resnet18", (16, 16, 3), 10, width=TINY, block_options={"dropout": 0.2})
    assert model.get_layer("stage1_block1_dropout").rate == 0.2
    with pytest.raises(TfrobustError,
                       match=r"unknown option 'ratio' for block 'basic'; valid options: dropout"):
        models.build("resnet18", (16, 16, 3), 10, block_options={"ratio": 4})


# -- registries --------------------------------------------------------------------------------------
def test_custom_head_is_picked_up():
    def flatten_head(x, *, name):  # a trivial head: keep every position
        return keras.layers.Flatten(name=name)(x)

    models.register_head("test_flatten", flatten_head)
    try:
        model = models.build("resnet18", (16, 16, 3), 10, width=TINY, pooling="test_flatten")
        assert isinstance(model.get_layer("pool"), keras.layers.Flatten)
        assert model.get_layer("logits").kernel.shape == (2 * 2 * 32, 10)
        with pytest.raises(TfrobustError, match="already registered"):
            models.register_head("test_flatten", flatten_head)
    finally:
        models.HEADS.pop("test_flatten")


def test_custom_block_is_picked_up(images):
    @models.register_block("test_plain")
    def plain_block(x, filters, stride, *, norm, conv, name, scale=1.0):
        y = conv(x, filters, 3, stride, name=f"{name}_conv")
        y = norm(y, name=f"{name}_norm")
        return keras.layers.ReLU(name=f"{name}_out")(y * scale)

    try:
        model = models.build("resnet20", (16, 16, 3), 10, block="test_plain",
                             block_options={"scale": 0.5})
        assert model.get_layer("stage3_block3_out").output.shape[1:] == (4, 4, 64)
        assert "stage1_block1_add" not in {layer.name for layer in model.layers}
        assert model(images((16, 16, 3)), training=False).shape == (2, 10)
    finally:
        models.BLOCKS.pop("test_plain")


def test_custom_block_must_name_its_output():
    def unnamed_block(x, filters, stride, *, norm, conv, name):
        return conv(x, filters, 3, stride, name=f"{name}_conv")

    models.register_block("test_unnamed", unnamed_block)
    try:
        with pytest.raises(TfrobustError, match="must name its output layer"):
            models.build("resnet", (8, 8, 3), 2, stage_blocks=[1], stage_widths=[4],
                         block="test_unnamed")
    finally:
        models.BLOCKS.pop("test_unnamed")


def test_custom_norm_is_picked_up_by_resnet_and_vgg():
    def layer_norm(x, *, name):
        return keras.layers.LayerNormalization(name=name)(x)

    models.register_norm("test_layer", layer_norm)
    try:
        model = models.build("resnet18", (16, 16, 3), 10, width=TINY, norm="test_layer")
        assert isinstance(model.get_layer("stage2_block1_norm1"), keras.layers.LayerNormalization)
        vgg = models.build("vgg16", (16, 16, 3), 10, width=0.125, norm="test_layer")
        assert isinstance(vgg.get_layer("stage1_norm1"), keras.layers.LayerNormalization)
    finally:
        models.NORMS.pop("test_layer")


# -- serialization -----------------------------------------------------------------------------------
def test_keras_save_load_round_trip_gives_identical_outputs(tmp_path, images):
    model = models.build("resnet20", (16, 16, 3), 10, width=0.25, strides="1-1-2", pooling="max",
                         mean=[0.5, 0.4, 0.3], std=[0.2, 0.2, 0.2], upsample=2,
                         upsample_interpolation="bilinear")
    x = images((16, 16, 3))
    model(x, training=True)  # move the BatchNorm statistics away from their initial values
    path = tmp_path / "resnet.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_array_equal(model(x, training=False), restored(x, training=False))
    assert restored.get_layer("stage3_block3_out").output.shape[1:3] == (16, 16)  # 16 → ×2 → /2


# -- bad inputs --------------------------------------------------------------------------------------
@pytest.mark.parametrize("options, message", [
    (dict(strides="1-2-2"), r"strides must have 4 entries \(one per stage, e.g. '1-2-2-2'\), "
                            r"got '1-2-2' with 3"),
    (dict(strides="1-x-2-2"), r"strides must be a string like '1-2-2-2' of positive integers"),
    (dict(strides="1-0-2-2"), r"strides must be a string like"),
    (dict(norm="layer"), r"unknown norm 'layer'; valid choices: batch, group, none"),
    (dict(depth=19), r"unknown depth 19; valid choices: 18, 20, 56"),
    (dict(pooling="sum"), r"unknown pooling 'sum'; valid choices: avg, (\w+, )*max\b"),
    (dict(block="bottleneck"), r"unknown block 'bottleneck'; valid choices: basic, cifs, evp, preact, se"),
    (dict(conv="dilated"), r"unknown conv 'dilated'; valid choices: convnorm, evp, standard"),
    (dict(width=0), r"width must be a positive number"),
    (dict(stage_blocks=[2, 2]), r"stage_blocks and stage_widths must have the same number"),
    (dict(stage_blocks=[2, 0, 2, 2]), r"stage_blocks must be a list of positive integers"),
])
def test_bad_resnet_options(options, message):
    with pytest.raises(TfrobustError, match=message):
        models.build("resnet", (16, 16, 3), 10, **options)
