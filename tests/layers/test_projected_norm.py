"""ProjectedNormalization (EVPNet eq. 14, fig. 2c): shared layer checks, unit ℓp norm, the second-order form."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tests.layer_checks import check_layer
from tfrobust.errors import TfrobustError
from tfrobust.layers import ProjectedNormalization


@pytest.mark.parametrize("units", [None, 5])
def test_pnl_passes_the_shared_layer_checks(tmp_path, units):
    check_layer(lambda: ProjectedNormalization(units), (4, 4, 3), expected_output_shape=(units or 3,),
                tmp_path=tmp_path)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.5, math.inf])
def test_pnl_output_has_unit_lp_norm(p):
    x = np.random.default_rng(0).normal(size=(3, 4, 4, 6)).astype(np.float32)
    v = ProjectedNormalization(8, p=p)(x).numpy()
    np.testing.assert_allclose(np.linalg.norm(v, ord=p, axis=1), 1.0, rtol=1e-5)
    assert np.all(v >= 0)


def test_pnl_equals_the_second_order_pooling_of_equation_14():
    x = np.random.default_rng(1).normal(size=(2, 3, 3, 4)).astype(np.float64)
    layer = ProjectedNormalization(5)
    v = layer(x.astype(np.float32)).numpy()
    w = layer.kernel.numpy().astype(np.float64)  # c × p
    pixels = x.reshape(2, -1, 4)
    a = np.einsum("bic,bid->bcd", pixels, pixels)  # A = Σ_i x_i x_iᵀ
    raw = np.sqrt(np.einsum("cj,bcd,dj->bj", w, a, w))  # v_j = sqrt(w_jᵀ A w_j)
    np.testing.assert_allclose(v, raw / np.linalg.norm(raw, axis=1, keepdims=True), rtol=1e-4)


def test_pnl_is_invariant_to_contrast_and_has_finite_gradients_on_zero_channels():
    x = np.random.default_rng(2).uniform(size=(1, 4, 4, 3)).astype(np.float32)
    layer = ProjectedNormalization()
    np.testing.assert_allclose(layer(3.0 * x).numpy(), layer(x).numpy(), rtol=1e-5)
    x[..., 1] = 0.0
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)[:, 0]
    assert np.all(np.isfinite(tape.gradient(y, x).numpy()))


@pytest.mark.parametrize("kwargs,match", [(dict(p=0), r"p must be in \(0.0, inf\), got 0"), (dict(p=-1.0), "p must be"),
                                          (dict(units=0), "units must be a positive integer, got 0")])
def test_invalid_pnl_configurations_fail_in_one_line(kwargs, match):
    with pytest.raises(TfrobustError, match=match):
        ProjectedNormalization(**kwargs)
