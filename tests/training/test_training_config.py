"""``TrainingConfig``: typed, validated at construction; ``train`` takes only a config."""

import dataclasses

import pytest

from tfrobust.errors import TfrobustError
from tfrobust.training import TrainingConfig, train

BASE = dict(dataset="fashion_mnist", model="small_cnn", model_dir="/tmp/run", epochs=2, batch_size=32)


@pytest.mark.parametrize("change,message", [
    (dict(epochs=0), r"epochs must be in \[1, inf\), got 0"),
    (dict(epochs=2.5), "epochs must be an integer, got 2.5"),
    (dict(batch_size=True), "batch_size must be an integer, got True"),
    (dict(train_size=0), r"train_size must be in \[1, inf\), got 0"),
    (dict(learning_rate=0.0), r"learning_rate must be in \(0.0, inf\), got 0.0"),
    (dict(seed=-1), r"seed must be in \[0, inf\), got -1"),
    (dict(lr_boundaries=(3, 1.5)), "lr_boundaries entry must be an integer, got 1.5"),
    (dict(model_dir=""), "model_dir must be a non-empty string"),
])
def test_bad_values_fail_at_construction_in_one_line(change, message):
    with pytest.raises(TfrobustError, match=message):
        TrainingConfig(**{**BASE, **change})


def test_config_is_frozen_and_owns_its_containers():
    options = {"width": 0.5}
    config = TrainingConfig(**BASE, model_options=options, lr_boundaries=[1, 2])
    options["width"] = 1.0
    assert config.model_options == {"width": 0.5} and config.lr_boundaries == (1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 3  # type: ignore[misc]
    with pytest.raises(TfrobustError, match="train takes a TrainingConfig, got dict"):
        train(BASE)
