"""CIFS as the reference trains it: detached mask path in training steps, full path in evaluation, and
crafting on ℓβ through the probed view."""

import keras
import numpy as np
import pytest

from tfrobust.core.auxiliary_loss import AuxiliaryLoss
from tfrobust.errors import TfrobustError
from tfrobust.layers.cifs import CIFS
from tfrobust.training import AdversarialModel
from tfrobust.training.cifs_recipe import CIFSMaskPaths, cifs_training_model


def _cifs_net():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 1))
    h = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    masked, _ = CIFS(2, name="cifs")(h)
    h = keras.layers.GlobalAveragePooling2D()(masked)
    return keras.Model(inputs, keras.layers.Dense(2, dtype="float32")(h))


def test_training_steps_trace_the_detached_path_and_evaluation_the_full_one(monkeypatch):
    seen = []
    original = CIFS.call

    def spy(self, inputs, training=None, labels=None):
        seen.append(("train" if training else "inference", self.mask_path))
        return original(self, inputs, training=training, labels=labels)

    monkeypatch.setattr(CIFS, "call", spy)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(size=(16, 6, 6, 1)).astype("float32"), rng.integers(0, 2, 16)
    net = _cifs_net()
    seen.clear()
    adv = AdversarialModel(net, "pgd_at", eps=0.1, steps=1)
    adv.compile(optimizer=keras.optimizers.SGD(0.01))
    marks = []

    class Mark(keras.callbacks.Callback):
        def on_test_begin(self, logs=None):
            marks.append(len(seen))

    adv.fit(x, y, batch_size=16, epochs=1, verbose=0, validation_data=(x, y),
            callbacks=[CIFSMaskPaths(), Mark()])
    training, evaluation = seen[:marks[0]], seen[marks[0]:]
    assert training and {path for _, path in training} == {"detached"}
    assert ("train", "detached") in training  # the update's pass too
    assert evaluation and {path for _, path in evaluation} == {"full"}
    assert net.get_layer("cifs").mask_path == "full"  # left on the evaluation path for export


def test_cifs_beta_crafts_on_the_probed_view():
    net = _cifs_net()
    model, loss = cifs_training_model(net, "cifs_beta")
    assert isinstance(loss, AuxiliaryLoss) and sorted(model.output) == ["cifs", "logits"]
    assert model.get_layer("cifs") is net.get_layer("cifs")  # same weights: export net
    assert cifs_training_model(net, "ce") == (net, "ce")
    plain = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    with pytest.raises(TfrobustError, match="needs a model with CIFS layers"):
        cifs_training_model(plain, "cifs_beta")
    with pytest.raises(TfrobustError, match="unknown train mask path 'none'"):
        CIFSMaskPaths(train="none")
