"""Coupled (PyTorch-style L2) weight decay: SGD and Adam steps equal PyTorch's update formulas."""

import keras
import numpy as np
import pytest

from tfrobust.errors import TfrobustError
from tfrobust.training import make_optimizer
from tfrobust.training.coupled_decay import AdamWithL2, SGDWithL2

LR, MOMENTUM, L2 = 0.1, 0.9, 5e-2
W0 = np.array([[1.0, -2.0], [0.5, 3.0]], np.float32)
GRADS = [np.array([[0.2, -0.1], [0.0, 0.4]], np.float32), np.array([[-0.3, 0.1], [0.2, 0.0]], np.float32)]


def _run(optimizer):
    variable = keras.Variable(W0.copy())
    for grad in GRADS:
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(grad), variable)])
    return keras.ops.convert_to_numpy(variable)


def test_coupled_sgd_matches_pytorch_sgd_with_weight_decay():
    # torch.optim.SGD(lr, momentum, weight_decay): d = g + λw; buf = d (step 1) / μ·buf + d; w -= lr·buf.
    w, buf = W0.astype(np.float64), None
    for grad in GRADS:
        d = grad + L2 * w
        buf = d if buf is None else MOMENTUM * buf + d
        w = w - LR * buf
    got = _run(make_optimizer("sgd", LR, momentum=MOMENTUM, weight_decay=L2, weight_decay_mode="coupled"))
    np.testing.assert_allclose(got, w, rtol=1e-6)
    # Decoupled decay of the same λ is a different (weaker-through-momentum) update.
    decoupled = _run(make_optimizer("sgd", LR, momentum=MOMENTUM, weight_decay=L2))
    assert np.abs(decoupled - w).max() > 1e-3


def test_coupled_adam_matches_pytorch_adam_with_weight_decay():
    # Keras adds ε to √v̂·√(1 − β₂ᵗ) rather than to √v̂; a negligible ε makes both formulas one.
    beta1, beta2, eps = 0.9, 0.999, 1e-12
    w, m, v = W0.astype(np.float64), 0.0, 0.0
    for t, grad in enumerate(GRADS, start=1):
        d = grad + L2 * w
        m = beta1 * m + (1 - beta1) * d
        v = beta2 * v + (1 - beta2) * d * d
        w = w - LR * (m / (1 - beta1 ** t)) / (np.sqrt(v / (1 - beta2 ** t)) + eps)
    got = _run(AdamWithL2(LR, l2=L2, epsilon=eps))
    np.testing.assert_allclose(got, w, rtol=1e-5)  # float32 steps
    decoupled = _run(keras.optimizers.Adam(LR, weight_decay=L2, epsilon=eps))
    assert np.abs(decoupled - w).max() > 1e-3


def test_coupled_optimizers_serialise_and_validate():
    optimizer = make_optimizer("sgd", LR, momentum=MOMENTUM, weight_decay=L2, weight_decay_mode="coupled",
                               ema=0.99)
    assert isinstance(optimizer, SGDWithL2) and optimizer.use_ema and optimizer.ema_momentum == 0.99
    copy = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(copy, SGDWithL2) and copy.l2 == L2
    assert isinstance(make_optimizer("adam", LR, weight_decay=L2, weight_decay_mode="coupled"), AdamWithL2)
    with pytest.raises(TfrobustError, match="adamw decays decoupled by definition"):
        make_optimizer("adamw", LR, weight_decay=L2, weight_decay_mode="coupled")
    with pytest.raises(TfrobustError, match="unknown weight_decay_mode 'l2'"):
        make_optimizer("sgd", LR, weight_decay=L2, weight_decay_mode="l2")
    with pytest.raises(TfrobustError, match="ema must be in"):
        make_optimizer("sgd", LR, ema=1.0)
