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


def test_status_lines_follow_a_model_folder_from_nothing_to_evaluated(tmp_path):
    from tfrobust.attacks import PGD  # pylint: disable=import-outside-toplevel
    from tfrobust.core.journal import Journal  # pylint: disable=import-outside-toplevel
    from tfrobust.evaluation import robust_accuracy  # pylint: disable=import-outside-toplevel
    from tests.evaluation.test_resume import truncate  # pylint: disable=import-outside-toplevel
    from tests.linear_problems import linear_problem  # pylint: disable=import-outside-toplevel

    folder = runs.run_dir(str(tmp_path), "claim", "cpu", "model", 0)
    assert runs.seeds_on_disk(str(tmp_path), "claim", "cpu", "model") == []
    assert runs.status_lines(folder) == ["not started"]
    runs.record_training(folder, ["--epochs=3"])
    assert runs.seeds_on_disk(str(tmp_path), "claim", "cpu", "model") == [0]
    (tmp_path / "claim" / "cpu" / "model_seed0" / "history.csv").write_text("epoch,loss\n0,2.1\n1,1.7\n")
    assert runs.status_lines(folder)[0].startswith("training: 2 epoch(s) logged")
    (tmp_path / "claim" / "cpu" / "model_seed0" / "summary.json").write_text("{}")
    assert runs.status_lines(folder) == ["trained, not evaluated yet"]

    # An evaluation under way: its journal's progress (two of several PGD batches done).
    model, x, y = linear_problem(40, 4)
    journal = Journal(f"{folder}/{runs.EVALUATION_STATE}").child("standard").child("model").child("pgd")
    robust_accuracy(PGD(norm="linf", eps=0.1, steps=3, seed=0), model, x, y, batch_size=8, journal=journal)
    batches = len(journal.records()) - 1
    truncate(journal.folder, keep=1 + 2)  # what a kill after two batches leaves
    first, line = runs.status_lines(folder)
    assert first.startswith("trained; evaluation running or interrupted")
    assert line.startswith(f"standard/model/pgd: running, 2 of {batches} batch(es), ") and "provisional" in line

    # Every journal finished, the suite's last attack among them: what follows (sanity checks, analyses, adaptive
    # recipe) is not journalled, and the status says so; while any attack still runs, it does not.
    from tfrobust.reproduction.model_evaluation import SUITE  # pylint: disable=import-outside-toplevel
    assert SUITE == "standard" and runs.SUITE_LAST_ATTACK == "autoattack"
    last = Journal(f"{folder}/{runs.EVALUATION_STATE}").child("standard").child("model").child(runs.SUITE_LAST_ATTACK)
    robust_accuracy(PGD(norm="linf", eps=0.1, steps=3, seed=0), model, x, y, batch_size=8, journal=last)
    assert not any(line.startswith("the standard suite is done") for line in runs.status_lines(folder))  # pgd runs
    truncate(last.folder, keep=1 + 1)
    robust_accuracy(PGD(norm="linf", eps=0.1, steps=3, seed=0), model, x, y, batch_size=8, journal=journal)
    *_, pgd_done, running = runs.status_lines(folder)  # the last attack cut after one batch
    assert pgd_done.startswith("standard/model/pgd: done") and running.startswith(
        f"standard/model/{runs.SUITE_LAST_ATTACK}: running, 1 of {batches} batch(es)")
    robust_accuracy(PGD(norm="linf", eps=0.1, steps=3, seed=0), model, x, y, batch_size=8, journal=last)
    *_, done, after = runs.status_lines(folder)
    assert done.startswith(f"standard/model/{runs.SUITE_LAST_ATTACK}: done, {batches} of {batches} batch(es)")
    assert after.startswith("the standard suite is done; the sanity checks, analyses and any adaptive recipe")
    last.clear()
    truncate(journal.folder, keep=1 + 2)

    result = {"clean": 0.8, "strongest": 0.6, "flagged": ["not_monotone"],
              "rows": [{"attack": "autoattack", "accuracy": 0.62}]}
    runs.save_evaluation(folder, {}, result, {"clean": np.ones(2, bool)})
    evaluated = [f"evaluated: clean 80.0 %, AutoAttack 62.0 %, strongest 60.0 %; flags: not_monotone "
                 f"({folder}/{runs.EVALUATION_FILE})"]
    assert runs.status_lines(folder) == runs.status_lines(folder, {}) == evaluated
    # Saved under other settings: the command asking would evaluate again, and its running evaluation shows.
    stale, progress = runs.status_lines(folder, {"points": 40})
    assert stale == (f"trained; its saved evaluation ({folder}/{runs.EVALUATION_FILE}) has other settings, which "
                     "this command evaluates again; evaluation running or interrupted (provisional: points not yet "
                     "attacked count as standing):") and progress == line
    (tmp_path / "claim" / "cpu" / "model_seed0" / runs.EVALUATION_FILE).write_text("{not json")
    with pytest.raises(TfrobustError, match=r"reproduce_evaluation.json is damaged \(JSONDecodeError\); remove it"):
        runs.status_lines(folder)
    runs.record_training(runs.run_dir(str(tmp_path), "claim", "cpu", "model", 1), ["--epochs=3"])
    runs.record_training(runs.run_dir(str(tmp_path), "claim", "cpu", "model_b", 3), ["--epochs=3"])
    assert runs.seeds_on_disk(str(tmp_path), "claim", "cpu", "model") == [0, 1]
