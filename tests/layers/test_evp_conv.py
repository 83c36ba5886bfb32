"""EVPConv (EVPNet eq. 13, 15): shared layer checks, the composed equation and drop-in shapes."""

import numpy as np
import pytest

from tests.layer_checks import check_layer
from tfrobust.errors import TfrobustError
from tfrobust.layers import EVPConv


@pytest.mark.parametrize("strides,use_trelu", [(1, True), (2, False)])
def test_evp_conv_passes_the_shared_layer_checks(tmp_path, strides, use_trelu):
    check_layer(lambda: EVPConv(4, 3, strides=strides, use_trelu=use_trelu, se_reduction=2), (6, 6, 2),
                expected_output_shape=(6 // strides, 6 // strides, 4), tmp_path=tmp_path)


@pytest.mark.parametrize("use_trelu", [True, False])
def test_evp_conv_is_max_of_the_se_calibrated_trelu_pdog_halves(use_trelu):
    x = np.random.default_rng(0).uniform(size=(2, 5, 5, 3)).astype(np.float32)
    layer = EVPConv(4, 3, use_trelu=use_trelu, se_reduction=2)
    o = layer(x).numpy()
    f0 = layer.conv(x)
    d0, d1 = (d.numpy() for d in layer.pdog(f0))
    if use_trelu:
        theta = float(layer.trelu.threshold.numpy())
        z0, z1 = np.maximum(np.abs(d0) - theta, 0), np.maximum(np.abs(d1) - theta, 0)  # eq. 13
    else:
        z0, z1 = np.abs(d0), np.abs(d1)  # eq. 12
    s = layer.squeeze_excite(np.concatenate([z0, z1], axis=-1)).numpy()
    np.testing.assert_allclose(o, np.maximum(s[..., :4], s[..., 4:]), atol=1e-5)  # eq. 15
    assert np.all(o >= 0)


def test_evp_conv_is_a_drop_in_for_a_same_padded_convolution():
    import keras
    for strides in (1, 2, 3):
        layer = EVPConv(5, 3, strides=strides)
        conv = keras.layers.Conv2D(5, 3, strides=strides, padding="same")
        assert layer(np.zeros((1, 7, 9, 2), np.float32)).shape == conv(np.zeros((1, 7, 9, 2), np.float32)).shape


@pytest.mark.parametrize("kwargs,match", [(dict(filters=4, kernel_size=1), r"kernel_size must be in \[2, inf\), got 1"),
                                          (dict(filters=0), "filters must be a positive integer"),
                                          (dict(filters=4, strides=0), "strides must be a positive integer"),
                                          (dict(filters=4, trelu_mode="x"), "unknown mode 'x'")])
def test_invalid_evp_conv_configurations_fail_in_one_line(kwargs, match):
    with pytest.raises(TfrobustError, match=match):
        EVPConv(**kwargs)
