"""Fault tolerance of ``trainers/train.py``: SIGKILL mid-run, re-run the same command, and the run
continues from its last completed epoch, finishes the plan and logs every epoch exactly once."""

import json
import os
import subprocess
import sys

import pytest

from tests.process_control import kill_when

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
EPOCHS = 6


def backed_up_epoch(run_dir):
    """The epoch BackupAndRestore would resume at (0 without a readable backup)."""
    try:
        with open(run_dir / "backup" / "training_metadata.json", encoding="utf-8") as handle:
            return int(json.load(handle)["epoch"])
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.parametrize("method_args", [[], ["--method=fgsm_rs", "--eps=0.1"]], ids=["standard", "fgsm_rs"])
def test_a_killed_training_run_resumes_from_its_last_completed_epoch(tmp_path, method_args):
    run_dir = tmp_path / "run"
    args = [sys.executable, os.path.join(ROOT, "trainers/train.py"), *method_args, "--model=small_cnn",
            "--model_option=width=0.25", "--train_size=256", "--test_size=32", f"--epochs={EPOCHS}",
            "--batch_size=32", f"--model_dir={run_dir}"]
    kill_when(args, lambda: backed_up_epoch(run_dir) >= 2, env=ENV, cwd=ROOT)
    resume_at = backed_up_epoch(run_dir)
    assert 2 <= resume_at < EPOCHS

    result = subprocess.run(args, env=ENV, cwd=ROOT, capture_output=True, text=True, check=False, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.load(open(run_dir / "summary.json", encoding="utf-8"))
    # The second invocation started at the backed-up epoch and ran exactly the rest of the plan.
    assert summary["epochs_run_this_invocation"] == EPOCHS - resume_at
    lines = (run_dir / "history.csv").read_text().strip().splitlines()
    assert lines[0].startswith("epoch,") and sum(line.startswith("epoch,") for line in lines) == 1
    # Every epoch logged exactly once: none lost, none repeated (a row written just before the kill,
    # for an epoch not yet backed up, is replaced by the rerun's).
    assert [int(line.split(",")[0]) for line in lines[1:]] == list(range(EPOCHS))
    assert not (run_dir / "backup").exists()  # removed once the planned epochs completed
    if method_args:
        assert summary["method"]["name"] == "fgsm_rs" and "adv_accuracy" in lines[0]
