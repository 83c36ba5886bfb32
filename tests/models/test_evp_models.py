"""EVPNet model options (paper §5.1, Table 1): SE baseline, EVP-ResNet, ablation switches, EVP small CNN."""

import itertools

import keras
import numpy as np
import pytest

from tfrobust import models
from tfrobust.models import evp
from tfrobust.errors import TfrobustError
from tfrobust.layers import EVPConv, ProjectedNormalization, SqueezeExcite, TReLU

TINY = dict(stage_blocks=[1, 1, 1], stage_widths=[4, 8, 8])


def layer_types(model):
    return {layer.name: type(layer) for layer in model.layers}


def test_evp_resnet20_replaces_the_input_conv_and_each_first_block_conv_and_uses_pnl():
    model = models.build("evp_resnet20", (32, 32, 3), 10, width=0.25)
    types = layer_types(model)
    assert types["stem_conv"] is EVPConv and types["pool"] is ProjectedNormalization
    blocks = [n[:-len("_conv1")] for n in types if n.endswith("_conv1")]
    assert len(blocks) == 9 and all(types[f"{b}_conv1"] is EVPConv for b in blocks)
    assert all(types[f"{b}_conv2"] is keras.layers.Conv2D for b in blocks)
    assert model.get_layer("stage2_block1_conv1").strides == 2
    baseline = models.build("se_resnet20", (32, 32, 3), 10, width=0.25)
    assert all(layer_types(baseline)[f"{b}_se"] is SqueezeExcite for b in blocks)
    overhead = model.count_params() / baseline.count_params() - 1  # paper: 7–20 % on its networks
    assert 0 < overhead < 0.25


@pytest.mark.parametrize("pdog,trelu,pnl", list(itertools.product([False, True], repeat=3)))
def test_ablation_switches_select_each_component(pdog, trelu, pnl):
    model = models.build("evp_resnet", (8, 8, 1), 3, pdog=pdog, trelu=trelu, pnl=pnl, **TINY)
    types = layer_types(model)
    assert (types["stem_conv"] is EVPConv) == pdog
    assert (types["stage1_block1_conv1"] is EVPConv) == pdog
    if pdog:
        assert model.get_layer("stage1_block1_conv1").use_trelu == trelu
        assert model.get_layer("stem_conv").use_trelu == trelu
    else:
        assert types["stage1_block1_se"] is SqueezeExcite
        assert ("stage1_block1_trelu1" in types) == trelu
    assert (types["pool"] is ProjectedNormalization) == pnl
    assert model(np.zeros((1, 8, 8, 1), np.float32)).shape == (1, 3)


def test_all_components_off_is_the_se_baseline():
    ablated = models.build("evp_resnet", (8, 8, 1), 3, pdog=False, trelu=False, pnl=False, **TINY)
    baseline = models.build("se_resnet20", (8, 8, 1), 3, **TINY)
    assert [type(layer) for layer in ablated.layers] == [type(layer) for layer in baseline.layers]
    assert ablated.count_params() == baseline.count_params()


def test_channel_level_trelu_and_bad_values_fail_in_one_line():
    model = models.build("evp_resnet", (8, 8, 1), 3, trelu_mode="channel", **TINY)
    assert model.get_layer("stage1_block1_conv1").trelu.threshold.shape == (4,)
    with pytest.raises(TfrobustError, match="unknown trelu_mode 'pixel'; valid choices: block, channel"):
        models.build("evp_resnet", (8, 8, 1), 3, trelu_mode="pixel", **TINY)
    with pytest.raises(TfrobustError, match="strides must have 3 entries"):
        models.build("evp_resnet20", (8, 8, 1), 3, strides="12")


def test_evp_small_cnn_uses_evp_convolutions_for_28x28_data():
    model = models.build("evp_small_cnn", (28, 28, 1), 10, width=0.25)
    assert [type(model.get_layer(f"conv{i}")) for i in range(1, 5)] == [EVPConv] * 4
    # BatchNorm after each EVPConv by default (without it the thresholds zero the signal, see evp.py).
    assert isinstance(model.get_layer("norm1"), keras.layers.BatchNormalization)
    assert model(np.zeros((2, 28, 28, 1), np.float32)).shape == (2, 10)


def test_conv_evp_replaces_every_kxk_convolution_but_not_shortcuts():
    model = models.build("resnet", (8, 8, 1), 3, conv="evp", **TINY)
    types = layer_types(model)
    assert types["stage1_block1_conv2"] is EVPConv
    assert types["stage2_block1_shortcut_conv"] is keras.layers.Conv2D


def test_evp_model_trains_reloads_and_keeps_float32_logits_under_mixed_precision(tmp_path, mixed_bfloat16):
    model = models.build("evp_resnet", (8, 8, 1), 3, **TINY)
    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype(np.float32)
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    loss = model.train_on_batch(x, np.array([0, 1, 2, 0]))
    assert np.isfinite(loss)
    logits = model(x, training=False)
    assert logits.dtype == "float32" and model.get_layer("stem_conv").compute_dtype == "bfloat16"
    model.save(tmp_path / "evp.keras")
    reloaded = keras.saving.load_model(tmp_path / "evp.keras")
    np.testing.assert_allclose(reloaded(x, training=False).numpy(), logits.numpy(), atol=1e-5)
    assert isinstance(reloaded.get_layer("stage1_block1_conv1").trelu, TReLU)


def test_replace_convs_with_evp_swaps_the_selected_kxk_convolutions_of_any_model():
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="a")(inputs)
    x = keras.layers.Conv2D(4, 1, name="pointwise")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", name="b")(x)
    user = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    swapped = evp.replace_convs_with_evp(user, lambda layer: layer.name == "a")
    assert type(swapped.get_layer("a")) is EVPConv and swapped.get_layer("a").strides == 2
    assert type(swapped.get_layer("pointwise")) is keras.layers.Conv2D
    assert type(swapped.get_layer("b")) is keras.layers.Conv2D  # not selected
    every = evp.replace_convs_with_evp(user, use_trelu=False)
    assert type(every.get_layer("b")) is EVPConv and not every.get_layer("b").use_trelu
    assert every(np.zeros((1, 8, 8, 2), np.float32)).shape == (1, 4)
    tanh = keras.Model(inputs, keras.layers.Conv2D(2, 3, padding="same", activation="tanh", name="t")(inputs))
    with pytest.raises(TfrobustError, match="activation must be 'linear' or 'relu'"):
        evp.replace_convs_with_evp(tanh)
    valid = keras.Model(inputs, keras.layers.Conv2D(2, 3, name="v")(inputs))
    with pytest.raises(TfrobustError, match="'same'-padded"):
        evp.replace_convs_with_evp(valid)


def test_unknown_norm_names_fail_in_one_line():
    with pytest.raises(TfrobustError, match="unknown norm 'layer'; valid choices: batch, group, none"):
        models.build("evp_resnet", (8, 8, 1), 3, norm="layer", **TINY)
