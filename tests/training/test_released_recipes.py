"""Training recipes as their reference code released them: FAT's uniform start and per-step noise, AWP's
γ per base and warm-up, Free-AT without carrying δ, and crafting with BatchNorm in train mode."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrobust.errors import TfrobustError
from tfrobust.training import AdversarialModel, make_method, methods
from tests.separable_images import separable_images

EPS = 0.1


def _data(n=64, seed=0):
    return separable_images(n, seed)


def _net(seed=0, layer=None):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Flatten()(inputs)
    if layer is not None:
        h = layer(h)
    h = keras.layers.Dense(16, activation="relu")(h)
    return keras.Model(inputs, keras.layers.Dense(2, dtype="float32")(h))


class _Constant(keras.layers.Layer):
    """Multiplies the input by 0: the model's output (and its input gradient) ignores the image."""

    def call(self, inputs):
        return inputs * 0.0


def test_fat_defaults_are_the_released_ones_and_each_step_adds_omega_noise():
    options = methods.options("fat")
    assert options["random_start"] == "uniform" and options["omega"] == 0.001
    # A model blind to its input: sign(∇) = 0, so the k steps move x̃ by the noise alone.
    adv = AdversarialModel(_net(layer=_Constant()), "fat", eps=1.0, steps=4, omega=0.01, random_start="none")
    x = tf.fill([256, 8, 8, 1], 0.5)
    labels = tf.argmax(adv.model(x), -1)  # correctly "classified": every example keeps running
    moved = adv.method.craft(adv, x, labels, tf.constant([1, 2], tf.int64)).numpy() - 0.5
    assert moved.std() == pytest.approx(0.01 * np.sqrt(4), rel=0.05)  # √k · ω
    still = make_method("fat", eps=1.0, steps=4, omega=0.0, random_start="none")
    adv.method = still
    np.testing.assert_array_equal(still.craft(adv, x, labels, tf.constant([1, 2], tf.int64)).numpy(), x.numpy())
    with pytest.raises(TfrobustError, match="omega must be in"):
        make_method("fat", eps=EPS, omega=-1.0)


def test_awp_gamma_defaults_follow_the_base_method():
    assert make_method("awp", eps=EPS).gamma == 1e-2
    assert make_method("awp", eps=EPS, base="trades").gamma == 5e-3
    assert make_method("awp", eps=EPS, base="trades", gamma=0.02).gamma == 0.02
    with pytest.raises(TfrobustError, match=r"warmup must be in \[0, inf\)"):
        make_method("awp", eps=EPS, warmup=-1)


def test_awp_warmup_trains_the_base_method_until_the_warmup_epoch():
    x, y = _data()
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
    results = {}
    for name, params in {"base": {"gamma": 0.0}, "warm": {"gamma": 0.5, "warmup": 1}}.items():
        net = _net()
        adv = AdversarialModel(net, "awp", eps=EPS, steps=2, **params)
        adv.compile(optimizer=keras.optimizers.SGD(0.1))
        results[name] = adv.fit(data, epochs=2, verbose=0, shuffle=False).history["loss"]
    # Epoch 1 of the warm-up run is the base method's (same losses); epoch 2 is perturbed like AWP's.
    assert results["warm"][0] == pytest.approx(results["base"][0], rel=1e-6)
    assert results["warm"][1] > results["base"][1] + 0.05


def test_free_at_without_carrying_starts_every_minibatch_at_zero():
    x, y = _data()
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    finals = {}
    for carry in (True, False):
        net = _net()
        adv = AdversarialModel(net, "free", eps=EPS, replays=1, carry_delta=carry)
        adv.compile(optimizer=keras.optimizers.SGD(0.0))  # frozen weights: δ alone differs
        adv.fit(data, epochs=1, verbose=0, shuffle=False)
        finals[carry] = adv.method.delta.numpy()
    # One replay per minibatch: without carrying, δ after batch 2 is one α-step from 0 (|δ| = ε or 0);
    # with carrying it continues from batch 1's δ (some entries are back at 0 after +ε then −ε).
    magnitude = np.abs(finals[False])
    assert np.all(np.isclose(magnitude, 0.0) | np.isclose(magnitude, EPS))
    assert np.count_nonzero(finals[True] != finals[False]) > 0
    with pytest.raises(TfrobustError, match="carry_delta must be True or False"):
        make_method("free", eps=EPS, carry_delta="no")


class _TrainCalls(keras.layers.Layer):
    """Counts its training-mode calls (a BatchNorm-like layer's moving-statistics updates)."""

    def build(self, input_shape):
        self.calls = self.add_weight(shape=(), initializer="zeros", trainable=False, name="calls")

    def call(self, inputs, training=None):
        if training:
            self.calls.assign_add(1.0)
        return inputs


@pytest.mark.parametrize("mode,expected", [("inference", 1), ("train", 1 + 3)])
def test_attack_bn_mode_train_crafts_with_every_pass_in_train_mode(mode, expected):
    x, y = _data(32)
    counter = _TrainCalls()
    adv = AdversarialModel(_net(layer=counter), "pgd_at", eps=EPS, steps=3, attack_bn_mode=mode)
    adv.compile(optimizer=keras.optimizers.SGD(0.1))
    adv.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert float(counter.calls.numpy()) == expected  # the update's pass (+ k crafting passes)
    adv.evaluate(x, y, batch_size=32, verbose=0)
    assert float(counter.calls.numpy()) == expected  # evaluation crafts in inference mode
    with pytest.raises(TfrobustError, match="unknown attack_bn_mode 'eval'"):
        AdversarialModel(_net(), "pgd_at", eps=EPS, attack_bn_mode="eval")
