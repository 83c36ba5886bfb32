"""Fault tolerance of ``trainers/evaluate.py``: SIGKILL mid-AutoAttack, re-run the same command, and the
evaluation continues from its saved state and ends with exactly the uninterrupted run's numbers."""

import json
import os
import re
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from tfrobust import data
from tests.process_control import kill_when

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A small MLP trained for two epochs on Fashion-MNIST (≈ 75 % clean), saved as .keras."""
    keras.utils.set_random_seed(0)
    x, y = data.load("fashion_mnist", "train", size=2000)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)], name="mlp")
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=2, batch_size=64, verbose=0)
    path = str(tmp_path_factory.mktemp("model") / "mlp.keras")
    model.save(path)
    return path


def command(model_file, out_dir):
    return [sys.executable, os.path.join(ROOT, "trainers/evaluate.py"), f"--source={model_file}",
            "--dataset=fashion_mnist", "--test_size=120", "--eps=0.05", "--suite=pgd,autoattack",
            "--attack_option=autoattack.version=fast", "--attack_option=autoattack.batch_size=10",
            "--batch_size=10", "--sanity_size=0", "--seed=5", "--verbose=0", f"--out_dir={out_dir}"]


def chunk_records(out_dir):
    """AutoAttack's finished chunks in the saved state: its records less the header. Only ``NNNNNN.npz`` names
    count: a kill during a write leaves the record's ``.tmp-*`` folder beside them, which is not a record."""
    folder = os.path.join(out_dir, "state", "eps_0.05", "mlp.keras", "autoattack", "attack")
    names = os.listdir(folder) if os.path.isdir(folder) else []
    return max(sum(bool(re.fullmatch(r"\d{6}\.npz", name)) for name in names) - 1, 0)


def results(out_dir):
    report = json.load(open(os.path.join(out_dir, "report.json"), encoding="utf-8"))
    rows = [(row["attack"], row["accuracy"], row["counts"], [c["robust"] for c in row.get("components", [])])
            for row in report["models"][0]["rows"]]
    with np.load(os.path.join(out_dir, "correct.npz")) as masks:
        return rows, {key: masks[key] for key in masks.files}


def test_a_killed_evaluation_resumes_to_exactly_the_uninterrupted_numbers(model_file, tmp_path, in_process):
    began = time.perf_counter()
    plain = subprocess.run(command(model_file, tmp_path / "plain"), env=ENV, cwd=ROOT, capture_output=True, text=True,
                           check=False, timeout=600)
    uninterrupted_seconds = time.perf_counter() - began
    assert plain.returncode == 0, plain.stderr[-3000:]

    out_dir = tmp_path / "killed"
    killed_seconds = kill_when(command(model_file, out_dir), lambda: chunk_records(out_dir) >= 6, env=ENV, cwd=ROOT)
    done_before_kill = chunk_records(out_dir)
    assert done_before_kill >= 6 and not (out_dir / "report.json").exists()
    # --status reads the killed run's state and leaves it as it was.
    code, status, stderr = in_process("evaluate", *command(model_file, out_dir)[2:], "--status")
    assert code == 0, stderr
    lines = status.splitlines()
    assert lines[0] == f"evaluation saved in {out_dir / 'state'} (standing counts of unfinished attacks are " \
                       "provisional: points not yet attacked count as standing)"
    assert lines[1].startswith("eps_0.05/mlp.keras/clean: ") and lines[2].startswith("eps_0.05/mlp.keras/pgd: done, ")
    assert lines[3].startswith("eps_0.05/mlp.keras/autoattack: running, 0 of 1 batch(es), ")
    assert [line.split(":")[0] for line in lines[4:]] == ["  apgd-ce", "  apgd-t", "  square"]
    chunks = [int(line.split(", ")[1].split(" of ")[0]) for line in lines[4:] if "chunk(s)" in line]
    assert sum(chunks) == done_before_kill == chunk_records(out_dir)
    assert not (out_dir / "report.json").exists()
    code, status, _ = in_process("evaluate", *command(model_file, tmp_path / "nothing")[2:], "--status")
    assert code == 0 and status.startswith(f"no saved evaluation in {tmp_path / 'nothing' / 'state'}")

    began = time.perf_counter()
    resumed = subprocess.run(command(model_file, out_dir), env=ENV, cwd=ROOT, capture_output=True, text=True,
                             check=False, timeout=600)
    resumed_seconds = time.perf_counter() - began
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows, masks = results(out_dir)
    plain_rows, plain_masks = results(tmp_path / "plain")
    assert rows == plain_rows  # accuracies, counts and AutoAttack's per-component survivors
    assert masks.keys() == plain_masks.keys()
    for key, mask in masks.items():
        np.testing.assert_array_equal(mask, plain_masks[key], err_msg=key)
    assert not (out_dir / "state").exists()  # removed once the report is written
    print(f"\nuninterrupted {uninterrupted_seconds:.1f}s; killed after {killed_seconds:.1f}s with {done_before_kill} "
          f"AutoAttack chunks saved; resumed run {resumed_seconds:.1f}s; total "
          f"{(killed_seconds + resumed_seconds) / uninterrupted_seconds:.2f}x")


def test_a_changed_command_refuses_the_saved_state_unless_restarted(model_file, tmp_path, in_process):
    state = tmp_path / "state"
    state.mkdir()
    (state / "command.json").write_text(json.dumps({"suite": "quick"}))
    args = [f"--source={model_file}", "--dataset=fashion_mnist", "--test_size=20", "--suite=fgsm", "--sanity_size=0",
            "--verbose=0", f"--out_dir={tmp_path}"]
    code, _, stderr = in_process("evaluate", *args)
    assert code == 2 and stderr.count("\n") == 1
    assert "holds the state of a different evaluation (changed: " in stderr and "--restart" in stderr
    code, _, stderr = in_process("evaluate", *args, "--restart")
    assert code == 0, stderr
    assert (tmp_path / "report.json").exists() and not state.exists()
