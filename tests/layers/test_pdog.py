"""PDoG (EVPNet eq. 6–7): shared layer checks and the equation against independent depthwise convolutions."""

import numpy as np
import pytest
import tensorflow as tf

from tests.layer_checks import check_layer
from tfrobust.errors import TfrobustError
from tfrobust.layers import PDoG


def test_pdog_passes_the_shared_layer_checks(tmp_path):
    facts = check_layer(lambda: PDoG(kernel_size=3), (6, 6, 3),
                        expected_output_shape=[(6, 6, 3), (6, 6, 3)], tmp_path=tmp_path)
    assert facts["tflite_error"] < 1e-4


@pytest.mark.parametrize("kernel_size", [2, 3, 5])
def test_pdog_equals_two_depthwise_convolutions_with_one_shared_kernel(kernel_size):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 7, 7, 3)).astype(np.float32)
    layer = PDoG(kernel_size=kernel_size)
    d0, d1 = layer(x)
    w = layer.get_weights()[0]
    assert w.shape == (kernel_size, kernel_size, 3, 1) and len(layer.trainable_weights) == 1

    def depthwise(f):  # an independent implementation: per-channel tf.nn.conv2d, SAME padding
        return tf.concat([tf.nn.conv2d(f[..., c:c + 1], w[:, :, c:c + 1, :], 1, "SAME")
                          for c in range(f.shape[-1])], axis=-1).numpy()

    f1 = depthwise(x)
    f2 = depthwise(f1)
    np.testing.assert_allclose(d0.numpy(), f1 - x, atol=1e-5)
    np.testing.assert_allclose(d1.numpy(), f2 - f1, atol=1e-5)


@pytest.mark.parametrize("kernel_size", [1, 0, 2.5, True])
def test_pdog_rejects_kernel_sizes_below_two(kernel_size):
    with pytest.raises(TfrobustError, match=r"kernel_size must be (in \[2, inf\)|an integer), got"):
        PDoG(kernel_size=kernel_size)
