"""``train`` after an early stop with EMA: the returned model (what is exported) and the summary's test
metrics are the EMA weights of the last checkpoint, not the raw weights fit's finalisation copies back."""

import keras
import numpy as np
import pytest

from tfrobust import data, models
from tfrobust.core.run_layout import RunLayout
from tfrobust.training.config import TrainingConfig
from tfrobust.training.recipe_options import RecipeOptions
from tfrobust.training.standard import train


def test_an_early_stop_keeps_the_ema_weights_of_the_last_checkpoint(tmp_path, monkeypatch):
    # Validation never improves after the first epoch, so EarlyStopping (patience 1) stops after epoch 2 of 3
    # through its own code path: only its comparison is replaced, to make the stop independent of the data.
    monkeypatch.setattr(keras.callbacks.EarlyStopping, "_is_improvement",
                        lambda self, value, reference: reference is None)
    recipe = RecipeOptions(validation_size=32, validation_eps=0.05, validation_steps=1, ema=0.5,
                           early_stopping_patience=1)
    config = TrainingConfig(dataset="fashion_mnist", model="small_cnn", model_options={"width": 0.25},
                            model_dir=str(tmp_path / "run"), epochs=3, batch_size=32, train_size=96, test_size=64,
                            optimizer="sgd", learning_rate=0.1, verbose=0, recipe=recipe)
    run = train(config)
    assert run.summary["epochs_run_this_invocation"] == 2 and run.summary["selection"]["selected_epoch"] == 2
    # The last checkpoint was written after SwapEMAWeights swapped the average in (see test_selection).
    ema = models.build("small_cnn", (28, 28, 1), 10, width=0.25)
    ema.load_weights(RunLayout(run.model_dir).last_weights)
    for got, want in zip(run.model.weights, ema.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    _, (x_test, y_test) = data.load_splits("fashion_mnist", train_size=1, test_size=64)
    accuracy = float(np.mean(np.argmax(ema.predict(x_test, verbose=0), -1) == y_test))
    assert run.summary["test_accuracy"] == pytest.approx(accuracy)
