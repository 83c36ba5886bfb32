"""DnCNN through the model registry: gray/RGB variants, any image size, residual form, errors."""

import keras
import numpy as np
import pytest

from tfrobust import models
from tfrobust.errors import TfrobustError


def test_variants_depth_and_fully_convolutional_shapes():
    gray = models.build("dncnn_b", (None, None, 1), None, depth=5, width=8)
    color = models.build("dncnn_c", (None, None, 3), 3, depth=4, width=8)
    assert len([layer for layer in gray.layers if isinstance(layer, keras.layers.Conv2D)]) == 5
    assert len([layer for layer in gray.layers if isinstance(layer, keras.layers.BatchNormalization)]) == 3
    for net, channels in ((gray, 1), (color, 3)):
        for shape in ((2, 13, 17), (1, 32, 8)):
            x = np.random.default_rng(0).uniform(size=shape + (channels,)).astype(np.float32)
            out = net(x, training=False).numpy()
            assert out.shape == x.shape and out.dtype == np.float32
            # The noise head starts at zero: the untrained denoiser is the identity.
            np.testing.assert_allclose(out, x, atol=1e-6)
    assert models.options("dncnn_b") == {"depth": 20, "width": 64, "batch_norm": True}
    assert models.names("denoise") == ["dncnn", "dncnn_b", "dncnn_c"] and "dncnn" not in models.names()


def test_output_is_the_clipped_residual():
    net = models.build("dncnn", (8, 8, 1), None, depth=3, width=4, batch_norm=False)
    last = net.get_layer("conv3")
    kernel, bias = last.get_weights()
    last.set_weights([kernel, np.full_like(bias, 0.3)])  # the network "sees" noise 0.3 everywhere
    x = np.random.default_rng(1).uniform(size=(1, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(net(x).numpy(), np.clip(x - 0.3, 0, 1), atol=1e-6)


@pytest.mark.parametrize("name, shape, num_classes, message", [
    ("dncnn_b", (None, None, 3), None, "input_shape must end in 1"),
    ("dncnn_c", (None, None, 1), None, "input_shape must end in 3"),
    ("dncnn", (None, None, 2), None, "1 or 3"),
    ("dncnn", (8, 8, 1), 10, "num_classes must be None or 1"),
])
def test_bad_shapes_raise_one_line(name, shape, num_classes, message):
    with pytest.raises(TfrobustError, match=message):
        models.build(name, shape, num_classes, depth=3, width=4)
