"""FDn (Xie et al. 2019 non-local denoising): layer contract, the dot-product and softmax operations
against a direct computation, identity at initialisation, bad input."""

import numpy as np
import pytest
import tensorflow as tf

from tests.layer_checks import check_layer
from tfrobust.errors import TfrobustError
from tfrobust.layers.non_local import NonLocalDenoising


@pytest.mark.parametrize("kwargs", [{"mode": "dot", "norm": "group"}, {"mode": "softmax", "norm": "batch"}],
                         ids=["dot-group", "softmax-batch"])
def test_non_local_layer_contract(kwargs, tmp_path):
    check_layer(lambda: NonLocalDenoising(**kwargs), (4, 4, 6), expected_output_shape=(4, 4, 6), tmp_path=tmp_path)


def _direct(x, theta, phi, mode):
    """NL(x)_i = 1/C(x) Σ_j f(θ_i, φ_j) x_j over the H·W positions, for one example at a time."""
    n, h, w, c = x.shape
    out = np.zeros_like(x)
    for b in range(n):
        values = x[b].reshape(h * w, c)
        t, p = theta[b].reshape(h * w, -1), phi[b].reshape(h * w, -1)
        scores = t @ p.T
        if mode == "dot":
            weights = scores / (h * w)
        else:
            scores = scores / np.sqrt(t.shape[1])
            weights = np.exp(scores - scores.max(axis=1, keepdims=True))
            weights /= weights.sum(axis=1, keepdims=True)
        out[b] = (weights @ values).reshape(h, w, c)
    return out


@pytest.mark.parametrize("mode", ["dot", "softmax"])
@pytest.mark.parametrize("shape", [(3, 3, 16), (4, 5, 2)])  # C > H·W and C < H·W take different einsum orders
def test_non_local_operation_matches_the_definition(mode, shape):
    x = tf.random.stateless_normal([2, *shape], [0, 0])
    layer = NonLocalDenoising(mode=mode, norm="none")
    layer(x)
    assert np.allclose(layer(x), x)  # zero-initialised output convolution: the identity at first
    kernel = tf.random.stateless_normal(layer.conv.kernel.shape, [1, 1])
    layer.conv.kernel.assign(kernel)
    theta, phi = layer.theta(x).numpy(), layer.phi(x).numpy()
    non_local = _direct(x.numpy(), theta, phi, mode)
    expected = x.numpy() + np.einsum("nhwc,cd->nhwd", non_local, kernel.numpy()[0, 0]) + layer.conv.bias.numpy()
    np.testing.assert_allclose(layer(x), expected, rtol=1e-4, atol=1e-4)


def test_bad_arguments_fail_at_construction():
    for kwargs, message in [({"mode": "gaussian"}, "mode"), ({"norm": "layer"}, "norm"), ({"embed": 1}, "embed")]:
        with pytest.raises(TfrobustError, match=message):
            NonLocalDenoising(**kwargs)
