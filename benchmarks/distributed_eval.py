"""Evaluation sharded over Ray workers (issue 16): scaling from 1 to 2 single-threaded workers, and Ray's own
overhead against the in-process path at 1 worker.

A small CNN trained for one epoch on Fashion-MNIST is saved as .keras; the same attack suite runs on the
same points (1) in this process with TensorFlow limited to one thread, (2) on 1 Ray worker and (3) on 2 Ray
workers (one thread each). Executors start once (their start-up is printed apart); the three runs
alternate for ``--rounds`` rounds and each ratio is the median of the per-round ratios (the machine is
shared: only side-by-side ratios mean something). Every Ray run's per-point results are checked equal to
the in-process run's.

  .venv/bin/python benchmarks/distributed_eval.py --points=500 --suite=pgd --attack_option=pgd.steps=20

Targets (issue 16): Ray at 1 worker ≤ 1.10× the in-process time; 2 workers on 2 cores as close to 2× as the
driver (which verifies and predicts every returned batch) leaves room for.
"""

import contextlib
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

from tfrobust import cli, data, export, models
from tfrobust.evaluation import evaluate
from tfrobust.evaluation.attack_options import attack_overrides
from tfrobust.evaluation.distributed import EvaluationSpec, RayExecutor
from tfrobust.evaluation.suite import suite_entries

from _machine import machine  # benchmarks/_machine.py (this script's folder)

flags.DEFINE_integer("points", 500, "Test points attacked.")
flags.DEFINE_string("suite", "pgd", "Attack suite (a suite name or attack names).")
flags.DEFINE_multi_string("attack_option", ["pgd.steps=20"], "<attack>.<parameter>=<value>, repeatable.")
flags.DEFINE_float("eps", 0.1, "L∞ ε.")
flags.DEFINE_integer("batch_size", 50, "Points per batch (the unit of work a worker gets).")
flags.DEFINE_integer("rounds", 3, "Alternating rounds of the three runs.")
flags.DEFINE_integer("train_points", 10000, "Training points of the one-epoch CNN.")
FLAGS = flags.FLAGS


def trained_cnn(path):
    (x_train, y_train), _ = data.load_splits("fashion_mnist", test_size=1)
    keras.utils.set_random_seed(0)
    model = models.build("small_cnn", (28, 28, 1), 10)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train[:FLAGS.train_points], y_train[:FLAGS.train_points], batch_size=128, epochs=1, verbose=0)
    model.save(path)


def main(argv):
    del argv
    tf.config.threading.set_intra_op_parallelism_threads(1)  # the in-process run: one thread, as one worker
    tf.config.threading.set_inter_op_parallelism_threads(1)
    print(machine())
    attacks = list(dict.fromkeys(name for _, name, _ in suite_entries(FLAGS.suite)))
    overrides = attack_overrides(cli.parse_options(FLAGS.attack_option, "attack_option"), attacks)
    folder = tempfile.mkdtemp(prefix="distributed-eval-")
    path = os.path.join(folder, "cnn.keras")
    trained_cnn(path)
    x, y = data.load("fashion_mnist", "test", size=FLAGS.points)
    options = {"eps": FLAGS.eps, "suite": FLAGS.suite, "suite_overrides": overrides, "sanity_size": 0,
               "batch_size": FLAGS.batch_size, "seed": 0}
    spec = EvaluationSpec(sources={"cnn": ("artifact", path, {})}, suite=FLAGS.suite, overrides=overrides)
    import ray  # pylint: disable=import-outside-toplevel

    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ray.init(num_cpus=3, num_gpus=0, _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False,
             object_store_memory=256 << 20, runtime_env={"env_vars": {"PYTHONPATH": package_root,
                                                                     "TF_CPP_MIN_LOG_LEVEL": "2",
                                                                     "OMP_NUM_THREADS": "1"}})
    with contextlib.ExitStack() as stack:
        executors = {}
        for workers in (1, 2):
            began = time.perf_counter()
            executors[workers] = stack.enter_context(RayExecutor(spec, workers=workers, threads=1))
            print(f"{workers} worker(s) started in {time.perf_counter() - began:.1f}s")
        artifact = export.load(path)
        reference = evaluate({"cnn": artifact}, x, y, **options)  # warm-up and the per-point reference
        for executor in executors.values():  # warm-up: each worker loads the model and traces the attacks
            evaluate({"cnn": artifact}, x, y, executor=executor, **options)
        seconds = {"in-process": [], "ray 1 worker": [], "ray 2 workers": []}
        for round_number in range(FLAGS.rounds):
            runs = [("in-process", None), ("ray 1 worker", executors[1]), ("ray 2 workers", executors[2])]
            for name, executor in (runs if round_number % 2 == 0 else runs[::-1]):
                began = time.perf_counter()
                report = evaluate({"cnn": artifact}, x, y, executor=executor, **options)
                seconds[name].append(time.perf_counter() - began)
                for attack, mask in reference["correct"]["cnn"].items():
                    if not np.array_equal(report["correct"]["cnn"][attack], mask):
                        raise SystemExit(f"{name}: per-point results of {attack} differ from the in-process run")
        jobs = {workers: executor.stats() for workers, executor in executors.items()}
    ray.shutdown()
    rows = reference["models"][0]["rows"]
    print(f"{FLAGS.points} points, suite {FLAGS.suite} {overrides}, batch {FLAGS.batch_size}, ε = {FLAGS.eps}: "
          + ", ".join(f"{row['attack']} {100 * row['accuracy']:.1f}%" for row in rows)
          + "; every Ray run's per-point results equal the in-process run's")
    for name, values in seconds.items():
        print(f"{name:>14}: median {statistics.median(values):.2f}s over {len(values)} runs {values}")
    per_round = lambda a, b: statistics.median(p / q for p, q in zip(seconds[a], seconds[b]))
    print(f"Ray overhead at 1 worker (ray 1 worker / in-process): {per_round('ray 1 worker', 'in-process'):.3f}")
    print(f"speed-up 1 → 2 workers (ray 1 worker / ray 2 workers): {per_round('ray 1 worker', 'ray 2 workers'):.3f}")
    print(f"jobs per worker: {jobs}")


if __name__ == "__main__":
    app.run(main)
