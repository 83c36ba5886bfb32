"""Analyses: error amplification γ, unchanged-prediction ratio, spectral norms, attention maps (JSON + PNG)."""

import json

import keras
import numpy as np
import pytest

from tfrobust import models
from tfrobust.errors import TfrobustError
from tfrobust.evaluation import analyses
from tfrobust.layers import ConvNorm2D
from tfrobust.layers.conv_norm import operator_matrix


def tiny_resnet(**options):
    return models.build("resnet", (8, 8, 1), 3, stage_blocks=[1, 1], stage_widths=[4, 4], **options)


def images(n=4, shape=(8, 8, 1), seed=0):
    return np.random.default_rng(seed).uniform(size=(n, *shape)).astype(np.float32)


def test_error_amplification_is_the_normalised_distance_per_block(tmp_path):
    model = tiny_resnet()
    x = images()
    x_adv = np.clip(x + 0.1 * np.sign(np.random.default_rng(1).normal(size=x.shape)), 0, 1).astype(np.float32)
    result = analyses.error_amplification(model, x, x_adv, batch_size=3)
    assert result["layers"] == ["stage1_block1_out", "stage2_block1_out"] and result["num_images"] == 4
    feature = keras.Model(model.input, model.get_layer("stage2_block1_out").output)
    clean, adv = feature(x).numpy().reshape(4, -1), feature(x_adv).numpy().reshape(4, -1)
    expected = np.linalg.norm(clean - adv, axis=1) / np.linalg.norm(clean, axis=1)
    assert result["gamma"][1] == pytest.approx(expected.mean(), rel=1e-5)
    assert analyses.error_amplification(model, x, x)["gamma"] == [0.0, 0.0]
    json.dumps(result)
    assert analyses.plot_error_amplification({"a": result, "b": result}, str(tmp_path / "g.png")).endswith("g.png")
    assert (tmp_path / "g.png").stat().st_size > 0
    with pytest.raises(TfrobustError, match="pass layers"):
        analyses.error_amplification(models.build("small_cnn", (8, 8, 1), 3, width=0.125), x, x)


def test_unchanged_prediction_ratio_counts_kept_predictions(tmp_path):
    model = tiny_resnet()
    x = images(6)

    class Identity:  # an "attack" that changes nothing keeps every prediction
        def __call__(self, model_fn, x, y):
            return x

        def get_config(self):
            return {"name": "Identity"}

    kept = analyses.unchanged_prediction_ratio(model, x, [0.0, 0.1], attack_factory=lambda eps: Identity())
    assert kept["ratio"] == [1.0, 1.0]
    result = analyses.unchanged_prediction_ratio(model, x, [0.0, 0.3], batch_size=4)
    assert result["ratio"][0] == 1.0 and 0.0 <= result["ratio"][1] <= 1.0
    assert result["attack"]["steps"] == 20 and result["attack"]["step_size"] == pytest.approx(0.075)
    json.dumps(result)
    analyses.plot_unchanged_prediction(result, str(tmp_path / "u.png"))
    assert (tmp_path / "u.png").stat().st_size > 0


def test_conv_spectral_norm_matches_the_dense_circular_operator():
    kernel = np.random.default_rng(0).normal(size=(3, 3, 2, 3))
    dense = operator_matrix(kernel, (4, 5)).reshape(3 * 20, 2 * 20)
    assert analyses.conv_spectral_norm(kernel, (4, 5)) == pytest.approx(np.linalg.norm(dense, 2), rel=1e-6)


def test_spectral_norms_of_convnorm_layers_obey_proposition_3_1(tmp_path):
    inputs = keras.Input((5, 5, 2))
    x = ConvNorm2D(3, 3, affine=False, name="cn")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(x)
    outputs = keras.layers.Dense(2, name="dense")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    result = analyses.spectral_norms(model)
    rows = {row["name"]: row for row in result["layers"]}
    assert list(rows) == ["cn", "conv", "dense"]
    layer = model.get_layer("cn")
    q = operator_matrix(layer.kernel.numpy(), layer.full_size, layer.running_v.numpy())
    dense_q = q.reshape(3 * q.shape[1], -1)
    assert rows["cn"]["normalised_spectral_norm"] == pytest.approx(np.linalg.norm(dense_q, 2), rel=1e-4)
    assert 1 - 1e-4 <= rows["cn"]["normalised_spectral_norm"] <= rows["cn"]["bound"] == pytest.approx(np.sqrt(3))
    assert rows["dense"]["spectral_norm"] == pytest.approx(np.linalg.norm(model.get_layer("dense").kernel.numpy(), 2),
                                                           rel=1e-5)
    json.dumps(result)
    analyses.plot_spectral_norms({"convnorm": result}, str(tmp_path / "s.png"))
    assert (tmp_path / "s.png").stat().st_size > 0


def test_spectral_norms_include_convolutions_inside_evp_convs():
    model = models.build("evp_resnet", (8, 8, 1), 3, stage_blocks=[1], stage_widths=[4])
    names = [row["name"] for row in analyses.spectral_norms(model)["layers"]]
    assert names[0] == "stem_conv/conv" and "stage1_block1_conv1/conv" in names and names[-1] == "logits"


def test_attention_maps_are_distributions_and_plot(tmp_path):
    model = models.build("attention_resnet", (16, 16, 1), 3, stage_widths=[4, 4, 8, 8])
    x = images(2, (16, 16, 1))
    result = analyses.attention_maps(model, x)
    assert result["layers"] == ["attention3", "attention4"]
    maps = {name: np.asarray(m) for name, m in result["maps"].items()}
    assert maps["attention3"].shape == (2, 8, 8) and maps["attention4"].shape == (2, 4, 4)
    for m in maps.values():
        assert np.all(m >= 0)
        np.testing.assert_allclose(m.sum(axis=(1, 2)), 1.0, atol=1e-5)
    json.dumps(result)
    analyses.plot_attention_maps(x, result, str(tmp_path / "a.png"))
    assert (tmp_path / "a.png").stat().st_size > 0
    with pytest.raises(TfrobustError, match="no AttentionPooling layer"):
        analyses.attention_maps(tiny_resnet(), x)
