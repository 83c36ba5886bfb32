"""attention_resnet: ResNet [16, 16, 32, 64] with two-layer attention pooling (Liu & JaJa §4.2)."""

import numpy as np
import pytest

from tfrobust import models
from tfrobust.errors import TfrobustError
from tfrobust.layers import AttentionPooling


def test_attention_resnet_concatenates_two_attention_features_into_the_pool_layer():
    model = models.build("attention_resnet", (32, 32, 3), 10)
    assert model.get_layer("pool").output.shape == (None, 32 + 64)
    assert isinstance(model.get_layer("attention3"), AttentionPooling)
    assert model.get_layer("attention3").input[0].shape == (None, 16, 16, 32)
    assert model.get_layer("attention4").input[0].shape == (None, 8, 8, 64)
    assert model.get_layer("global_feature").output.shape == (None, 2 * 2 * 64)
    assert model(np.zeros((2, 32, 32, 3), np.float32)).shape == (2, 10)


def test_one_attention_stage_and_bad_stages():
    model = models.build("attention_resnet", (16, 16, 1), 3, attention_stages=[4], stage_widths=[4, 4, 8, 8])
    assert model.get_layer("pool").output.shape == (None, 8)
    with pytest.raises(TfrobustError, match="attention_stages must be distinct stages in 1..4"):
        models.build("attention_resnet", (16, 16, 1), 3, attention_stages=[5])


def test_pool_layer_is_the_g_of_at_id_implicit_denoising():
    """The training issue's AT-id names G(x) by layer: ``feature_layer="pool"`` (the attention descriptor)."""
    import keras

    from tfrobust.training.adversarial import AdversarialModel

    net = models.build("attention_resnet", (8, 8, 1), 3, stage_widths=[2, 2, 4, 4])
    trainer = AdversarialModel(net, "at_id", eps=0.1, steps=1, lam=1.0, feature_layer="pool",
                               test_adversarial=False)
    trainer.compile(optimizer=keras.optimizers.SGD(0.01), run_eagerly=True)
    x = np.random.default_rng(0).uniform(size=(2, 8, 8, 1)).astype(np.float32)
    logs = trainer.train_on_batch(x, np.array([0, 1]), return_dict=True)
    assert np.isfinite(logs["loss"]) and logs["denoise"] > 0  # ‖G(x) − G(x′)‖ of the "pool" features
    with pytest.raises(TfrobustError, match="has no layer 'attention_pool'"):
        AdversarialModel(net, "at_id", eps=0.1, feature_layer="attention_pool").compile(optimizer="sgd")
