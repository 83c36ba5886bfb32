"""Attack speed, measured in one run on one model and one batch of data (ratios, medians of repeats).

(a) PGD-k wall time ÷ (k × one forward+backward measured inside the same kind of compiled loop):
    the attack's own overhead beyond the gradients it must compute. Target ≤ 1.10.
(c) AutoAttack (standard and fast) wall time on Fashion-MNIST test points for the demo CNN
    (trained here for one epoch if no trained run is given).

  .venv/bin/python benchmarks/attack_speed.py [--points=1000] [--steps=20] [--autoattack_points=1000]

Peers (IBM ART, CleverHans, Foolbox) are compared by benchmarks/attack_peers.py when
requirements-bench.txt is installed.
"""

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf
from absl import app, flags

from tfrobust import data, models
from tfrobust.attacks import PGD
from tfrobust.evaluation import robust_accuracy

from _machine import machine  # benchmarks/_machine.py (this script's folder)

flags.DEFINE_integer("points", 1000, "Test points for the PGD ratio.")
flags.DEFINE_integer("steps", 20, "PGD iterations k.")
flags.DEFINE_integer("repeats", 5, "Timed repeats (median reported).")
flags.DEFINE_integer("autoattack_points", 1000, "Test points for AutoAttack timing (0: skip).")
flags.DEFINE_string("model_source", None, "A .keras file or training run folder; default: train the demo "
                    "CNN for one epoch here.")
FLAGS = flags.FLAGS


def interleaved_medians(fns, repeats):
    """Median seconds of each function, timed in alternation so load on a shared machine hits all alike."""
    for fn in fns:
        fn()  # warm-up: tracing and first-call allocation are not what we measure
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, bucket in zip(fns, times):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return [statistics.median(bucket) for bucket in times]


def demo_model(x_train, y_train):
    if FLAGS.model_source:
        from tfrobust.export.source import load_source_model

        return load_source_model(FLAGS.model_source)[0]
    keras.utils.set_random_seed(0)
    model = models.build("small_cnn", (28, 28, 1), 10)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=128, epochs=1, verbose=0)
    return model


def main(argv):
    del argv
    (x_train, y_train), (x, y) = data.load_splits("fashion_mnist", test_size=max(FLAGS.points,
                                                                               FLAGS.autoattack_points))
    model = demo_model(x_train, y_train)
    model_fn = lambda images: model(images, training=False)
    images = tf.constant(x[:FLAGS.points])
    labels = tf.constant(y[:FLAGS.points].astype("int64"))
    k = FLAGS.steps

    @tf.function
    def gradients_only(images, labels):
        """k forward+backward passes in one compiled loop, nothing else (the lower bound for PGD-k)."""
        x = images
        for _ in tf.range(k):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, model_fn(x))
            x = x + 0.0 * tape.gradient(loss, x)  # a data dependency between steps, nothing more
        return x

    attack = PGD(eps=0.1, steps=k, restarts=1)
    t_grad, t_pgd = interleaved_medians([lambda: gradients_only(images, labels).numpy(),
                                         lambda: attack(model_fn, images, labels).numpy()], FLAGS.repeats)
    print(machine())
    print(f"(a) PGD-{k} on {FLAGS.points} points: {t_pgd:.3f} s; {k} × forward+backward in a compiled loop: "
          f"{t_grad:.3f} s; ratio {t_pgd / t_grad:.3f} (target ≤ 1.10)")

    if FLAGS.autoattack_points:
        from tfrobust.attacks.autoattack import AutoAttack

        n = FLAGS.autoattack_points
        clean = robust_accuracy(None, model_fn, x[:n], y[:n])["accuracy"]
        for version in ("fast", "standard"):
            result = robust_accuracy(AutoAttack(eps=0.1, version=version), model_fn, x[:n], y[:n], batch_size=250)
            print(f"(c) AutoAttack-{version} on {n} Fashion-MNIST points (ε=0.1): {result['seconds']:.1f} s, "
                  f"clean {100 * clean:.2f}% → robust {100 * result['accuracy']:.2f}%, counts {result['counts']}")


if __name__ == "__main__":
    app.run(main)
