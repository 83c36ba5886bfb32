"""Run folders: new, resumed or finished by the recorded flags; saved evaluations reused only with the same
settings."""

import json

import numpy as np
import pytest

from tfrobust.errors import TfrobustError
from tfrobust.reproduction import runs


def test_training_state_follows_the_record_and_the_summary(tmp_path):
    folder = runs.run_dir(str(tmp_path), "claim", "cpu", "model", 1)
    assert folder.endswith("claim/cpu/model_seed1")
    argv = runs.training_argv(["--epochs=2"], folder, 1)
    assert argv == ["--epochs=2", f"--model_dir={folder}", "--seed=1"]
    assert runs.training_state(folder, argv) == runs.NEW
    runs.record_training(folder, argv)
    assert runs.training_state(folder, argv) == runs.RESUME  # started, no summary yet
    runs.add_invocation(folder, 12.345)
    runs.add_invocation(folder, 3.0)
    assert runs.invocations(folder) == [12.3, 3.0]
    (tmp_path / "claim" / "cpu" / "model_seed1" / "summary.json").write_text("{}")
    assert runs.training_state(folder, argv) == runs.FINISHED
    with pytest.raises(TfrobustError, match="was trained with other flags"):
        runs.training_state(folder, runs.training_argv(["--epochs=3"], folder, 1))


def test_a_foreign_folder_is_refused(tmp_path):
    (tmp_path / "stuff.txt").write_text("x")
    with pytest.raises(TfrobustError, match="not a reproduction run"):
        runs.training_state(str(tmp_path), ["--epochs=1"])


def test_saved_evaluation_is_reused_only_with_the_same_settings(tmp_path):
    masks = {"clean": np.array([True, False]), "autoattack": np.array([False, False])}
    runs.save_evaluation(str(tmp_path), {"points": 2, "eps": 0.1}, {"clean": 0.5}, masks)
    result, loaded = runs.load_evaluation(str(tmp_path), {"points": 2, "eps": 0.1})
    assert result == {"clean": 0.5}
    assert all(np.array_equal(loaded[k], masks[k]) and loaded[k].dtype == bool for k in masks)
    assert runs.load_evaluation(str(tmp_path), {"points": 3, "eps": 0.1}) is None
    assert json.loads((tmp_path / runs.EVALUATION_FILE).read_text())["settings"] == {"points": 2, "eps": 0.1}
    assert runs.load_evaluation(str(tmp_path / "missing"), {}) is None
