"""Schedules, optimizers and precision policies of the training recipe."""

import keras
import numpy as np
import pytest

from tfrobust.errors import TfrobustError
from tfrobust.training import make_optimizer, make_schedule, set_precision


def test_piecewise_divides_at_epoch_boundaries():
    schedule = make_schedule("piecewise", 0.1, steps_per_epoch=10, epochs=110, boundaries=[100, 105])
    rates = [float(schedule(step)) for step in (0, 999, 1000, 1001, 1049, 1051)]
    np.testing.assert_allclose(rates, [0.1, 0.1, 0.1, 0.01, 0.01, 0.001], rtol=1e-6)


def test_cosine_decays_to_zero_and_constant_is_constant():
    schedule = make_schedule("cosine", 0.2, steps_per_epoch=5, epochs=4)
    assert float(schedule(0)) == pytest.approx(0.2)
    assert float(schedule(10)) == pytest.approx(0.1, rel=1e-5)
    assert float(schedule(20)) == pytest.approx(0.0, abs=1e-7)
    assert make_schedule("constant", 0.3, steps_per_epoch=5, epochs=4) == 0.3


def test_one_cycle_rises_linearly_to_the_peak_at_two_fifths_then_falls_to_zero():
    schedule = make_schedule("one_cycle", 0.2, steps_per_epoch=10, epochs=10)  # 100 steps, peak at 40
    rates = [float(schedule(step)) for step in (0, 19, 39, 69, 99)]
    np.testing.assert_allclose(rates, [0.005, 0.1, 0.2, 0.1, 0.0], atol=1e-6)
    assert keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule)).get_config() \
        == schedule.get_config()


@pytest.mark.parametrize("kwargs,message", [
    ({"name": "step"}, "unknown schedule 'step'; valid choices: constant, piecewise, cosine"),
    ({"name": "piecewise"}, "needs at least one boundary"),
    ({"name": "piecewise", "boundaries": [12]}, r"boundaries must lie in \[1, 9\]"),
    ({"name": "constant", "learning_rate": 0.0}, "learning_rate must be in")])
def test_bad_schedules(kwargs, message):
    args = {"learning_rate": 0.1, "steps_per_epoch": 3, "epochs": 10, **kwargs}
    with pytest.raises(TfrobustError, match=message):
        make_schedule(args.pop("name"), args.pop("learning_rate"), **args)


def test_optimizers():
    assert isinstance(make_optimizer("sgd", 0.1, momentum=0.9, weight_decay=5e-4), keras.optimizers.SGD)
    assert isinstance(make_optimizer("adamw", 1e-3, weight_decay=1e-2), keras.optimizers.AdamW)
    with pytest.raises(TfrobustError, match="unknown optimizer 'lamb'"):
        make_optimizer("lamb", 0.1)
    with pytest.raises(TfrobustError, match="weight_decay must be in"):
        make_optimizer("sgd", 0.1, weight_decay=-1.0)


def test_precision_policies():
    try:
        assert set_precision("bfloat16") == "mixed_bfloat16"
        assert keras.mixed_precision.global_policy().compute_dtype == "bfloat16"
        with pytest.raises(TfrobustError, match="unknown mixed_precision 'fp8'"):
            set_precision("fp8")
    finally:
        set_precision("none")
    assert keras.mixed_precision.global_policy().name == "float32"


def test_history_csv_keeps_one_row_per_epoch_across_a_resume(tmp_path):
    """A run killed after writing epoch 2's row (and half of epoch 3's) but before backing up epoch 2
    resumes at epoch 2: the rerun replaces those rows instead of duplicating or losing them."""
    from tfrobust.training.recipe import ResumableCSVLogger

    path = tmp_path / "history.csv"
    path.write_text("epoch,loss,val_loss\n0,0.9,1\n1,0.8,1\n2,0.75,1\n3,0.7")  # the last row was cut off mid-write
    logger = ResumableCSVLogger(str(path))
    logger.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    logger.on_train_begin()
    assert path.read_text().endswith("3,0.7")  # nothing is touched before the resume epoch is known
    logger.on_epoch_begin(2)
    for epoch in (2, 3):
        logger.on_epoch_end(epoch, {"loss": 0.5 - 0.1 * epoch, "val_loss": 0.5})
        logger.on_epoch_begin(epoch + 1)
    logger.on_train_end()
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,loss,val_loss" and [line.split(",")[0] for line in lines[1:]] == ["0", "1", "2", "3"]
    assert lines[3] == "2,0.3,0.5" and lines[1] == "0,0.9,1"


def test_fresh_history_csv_gets_a_header(tmp_path):
    from tfrobust.training.recipe import ResumableCSVLogger

    path = tmp_path / "history.csv"
    logger = ResumableCSVLogger(str(path))
    logger.on_train_begin()
    logger.on_epoch_begin(0)
    logger.on_epoch_end(0, {"loss": 1.0, "val_loss": 2.0})
    logger.on_train_end()
    assert path.read_text().splitlines() == ["epoch,loss,val_loss", "0,1.0,2.0"]


def test_backup_survives_a_kill_during_the_weights_write(tmp_path):
    """A kill while the backup's weights are written leaves only a partial temporary file: the backup
    of the previous epoch still loads and names the epoch to resume at."""
    from tfrobust.training.recipe import GoodBackupAndRestore

    def model():
        net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        net.compile(optimizer="sgd", loss="mse")
        return net

    saved = model()
    backup = GoodBackupAndRestore(str(tmp_path / "backup"))
    backup.set_model(saved)
    backup.on_epoch_end(0, {"loss": 1.0})
    backup.on_epoch_end(1, {"loss": 0.5})
    assert sorted(p.name for p in (tmp_path / "backup").iterdir()) == ["latest.weights.h5",
                                                                      "training_metadata.json"]
    # What a SIGKILL during the next epoch's weights write leaves behind.
    # (tfrobust.core.files.atomic_path: a hidden temporary folder beside the file, same basename).
    partial = tmp_path / "backup" / ".tmp-latest.weights.h5-killed"
    partial.mkdir()
    (partial / "latest.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n truncated")
    restored = model()
    resume = GoodBackupAndRestore(str(tmp_path / "backup"))
    resume.set_model(restored)
    resume.on_train_begin()
    assert restored._initial_epoch == 2  # Keras keeps the resume epoch private
    for a, b in zip(restored.get_weights(), saved.get_weights()):
        np.testing.assert_array_equal(a, b)
