"""Model selection: the seeded held-out split of the training set, the fixed validation attack, the
best-robust weights beside the last, summary.json's record of the choice, and EMA weights."""

import csv
import json
import os

import keras
import numpy as np
import pytest

from tfrobust import data, models
from tfrobust.errors import TfrobustError
from tfrobust.training import AdversarialModel, make_callbacks, make_optimizer
from tfrobust.training.config import TrainingConfig
from tfrobust.training.recipe_options import RecipeOptions
from tfrobust.training.selection import split_validation
from tfrobust.training.standard import train


def test_the_validation_split_is_seeded_disjoint_and_from_the_training_set():
    x = np.arange(100, dtype="float32").reshape(100, 1, 1, 1)
    y = np.arange(100)
    (x_train, y_train), (x_val, y_val) = split_validation(x, y, 20, seed=3)
    assert len(y_val) == 20 and len(y_train) == 80 and not set(y_val) & set(y_train)
    np.testing.assert_array_equal(x_val[:, 0, 0, 0], y_val)  # images travel with their labels
    again = split_validation(x, y, 20, seed=3)[1][1]
    other = split_validation(x, y, 20, seed=4)[1][1]
    np.testing.assert_array_equal(again, y_val)
    assert set(other) != set(y_val)
    with pytest.raises(TfrobustError, match=r"validation_size must be in \[1, 99\]"):
        split_validation(x, y, 100, seed=0)


def test_selection_options_refuse_to_select_without_a_held_out_split():
    with pytest.raises(TfrobustError, match="export_weights=best needs validation_size"):
        RecipeOptions(export_weights="best")
    with pytest.raises(TfrobustError, match="early_stopping_patience needs validation_size"):
        RecipeOptions(early_stopping_patience=2)
    with pytest.raises(TfrobustError, match="unknown weight_decay_mode 'l2'"):
        RecipeOptions(weight_decay_mode="l2")


def test_ema_weights_are_what_the_checkpoints_hold(tmp_path):
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 4)).astype("float32"), rng.integers(0, 2, 8)
    adv = AdversarialModel(net, "standard")
    adv.compile(optimizer=make_optimizer("sgd", 0.5, momentum=0.0, ema=0.75))
    raw = []

    class Raw(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raw.append([w.numpy().copy() for w in net.weights])

    callbacks = RecipeOptions(ema=0.75).callbacks(make_callbacks(str(tmp_path)), str(tmp_path), net)
    adv.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False, callbacks=[Raw()] + callbacks)
    # Keras' EMA: the first update copies the weights, then average ← m·average + (1 − m)·w.
    expected = [0.75 * a + 0.25 * b for a, b in zip(raw[0], raw[1])]
    saved = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    saved.load_weights(os.path.join(tmp_path, "checkpoints", "last.weights.h5"))
    for got, want in zip(saved.weights, expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    for got, want in zip(net.weights, expected):  # and the model holds them after training
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)


def test_train_and_export_selects_the_best_robust_epoch_on_held_out_training_data(tmp_path):
    recipe = RecipeOptions(validation_size=64, validation_steps=2, export_weights="best",
                           weight_decay_mode="coupled")
    config = TrainingConfig(dataset="fashion_mnist", model="small_cnn", model_options={"width": 0.25},
                            model_dir=str(tmp_path / "run"), epochs=2, batch_size=64, train_size=192,
                            test_size=64, method="pgd_at", method_params={"eps": 0.1, "steps": 1},
                            optimizer="sgd", learning_rate=0.05, verbose=0, recipe=recipe)
    run = train(config)
    summary = run.summary
    assert summary["train_size"] == 128 and summary["validation_size"] == 64  # carved from training
    selection = summary["selection"]
    best = selection["best"]
    assert selection["monitor"] == "val_adv_accuracy" and selection["selected_epoch"] == best["epoch"]
    assert best["epoch"] in (1, 2) and {"val_clean_accuracy", "val_adv_accuracy"} <= set(best)
    assert set(selection["last"]) == {"epoch", "val_clean_accuracy", "val_adv_accuracy"}
    # The selected epoch is the history's best validation-attack epoch (the first of equals), not the last.
    with open(tmp_path / "run" / "history.csv", encoding="utf-8") as handle:
        history = list(csv.DictReader(handle))
    accuracies = [float(row["val_adv_accuracy"]) for row in history]
    assert best["epoch"] == 1 + int(np.argmax(accuracies))
    assert best["val_adv_accuracy"] == pytest.approx(max(accuracies), abs=1e-6)
    assert summary["test_attack"]["steps"] == 2 and summary["recipe"]["weight_decay_mode"] == "coupled"
    on_disk = json.load(open(tmp_path / "run" / "summary.json", encoding="utf-8"))
    assert on_disk["selection"] == selection
    # The returned model holds the best weights, and the test metrics are theirs.
    net = models.build("small_cnn", (28, 28, 1), 10, width=0.25)
    net.load_weights(selection["weights_best"])
    for got, want in zip(run.model.weights, net.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    _, (x_test, y_test) = data.load_splits("fashion_mnist", train_size=1, test_size=64)
    accuracy = float(np.mean(np.argmax(net.predict(x_test, verbose=0), -1) == y_test))
    assert summary["test_accuracy"] == pytest.approx(accuracy)


def test_selection_callbacks_run_after_the_backup_with_ema_first(tmp_path):
    base = make_callbacks(str(tmp_path))
    callbacks = RecipeOptions(validation_size=10, ema=0.9, early_stopping_patience=3).callbacks(
        base, str(tmp_path), keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]))
    names = [type(c).__name__ for c in callbacks]
    backup = names.index("GoodBackupAndRestore")
    # Backups hold the raw weights; every checkpoint after the EMA swap holds the EMA ones.
    assert names[backup + 1:backup + 5] == ["SwapEMAWeights", "BestWeights", "LastValidation", "EarlyStopping"]
    assert names.index("LastWeights") > backup + 4
    stopper = callbacks[backup + 4]
    assert (stopper.monitor, stopper.mode, stopper.patience) == ("val_adv_accuracy", "max", 3)
