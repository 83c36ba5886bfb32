"""What resumable evaluation costs (issue 13): the overhead of progress + per-batch state, and a kill-and-resume.

(1) Overhead: the standard AutoAttack on a small CNN (one epoch on Fashion-MNIST) through
    ``robust_accuracy``, with a journal (every chunk of every component recorded) and the verbose=1 progress
    bars, against the same call with neither. The two alternate for ``--rounds`` rounds; the ratio is the
    median of the per-round ratios (target ≤ 1.03). The per-point results are checked equal.
(2) Kill and resume: ``trainers/evaluate.py --suite=autoattack`` on the same model, saved as .keras, run
    uninterrupted (T), then run again and killed with SIGKILL at ``--kill_at`` × T, then re-run to the end.
    Printed: the killed run's and the resumed run's seconds, the total ÷ T (target ≤ 1.1), and the same ratio
    without the second process start (the start-up — import, model and data loading — is measured as a
    one-point FGSM run of the script); the resumed report is checked equal to the uninterrupted one.

  .venv/bin/python benchmarks/evaluation_resume.py --points=200 --eps=0.03
"""

import contextlib
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from absl import app, flags

from tfrobust import data, models
from tfrobust.attacks import AutoAttack
from tfrobust.core.journal import Journal
from tfrobust.evaluation import robust_accuracy

from _machine import machine  # benchmarks/_machine.py (this script's folder)

flags.DEFINE_integer("points", 200, "Test points.")
flags.DEFINE_float("eps", 0.03, "L∞ ε (small enough that every AutoAttack component has work).")
flags.DEFINE_integer("batch_size", 50, "AutoAttack's chunk size (the unit of saved state).")
flags.DEFINE_integer("rounds", 3, "Alternating rounds of section 1.")
flags.DEFINE_float("kill_at", 0.5, "Section 2 kills the run at this fraction of the uninterrupted time.")
flags.DEFINE_list("sections", ["1", "2"], "Which sections to run.")
FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def trained_cnn():
    (x_train, y_train), _ = data.load_splits("fashion_mnist", test_size=1)
    keras.utils.set_random_seed(0)
    model = models.build("small_cnn", (28, 28, 1), 10)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train[:10000], y_train[:10000], batch_size=128, epochs=1, verbose=0)
    return model


class TimedJournal(Journal):
    """A Journal that adds the seconds its appends take (what the state costs, free of the load's noise)."""

    seconds, appends = 0.0, 0

    def append(self, meta, **arrays):
        began = time.perf_counter()
        super().append(meta, **arrays)
        TimedJournal.seconds += time.perf_counter() - began
        TimedJournal.appends += 1

    def child(self, name):
        return TimedJournal(super().child(name).folder)


def overhead_section(model, x, y, folder):
    seconds = {"plain": [], "journal + progress": []}
    results = {}
    for round_number in range(FLAGS.rounds):
        order = ["plain", "journal + progress"]
        for name in (order if round_number % 2 == 0 else order[::-1]):
            attack = AutoAttack(norm="linf", eps=FLAGS.eps, batch_size=FLAGS.batch_size)
            options = {}
            if name != "plain":
                journal = TimedJournal(os.path.join(folder, f"journal-{round_number}"))
                options = {"journal": journal, "verbose": 1}
            began = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                result = robust_accuracy(attack, model, x, y, batch_size=FLAGS.batch_size, **options)
            seconds[name].append(time.perf_counter() - began)
            results.setdefault(name, result["correct"])
            if not np.array_equal(result["correct"], results["plain" if "plain" in results else name]):
                raise SystemExit("the journaled run's per-point results differ from the plain run's")
    report = [f"{s['attack']} {s['robust']}" for s in attack.last_report]
    print(f"(1) standard AutoAttack, {len(y)} points, ε = {FLAGS.eps}, chunks of {FLAGS.batch_size}; standing after "
          f"each component: {', '.join(report)}")
    for name, values in seconds.items():
        print(f"    {name:>18}: median {statistics.median(values):.1f}s {[round(v, 1) for v in values]}")
    ratios = [a / b for a, b in zip(seconds["journal + progress"], seconds["plain"])]
    print(f"    overhead (journal + progress / plain, median of per-round ratios): {statistics.median(ratios):.3f} "
          f"(per round: {', '.join(f'{r:.3f}' for r in ratios)})")
    print(f"    state writes: {TimedJournal.appends} records in {TimedJournal.seconds:.2f}s = "
          f"{100 * TimedJournal.seconds / sum(seconds['journal + progress']):.2f} % of the journaled runs' time")


def evaluate_command(model_path, out_dir, suite="autoattack", points=None):
    return [sys.executable, os.path.join(ROOT, "trainers/evaluate.py"), f"--source={model_path}",
            "--dataset=fashion_mnist", f"--test_size={points or FLAGS.points}", f"--eps={FLAGS.eps}",
            f"--suite={suite}", f"--batch_size={FLAGS.batch_size}", "--sanity_size=0", "--verbose=0",
            f"--out_dir={out_dir}"] + ([f"--attack_option=autoattack.batch_size={FLAGS.batch_size}"]
                                       if suite == "autoattack" else [])


def timed(args, kill_after=None):
    began = time.perf_counter()
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if kill_after is None:
        _, stderr = process.communicate()
        if process.returncode:
            raise SystemExit(stderr[-2000:])
    else:
        try:
            process.wait(timeout=kill_after)
            raise SystemExit("the run finished before it was killed")
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
    return time.perf_counter() - began


def rows(out_dir):
    report = json.load(open(os.path.join(out_dir, "report.json"), encoding="utf-8"))
    return [(row["attack"], row["accuracy"], row["counts"]) for row in report["models"][0]["rows"]]


def kill_section(model, folder):
    path = os.path.join(folder, "cnn.keras")
    model.save(path)
    startup = timed(evaluate_command(path, os.path.join(folder, "startup"), suite="fgsm", points=1))
    uninterrupted = timed(evaluate_command(path, os.path.join(folder, "plain")))
    out_dir = os.path.join(folder, "killed")
    killed = timed(evaluate_command(path, out_dir), kill_after=FLAGS.kill_at * uninterrupted)
    state = os.path.join(out_dir, "state")
    saved = sum(len(files) for _, _, files in os.walk(state)) if os.path.isdir(state) else 0
    resumed = timed(evaluate_command(path, out_dir))
    if rows(out_dir) != rows(os.path.join(folder, "plain")):
        raise SystemExit("the resumed report differs from the uninterrupted one")
    print(f"(2) trainers/evaluate.py --suite=autoattack, {FLAGS.points} points: uninterrupted {uninterrupted:.1f}s; "
          f"killed at {killed:.1f}s ({saved} state files); resumed run {resumed:.1f}s; process start-up "
          f"{startup:.1f}s; the resumed report equals the uninterrupted one")
    print(f"    total / uninterrupted: {(killed + resumed) / uninterrupted:.3f}; without the second start-up: "
          f"{(killed + resumed - startup) / uninterrupted:.3f}")


def main(argv):
    del argv
    print(machine())
    model = trained_cnn()
    x, y = data.load("fashion_mnist", "test", size=FLAGS.points)
    with tempfile.TemporaryDirectory(prefix="evaluation-resume-") as folder:
        if "1" in FLAGS.sections:
            overhead_section(model, x, y, folder)
        if "2" in FLAGS.sections:
            kill_section(model, folder)


if __name__ == "__main__":
    app.run(main)
