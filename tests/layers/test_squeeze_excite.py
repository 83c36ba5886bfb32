"""SqueezeExcite: shared layer checks and the gate equation."""

import numpy as np
import pytest

from tests.layer_checks import check_layer
from tfrobust.errors import TfrobustError
from tfrobust.layers import SqueezeExcite


def test_squeeze_excite_passes_the_shared_layer_checks(tmp_path):
    check_layer(lambda: SqueezeExcite(reduction=2), (4, 4, 6), expected_output_shape=(4, 4, 6), tmp_path=tmp_path)


def test_squeeze_excite_scales_channels_by_the_sigmoid_gate_of_the_pooled_input():
    x = np.random.default_rng(0).normal(size=(2, 3, 3, 8)).astype(np.float32)
    layer = SqueezeExcite(reduction=4)
    y = layer(x).numpy()
    w1, b1, w2, b2 = layer.get_weights()
    assert w1.shape == (8, 2)
    pooled = x.mean(axis=(1, 2))
    gate = 1 / (1 + np.exp(-(np.maximum(pooled @ w1 + b1, 0) @ w2 + b2)))
    np.testing.assert_allclose(y, x * gate[:, None, None, :], atol=1e-5)


def test_bottleneck_has_at_least_one_unit_and_reduction_is_validated():
    layer = SqueezeExcite(reduction=16)
    layer.build((None, 2, 2, 4))
    assert layer.squeeze_kernel.shape == (4, 1)
    with pytest.raises(TfrobustError, match="reduction must be a positive integer"):
        SqueezeExcite(reduction=0)
