"""AdversarialModel: Keras fit/evaluate plumbing, metrics, tracing, auxiliary-loss hooks, mixed precision,
BatchNorm handling, saving, and the NaN / checkpoint callbacks."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrobust.attacks.losses import AuxiliaryLoss
from tfrobust.errors import TfrobustError
from tfrobust.training import AdversarialModel, make_callbacks, set_precision
from tfrobust.training.recipe import LastWeights, StopOnNaN
from tests.separable_images import separable_images

EPS = 0.1


def dataset(n=128, batch=64):
    return tf.data.Dataset.from_tensor_slices(separable_images(n)).batch(batch)


def tiny_net(batch_norm=False, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    if batch_norm:
        h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.Identity(name="features")(keras.layers.Flatten()(h))
    return keras.Model(inputs, keras.layers.Dense(2, dtype="float32", name="logits")(h))


class EpochTraces(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.train, self.test = [], []

    def on_epoch_end(self, epoch, logs=None):
        self.train.append(self.model.train_step_traces)
        self.test.append(self.model.test_step_traces)


def test_fit_reports_the_metrics_and_does_not_retrace_across_epochs():
    adv = AdversarialModel(tiny_net(), "trades", eps=EPS, steps=2)
    adv.compile(optimizer=keras.optimizers.SGD(0.1))
    traces = EpochTraces()
    data = dataset(n=100, batch=32)  # a smaller last batch every epoch
    history = adv.fit(data, validation_data=data, epochs=3, verbose=0, shuffle=False, callbacks=[traces])
    assert sorted(history.history) == sorted(
        ["loss", "clean_accuracy", "adv_accuracy", "ce", "kl",
         "val_loss", "val_clean_accuracy", "val_adv_accuracy", "val_ce", "val_kl"])
    assert traces.train == [1, 1, 1] and traces.test == [1, 1, 1]
    results = adv.evaluate(data, verbose=0, return_dict=True)
    assert results["adv_accuracy"] <= results["clean_accuracy"] + 1e-6
    np.testing.assert_allclose(results["loss"], results["ce"] + 6.0 * results["kl"], rtol=1e-5)


def test_call_and_predict_delegate_to_the_wrapped_model():
    net = tiny_net()
    adv = AdversarialModel(net, "pgd_at", eps=EPS)
    x, _ = separable_images(8)
    np.testing.assert_allclose(adv.predict(x, verbose=0), net.predict(x, verbose=0), rtol=1e-6)
    assert adv.trainable_variables and len(adv.trainable_variables) == len(net.trainable_variables)


def test_the_wrapped_model_saves_as_plain_keras_and_the_wrapper_refuses(tmp_path):
    net = tiny_net()
    adv = AdversarialModel(net, "fgsm_rs", eps=EPS)
    adv.compile(optimizer="sgd")
    adv.fit(dataset(), epochs=1, verbose=0, shuffle=False)
    adv.model.save(tmp_path / "m.keras")
    x, _ = separable_images(8)
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), net.predict(x, verbose=0), rtol=1e-6)
    with pytest.raises(TfrobustError, match=r"adv.model.save\(path\)"):
        adv.save(tmp_path / "adv.keras")
    with pytest.raises(TfrobustError, match="takes no loss="):
        adv.compile(optimizer="sgd", loss="mse")


def test_wrapper_arguments_are_checked():
    with pytest.raises(TfrobustError, match="wraps a keras.Model"):
        AdversarialModel(lambda x: x, "standard")
    with pytest.raises(TfrobustError, match="has no layer 'nope'"):
        AdversarialModel(tiny_net(), "at_id", eps=EPS, feature_layer="nope")
    with pytest.raises(TfrobustError, match="needs eps"):
        AdversarialModel(tiny_net(), "pgd_at")


class PenaltyLayer(keras.layers.Layer):
    """Identity that adds 0.5 · mean(x²) with add_loss (a stand-in for TisODE's steady-state term)."""

    def call(self, x):
        self.add_loss(0.5 * keras.ops.mean(keras.ops.square(x)))
        return x


def test_keras_add_loss_terms_are_added_and_reported_as_aux():
    inputs = keras.Input((8, 8, 1))
    h = PenaltyLayer()(keras.layers.Flatten()(inputs))
    net = keras.Model(inputs, keras.layers.Dense(2, name="logits")(h))
    adv = AdversarialModel(net, "trades", eps=EPS, steps=1, beta=1.0)
    adv.compile(optimizer=keras.optimizers.SGD(0.0))
    history = adv.fit(dataset(), epochs=1, verbose=0, shuffle=False)
    logs = {k: v[0] for k, v in history.history.items()}
    # Images have mean square ≈ 0.36 → penalty ≈ 0.18, once per step (mean of the clean and adversarial pass).
    assert 0.1 < logs["aux"] < 0.3
    np.testing.assert_allclose(logs["loss"], logs["ce"] + logs["kl"] + logs["aux"], rtol=1e-5)


def test_models_with_auxiliary_heads_contribute_through_aux_loss_fn_and_attack_loss():
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Flatten()(inputs)
    net = keras.Model(inputs, {"logits": keras.layers.Dense(2, name="logits")(h),
                               "probe": keras.layers.Dense(2, name="probe")(h)})

    def probe_loss(outputs, labels):
        return 2.0 * keras.losses.sparse_categorical_crossentropy(labels, outputs["probe"], from_logits=True)

    adv = AdversarialModel(net, "pgd_at", eps=EPS, steps=2, aux_loss_fn=probe_loss,
                           attack_loss=AuxiliaryLoss({"probe": 0.5}))
    adv.compile(optimizer=keras.optimizers.SGD(0.1))
    first = adv.evaluate(dataset(), verbose=0, return_dict=True)
    history = adv.fit(dataset(), epochs=3, verbose=0, shuffle=False)
    assert "aux" in history.history and history.history["aux"][-1] < first["aux"]  # the probe trains
    np.testing.assert_allclose(history.history["loss"][0], history.history["ce"][0] + history.history["aux"][0],
                               rtol=1e-5)


def test_crafting_runs_in_inference_mode_and_leaves_batchnorm_statistics_alone():
    net = tiny_net(batch_norm=True)
    adv = AdversarialModel(net, "pgd_at", eps=EPS, steps=3)
    x, y = separable_images(32)
    statistics = [v.numpy() for v in net.get_layer("bn").non_trainable_variables]
    adv.method.craft(adv, tf.constant(x), tf.constant(y), tf.constant([0, 1], tf.int64))
    for before, variable in zip(statistics, net.get_layer("bn").non_trainable_variables):
        np.testing.assert_array_equal(before, variable.numpy())
    # One training step moves them once (the adversarial batch, training mode).
    adv.compile(optimizer=keras.optimizers.SGD(0.0))
    adv.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(32), epochs=1, verbose=0, shuffle=False)
    assert not np.allclose(statistics[0], net.get_layer("bn").non_trainable_variables[0].numpy())


@pytest.fixture
def precision():
    yield set_precision
    set_precision("none")


def test_mixed_bfloat16_perturbs_in_float32_and_trains(precision):
    precision("bfloat16")
    net = tiny_net()
    assert net.get_layer("conv").compute_dtype == "bfloat16"
    adv = AdversarialModel(net, "pgd_at", eps=EPS, steps=2)
    x, y = separable_images(32)
    x_adv = adv.method.craft(adv, tf.constant(x), tf.constant(y), tf.constant([0, 1], tf.int64))
    assert x_adv.dtype == tf.float32
    assert float(tf.reduce_max(tf.abs(x_adv - x))) <= EPS + 1e-7  # exact float32 projection
    adv.compile(optimizer=keras.optimizers.SGD(0.1))
    history = adv.fit(dataset(), epochs=2, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"]).all() and history.history["loss"][1] < history.history["loss"][0]
    assert all(w.dtype == "float32" for w in net.weights)


def test_mixed_float16_scales_the_loss(precision):
    precision("float16")
    adv = AdversarialModel(tiny_net(), "free", eps=EPS, replays=2)
    adv.compile(optimizer=keras.optimizers.SGD(0.1))
    assert isinstance(adv.optimizer, keras.optimizers.LossScaleOptimizer)
    assert adv.gradient_scale == 1024.0
    history = adv.fit(dataset(), epochs=2, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"]).all()
    assert int(adv.optimizer.iterations.numpy()) == 2 * 2 * 2


def test_a_nan_loss_stops_training_naming_epoch_and_batch_and_keeps_the_last_good_checkpoint(tmp_path):
    net = tiny_net()
    adv = AdversarialModel(net, "fgsm_rs", eps=EPS)
    adv.compile(optimizer=keras.optimizers.SGD(0.1))
    callbacks = make_callbacks(str(tmp_path / "run"))

    class Poison(keras.callbacks.Callback):
        """Keeps the weights after each epoch; makes them NaN when epoch 3 begins."""

        def on_epoch_end(self, epoch, logs=None):
            if np.isfinite(logs["loss"]):
                self.good = [w.numpy() for w in net.weights]

        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                net.get_layer("logits").kernel.assign(np.full((144, 2), np.nan, "float32"))

    poison = Poison()
    adv.fit(dataset(), epochs=4, verbose=0, shuffle=False, callbacks=[poison] + callbacks)
    stop = next(c for c in callbacks if isinstance(c, StopOnNaN))
    assert stop.message.startswith("the loss became nan in epoch 3, batch 1;"), stop.message
    saved = tiny_net(seed=1)  # a plain model: the checkpoint holds the wrapped model's weights
    saved.load_weights(tmp_path / "run" / "checkpoints" / "last.weights.h5")
    for good, weight in zip(poison.good, saved.weights):
        np.testing.assert_array_equal(good, weight.numpy())
    assert (tmp_path / "run" / "backup").exists()  # kept for a rerun from the last good epoch
    assert len((tmp_path / "run" / "history.csv").read_text().strip().splitlines()) == 1 + 3


def test_an_interrupted_adversarial_run_resumes_from_its_last_completed_epoch(tmp_path):
    """BackupAndRestore restores the wrapper (weights and optimizer) and the epoch counter."""

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.weights = [w.numpy() for w in self.model.model.weights]
            if epoch == 1:
                raise KeyboardInterrupt("simulated kill after epoch 2")

    def run(seed, extra):
        adv = AdversarialModel(tiny_net(seed=seed), "pgd_at", eps=EPS, steps=2)
        adv.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
        return adv, adv.fit(dataset(), epochs=4, verbose=0, shuffle=False,
                            callbacks=make_callbacks(str(tmp_path / "run")) + extra)

    interrupt = Interrupt()
    with pytest.raises(KeyboardInterrupt):
        run(0, [interrupt])

    class Check(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                self.weights = [w.numpy() for w in self.model.model.weights]

    check = Check()
    adv, history = run(1, [check])  # different initial weights: they must be replaced by the backup
    assert history.epoch == [2, 3]
    for saved, restored in zip(interrupt.weights, check.weights):
        np.testing.assert_array_equal(saved, restored)
    assert int(adv.optimizer.iterations.numpy()) == 4 * 2
    assert not (tmp_path / "run" / "backup").exists()


def test_last_weights_writes_atomically_and_checks_the_suffix(tmp_path):
    with pytest.raises(TfrobustError, match="must end in .weights.h5"):
        LastWeights(str(tmp_path / "w.h5"))
    net = tiny_net()
    callback = LastWeights(str(tmp_path / "c" / "last.weights.h5"))
    callback.set_model(AdversarialModel(net, "standard"))
    callback.on_epoch_end(0, {"loss": 1.0})
    assert os.listdir(tmp_path / "c") == ["last.weights.h5"]


def test_evaluation_without_adversaries_logs_only_what_it_measured():
    # MART's own components are bce and kl; a clean-only evaluation records ce and must neither fail on
    # the missing tracker nor report the untouched adversarial trackers as 0.
    adv = AdversarialModel(tiny_net(), "mart", eps=EPS, steps=2, test_adversarial=False)
    adv.compile(optimizer=keras.optimizers.SGD(0.1))
    data = dataset(n=64, batch=32)
    adv.fit(data, epochs=1, verbose=0)
    logs = adv.evaluate(data, verbose=0, return_dict=True)
    assert sorted(logs) == ["ce", "clean_accuracy", "loss"]
    assert logs["ce"] > 0.0 and logs["loss"] == pytest.approx(logs["ce"], rel=1e-5)


def test_alp_feeds_each_training_call_its_own_labels_to_cifs():
    # ALP runs the clean and crafted batches as one 2N-row call; a CIFS layer must see 2N labels there.
    from tfrobust import models
    keras.utils.set_random_seed(0)
    net = models.build("cifs_resnet10", (8, 8, 1), 2, width=0.125)
    adv = AdversarialModel(net, "alp", eps=EPS, steps=1)
    adv.compile(optimizer=keras.optimizers.SGD(0.01))
    history = adv.fit(dataset(n=32, batch=16), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0]) and history.history["aux"][0] > 0.0  # the probes' CE
