"""TReLU (EVPNet eq. 11): shared layer checks, the equation and its gradient."""

import numpy as np
import pytest
import tensorflow as tf

from tests.layer_checks import check_layer
from tfrobust.errors import TfrobustError
from tfrobust.layers import TReLU


@pytest.mark.parametrize("mode", ["block", "channel"])
def test_trelu_passes_the_shared_layer_checks(tmp_path, mode):
    check_layer(lambda: TReLU(mode), (4, 4, 3), expected_output_shape=(4, 4, 3), tmp_path=tmp_path)


def test_threshold_is_one_scalar_per_block_or_one_per_channel_initialised_in_unit_interval():
    block, channel = TReLU(), TReLU("channel")
    block.build((None, 4, 4, 5))
    channel.build((None, 4, 4, 5))
    assert tuple(block.threshold.shape) == () and tuple(channel.threshold.shape) == (5,)
    values = channel.threshold.numpy()
    assert np.all((values >= 0) & (values <= 1)) and len(set(values.tolist())) == 5


@pytest.mark.parametrize("theta", [0.3, 0.0, -0.2])
def test_trelu_matches_equation_11_and_its_gradient(theta):
    x = tf.constant(np.linspace(-1.05, 1.05, 43, dtype=np.float32).reshape(1, 43))
    layer = TReLU()
    layer.build(x.shape)
    layer.threshold.assign(theta)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = layer(x)
    xs = x.numpy()
    expected = np.where(np.abs(xs) >= theta, np.abs(xs) - theta, 0.0)  # eq. 11, literally
    np.testing.assert_allclose(y.numpy(), expected, atol=1e-6)
    active = np.abs(xs) > theta
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), np.where(active, np.sign(xs), 0.0), atol=1e-6)
    assert tape.gradient(y, layer.threshold).numpy() == pytest.approx(-active.sum())


def test_channel_thresholds_apply_per_channel():
    layer = TReLU("channel")
    layer.build((None, 1, 1, 2))
    layer.threshold.assign([0.5, 0.1])
    y = layer(np.array([[[[0.4, 0.4]]]], np.float32)).numpy()
    np.testing.assert_allclose(y.ravel(), [0.0, 0.3], atol=1e-6)


def test_unknown_mode_is_rejected_in_one_line():
    with pytest.raises(TfrobustError, match="unknown mode 'pixel'; valid choices: block, channel"):
        TReLU("pixel")
