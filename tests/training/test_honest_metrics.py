"""Honest metrics of AdversarialModel: evaluation crafts against the true label whatever the method's
label_mode, and clean_accuracy follows one rule (inference mode, before the update) for every method."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrobust.training import AdversarialModel
from tests.separable_images import separable_images


def _data(n=64, seed=1):
    return separable_images(n, seed, spread=0.5, gap=0.4)


def _net(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3)(inputs)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.ReLU()(keras.layers.Flatten()(h))
    return keras.Model(inputs, keras.layers.Dense(2, dtype="float32")(h))


def test_evaluation_crafts_against_the_true_label_even_with_predicted_label_mode():
    x, y = _data()
    net = _net()
    accuracies = {}
    for mode in ("true", "predicted"):
        adv = AdversarialModel(net, "pgd_at", eps=0.2, steps=5, label_mode=mode)
        adv.compile(optimizer="sgd")
        accuracies[mode] = adv.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    clean = float(np.mean(np.argmax(net.predict(x, verbose=0), -1) == y))
    assert 0.1 < clean < 0.9  # misclassified points exist: the case where predicted labels flatter
    assert accuracies["predicted"]["adv_accuracy"] == pytest.approx(accuracies["true"]["adv_accuracy"])
    assert accuracies["predicted"]["clean_accuracy"] == pytest.approx(clean)


@pytest.mark.parametrize("method,params", [("pgd_at", {"steps": 2}), ("trades", {"steps": 2})])
def test_clean_accuracy_is_inference_mode_before_the_update_for_every_method(method, params):
    x, y = _data()
    net = _net()
    before = float(np.mean(np.argmax(net(x, training=False).numpy(), -1) == y))
    adv = AdversarialModel(net, method, eps=0.2, **params)
    adv.compile(optimizer=keras.optimizers.SGD(2.0))
    history = adv.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(64), epochs=1, verbose=0,
                      shuffle=False)
    after = float(np.mean(np.argmax(net(x, training=False).numpy(), -1) == y))
    assert after != before  # the update changed the answer, so "before" is tested
    assert history.history["clean_accuracy"][0] == pytest.approx(before)
