"""Adversarial-training speed and mixed-precision parity, measured in one run on Fashion-MNIST subsets.

(a) PGD-k AT epoch ÷ ((k+1) × clean epoch), both in float32 and in mixed_bfloat16: the cost of the
    ``AdversarialModel`` step beyond the k + 1 forward+backward passes it must do. Target ≤ 1.15.
(b) mixed_bfloat16 vs float32 epoch speed-up, for clean training and for PGD-k AT. Target ≥ 1.6× —
    only reachable where bfloat16 matmuls/convolutions run natively (TPU, CPUs with AVX512-BF16 or
    AMX); elsewhere TensorFlow emulates them and bfloat16 is slower (the CPU flags are printed).
(c) Parity: PGD-k AT trained from the same initial weights and batches in float32 and in
    mixed_bfloat16; clean and PGD-20 accuracy on the first test points. Target: within 1 point.

Epoch times are medians of interleaved repeats (every configuration is timed once per round, so load
on a shared machine hits all of them alike), from the epoch's begin to its end (Keras' per-``fit`` set-up
is not training time); the first epoch of each (tracing) is not timed. Optimizer: Adam 1e-3 (with SGD
0.05 + momentum, PGD-AT of this CNN from scratch stays at chance).

  .venv/bin/python benchmarks/training_speed.py [--train_size=512] [--steps=7] [--repeats=3] \\
      [--parity_train_size=2048] [--parity_epochs=2] [--test_size=500]
"""

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from absl import app, flags

from tfrobust import cli, data, models
from tfrobust.attacks import PGD
from tfrobust.evaluation import robust_accuracy
from tfrobust.training import AdversarialModel, set_precision

from _machine import machine  # benchmarks/_machine.py (this script's folder)

flags.DEFINE_string("model", "small_cnn", "Model name.")
flags.DEFINE_multi_string("model_option", ["width=0.5", "downsample=stride"], "Builder option key=value.")
flags.DEFINE_integer("train_size", 1024, "Training images per timed epoch.", lower_bound=1)
flags.DEFINE_integer("batch_size", 128, "Batch size.", lower_bound=1)
flags.DEFINE_integer("steps", 7, "PGD steps k of PGD-k AT.", lower_bound=1)
flags.DEFINE_float("eps", 0.1, "L∞ radius.", lower_bound=0.0)
flags.DEFINE_integer("repeats", 3, "Timed epochs per configuration (median reported).", lower_bound=1)
flags.DEFINE_integer("parity_train_size", 2048, "Training images for the parity runs.", lower_bound=1)
flags.DEFINE_integer("parity_epochs", 2, "Epochs of the parity runs (0: skip the parity part).", lower_bound=0)
flags.DEFINE_integer("test_size", 500, "Test points for the parity accuracies.", lower_bound=1)
FLAGS = flags.FLAGS

PRECISIONS = ("none", "bfloat16")  # float32, mixed_bfloat16


def build(precision, seed=0):
    set_precision(precision)  # a model keeps the policy it was built under
    keras.utils.set_random_seed(seed)
    return models.build(FLAGS.model, (28, 28, 1), 10, **cli.parse_options(FLAGS.model_option, "model_option"))


def clean_trainer(precision):
    model = build(precision)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def pgd_trainer(precision, seed=0):
    # No clean-accuracy pass and no adversarial validation: the step does exactly k + 1 passes.
    adv = AdversarialModel(build(precision, seed), "pgd_at", eps=FLAGS.eps, steps=FLAGS.steps,
                           step_size=2.5 * FLAGS.eps / FLAGS.steps, track_clean_accuracy=False,
                           test_adversarial=False)
    adv.compile(optimizer=keras.optimizers.Adam(1e-3))
    return adv


class EpochTimer(keras.callbacks.Callback):
    """Seconds from the beginning to the end of the last epoch."""

    def __init__(self):
        super().__init__()
        self.seconds = None
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self._start


def interleaved_medians(fns, repeats):
    """``fns`` run one epoch each and return its seconds; median per function over ``repeats`` rounds."""
    for fn in fns:
        fn()  # warm-up epoch: tracing is not what we measure
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, bucket in zip(fns, times):
            bucket.append(fn())
    return [statistics.median(bucket) for bucket in times]


def one_epoch(trainer, dataset):
    timer = EpochTimer()
    trainer.fit(dataset, epochs=1, verbose=0, callbacks=[timer])
    return timer.seconds


def speed():
    (x, y), _ = data.load_splits("fashion_mnist", train_size=FLAGS.train_size, test_size=1)
    dataset = data.make_dataset(x, y, FLAGS.batch_size, shuffle=True, seed=0)
    labels, fns = [], []
    for precision in PRECISIONS:
        for kind, make in (("clean", clean_trainer), (f"pgd{FLAGS.steps}_at", pgd_trainer)):
            trainer = make(precision)
            labels.append((precision, kind))
            fns.append(lambda t=trainer: one_epoch(t, dataset))
    seconds = dict(zip(labels, interleaved_medians(fns, FLAGS.repeats)))
    set_precision("none")
    k = FLAGS.steps
    print(machine())
    print(f"epoch of {FLAGS.train_size} images, batch {FLAGS.batch_size}, {FLAGS.model} "
          f"{' '.join(FLAGS.model_option)}; median of {FLAGS.repeats} interleaved repeats:")
    for (precision, kind), value in seconds.items():
        print(f"  {kind:10s} {precision:9s} {value:8.3f} s")
    for precision in PRECISIONS:
        ratio = seconds[(precision, f"pgd{k}_at")] / ((k + 1) * seconds[(precision, "clean")])
        print(f"(a) PGD-{k} AT epoch / ({k + 1} x clean epoch), {precision}: {ratio:.3f}  (target <= 1.15)")
    for kind in ("clean", f"pgd{k}_at"):
        gain = seconds[("none", kind)] / seconds[("bfloat16", kind)]
        print(f"(b) mixed_bfloat16 speed-up over float32, {kind}: {gain:.2f}x  (target >= 1.6x)")


def parity():
    (x, y), (x_test, y_test) = data.load_splits("fashion_mnist", train_size=FLAGS.parity_train_size,
                                                test_size=FLAGS.test_size)
    dataset = data.make_dataset(x, y, FLAGS.batch_size, shuffle=True, seed=0)
    attack = PGD(norm="linf", eps=FLAGS.eps, steps=20, seed=0)
    print(f"(c) PGD-{FLAGS.steps} AT, {FLAGS.parity_epochs} epochs on {FLAGS.parity_train_size} images, same "
          f"initial weights and batches; accuracy on {FLAGS.test_size} test points:")
    results = {}
    for precision in PRECISIONS:
        adv = pgd_trainer(precision)
        start = time.perf_counter()
        adv.fit(dataset, epochs=FLAGS.parity_epochs, verbose=0)
        seconds = time.perf_counter() - start
        logits = adv.model.predict(x_test, batch_size=250, verbose=0)
        clean = float(np.mean(np.argmax(logits, axis=1) == y_test))
        robust = robust_accuracy(attack, adv.model, x_test, y_test, batch_size=250)["accuracy"]
        results[precision] = (clean, robust)
        print(f"  {precision:9s} clean {100 * clean:6.2f}%  PGD-20 {100 * robust:6.2f}%  (training {seconds:.0f} s)")
    set_precision("none")
    (c32, r32), (c16, r16) = results["none"], results["bfloat16"]
    print(f"(c) |clean difference| {100 * abs(c32 - c16):.2f} pt, |PGD-20 difference| {100 * abs(r32 - r16):.2f} pt "
          "(target <= 1 pt)")


def main(argv):
    del argv
    speed()
    if FLAGS.parity_epochs:
        parity()


if __name__ == "__main__":
    app.run(main)
