"""SteadyStateWarmup: TisODE's steady-state loss is off for the warm-up epochs, then on."""

import keras
import numpy as np
import pytest

from tfrobust.errors import TfrobustError
from tfrobust.layers.ode_block import ConvDynamics, ODEBlock
from tfrobust.training.steady_state_warmup import SteadyStateWarmup


def _ode_net(weight):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 2))
    block = ODEBlock(ConvDynamics(name="dynamics"), solver="euler", steps=2, steady_state_weight=weight,
                     steady_state_norm="mean", steady_state_interval=(0.5, 1.5), name="ode")
    h = keras.layers.GlobalAveragePooling2D()(block(inputs))
    return keras.Model(inputs, keras.layers.Dense(3)(h))


def test_the_steady_state_term_joins_the_loss_after_the_warmup_epochs():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 6, 6, 2)).astype("float32"), rng.integers(0, 3, 16)
    net = _ode_net(weight=10.0)
    net.compile(optimizer=keras.optimizers.SGD(0.0), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                jit_compile=False)
    history = net.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[SteadyStateWarmup(1)]).history["loss"]
    ce = float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, net(x, training=False)))
    assert history[0] == pytest.approx(ce, rel=1e-5)
    assert history[1] > ce + 1e-3  # frozen weights: the difference is the steady-state term
    assert net.get_layer("ode").steady_state_weight == 10.0  # restored for saving and export
    with pytest.raises(TfrobustError, match="needs a model with an ODE block"):
        plain = _ode_net(weight=0.0)
        plain.compile(optimizer="sgd", loss="mse")
        plain.fit(x, np.zeros((16, 3)), epochs=1, verbose=0, callbacks=[SteadyStateWarmup(1)])
    with pytest.raises(TfrobustError, match=r"warm-up epochs must be in \[0, inf\)"):
        SteadyStateWarmup(-1)
