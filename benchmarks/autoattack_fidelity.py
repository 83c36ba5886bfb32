"""AutoAttack fidelity and speed figures of issue 11, each measured in one run on one model and data.

(1) Softmax outputs: APGD-T (standard: 100 steps, 9 targets) on a 10-class linear Fashion-MNIST model
    ending in a softmax (its trained weights ×100: a confident model, same predictions), attacked on
    its probabilities (before) and through ``as_target``, which takes the pre-softmax logits (after).
(2) Square-5000 alone on the demo-sized CNN: an eager TF callable per query (before) vs the callable
    compiled once by ``score_based._callable`` (after); ratio before/after.
(3) AutoAttack standard on the same CNN: the previous engine (called per chunk of 250 clean-correct
    points, eager Square queries) vs now (every standing point, survivors re-chunked into full batches,
    compiled queries), and survivor batching alone (both compiled); robust accuracies and wall-time ratios.
(4) AutoAttack's wall time ÷ its floor: the forward and backward passes it counts times the unit cost
    of one compiled forward and one compiled forward+backward per example at the batch size, measured
    in this run. Target ≤ 1.15.

  .venv/bin/python benchmarks/autoattack_fidelity.py [--points=500] [--eps=0.03] [--square_points=100]

Speed figures depend on the CPU (print its flags beside them) and on load: on a shared machine run
the sections you need (``--sections=2,3``).
"""

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

from tfrobust import data, models
from tfrobust.attacks import APGDT, AutoAttack, Square
from tfrobust.evaluation import as_target, robust_accuracy

flags.DEFINE_integer("points", 500, "Test points for AutoAttack (section 3, 4).")
flags.DEFINE_integer("square_points", 100, "Test points for Square alone (section 2).")
flags.DEFINE_integer("softmax_points", 1000, "Test points for the softmax model (section 1).")
flags.DEFINE_integer("softmax_epochs", 5, "Epochs of the linear softmax model.")
flags.DEFINE_float("softmax_scale", 100.0, "Factor on its trained weights and bias: a confident model with the "
                   "same predictions, whose probabilities saturate in float32 (1: as trained).")
flags.DEFINE_float("eps", 0.03, "L∞ ε for the CNN (small enough that APGD-T, FAB-T and Square do work).")
flags.DEFINE_integer("train_points", 10000, "Training points for the one-epoch models.")
flags.DEFINE_integer("batch_size", 250, "AutoAttack's batch size (the reference's bs).")
flags.DEFINE_bool("eager_before", True, "Section 3 also runs the previous engine with eager Square queries "
                  "(slow; section 2 measures that effect alone).")
flags.DEFINE_list("sections", ["1", "2", "3", "4"], "Which sections to run.")
FLAGS = flags.FLAGS


def train(model, x, y, epochs=1):
    keras.utils.set_random_seed(0)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=False if model.layers[-1]
                                                                     .get_config().get("activation") == "softmax"
                                                                     else True), metrics=["accuracy"])
    model.fit(x, y, batch_size=128, epochs=epochs, verbose=0)
    return model


def softmax_section(x_train, y_train, x, y):
    keras.utils.set_random_seed(0)
    model = train(keras.Sequential([keras.Input(x.shape[1:]), keras.layers.Flatten(),
                                    keras.layers.Dense(10, activation="softmax")]), x_train, y_train,
                  epochs=FLAGS.softmax_epochs)
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([kernel * FLAGS.softmax_scale, bias * FLAGS.softmax_scale])
    probabilities = tf.function(lambda images: model(images, training=False))
    attack = lambda: APGDT(eps=0.08, steps=100, num_target_classes=9)
    before = robust_accuracy(attack(), probabilities, x, y)["accuracy"]
    after = robust_accuracy(attack(), as_target(model).logits_fn, x, y)["accuracy"]
    print(f"(1) APGD-T, L∞ ε=0.08, {len(y)} points, 10-class linear softmax model ({FLAGS.softmax_epochs} epochs, "
          f"weights ×{FLAGS.softmax_scale:g}): on probabilities "
          f"{100 * before:.1f}% (before), on its pre-softmax logits {100 * after:.1f}% (after)")


def eager_queries(square):
    """The previous behaviour: a TF callable called eagerly per query."""
    square._callable = lambda fn: fn  # pylint: disable=protected-access
    return square


def unit_costs(model, x, batch_size=250, repeats=5):
    """Seconds per example of one compiled forward and one compiled forward+backward at ``batch_size``."""
    images = tf.constant(x[:batch_size])
    labels = tf.constant(np.zeros(len(images), np.int64))
    forward = tf.function(lambda v: model(v, training=False))

    @tf.function
    def forward_backward(v):
        with tf.GradientTape() as tape:
            tape.watch(v)
            loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, model(v, training=False))
        return tape.gradient(loss, v)

    costs = []
    for fn in (forward, forward_backward):
        fn(images).numpy()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn(images).numpy()
            times.append(time.perf_counter() - start)
        costs.append(statistics.median(times) / len(images))
    return costs


def main(argv):
    del argv
    n = max(FLAGS.points, FLAGS.square_points, FLAGS.softmax_points)
    (x_train, y_train), (x, y) = data.load_splits("fashion_mnist", test_size=n)
    x_train, y_train = x_train[:FLAGS.train_points], y_train[:FLAGS.train_points]
    y = y.astype(np.int64)
    if "1" in FLAGS.sections:
        softmax_section(x_train, y_train, x[:FLAGS.softmax_points], y[:FLAGS.softmax_points])
    keras.utils.set_random_seed(0)
    model = train(models.build("small_cnn", (28, 28, 1), 10), x_train, y_train)
    eager_fn = lambda images: model(images, training=False)
    target = as_target(model)
    if "2" in FLAGS.sections:
        m = FLAGS.square_points
        before = robust_accuracy(eager_queries(Square(eps=FLAGS.eps)), eager_fn, x[:m], y[:m], batch_size=250)
        after = robust_accuracy(Square(eps=FLAGS.eps), target.logits_fn, x[:m], y[:m], batch_size=250)
        print(f"(2) Square-5000, L∞ ε={FLAGS.eps}, {m} points: eager {before['seconds']:.1f} s "
              f"({100 * before['accuracy']:.1f}%), compiled {after['seconds']:.1f} s ({100 * after['accuracy']:.1f}%); "
              f"ratio {before['seconds'] / after['seconds']:.2f}x")
    if "3" in FLAGS.sections or "4" in FLAGS.sections:
        m = FLAGS.points
        xs, ys = x[:m], y[:m]
        runs = {}
        variants = (("before", True, True), ("per-chunk, compiled", True, False), ("after", False, False))
        if not FLAGS.eager_before:
            variants = variants[1:]
        for label, per_chunk, eager in variants if "3" in FLAGS.sections else variants[-1:]:
            attack = AutoAttack(eps=FLAGS.eps, version="standard", batch_size=FLAGS.batch_size)
            if eager:
                eager_queries(attack.attacks[-1][1])
            craft = eager_fn if eager else target.logits_fn
            if per_chunk:  # the previous engine: one AutoAttack call per chunk of the evaluation's batches
                attack.batches_itself = False
            start = time.perf_counter()
            result = robust_accuracy(attack, craft, xs, ys, batch_size=FLAGS.batch_size)
            runs[label] = (time.perf_counter() - start, result)
            print(f"(3) AutoAttack standard, {label}: {runs[label][0]:.1f} s, robust {100 * result['accuracy']:.2f}%, "
                  f"counts {result['counts']}")
        if "3" in FLAGS.sections:
            t = {label: runs[label][0] for label in runs}
            if "before" in t:
                print(f"(3) wall-time ratio before/after {t['before'] / t['after']:.2f}x")
            print("(3) survivor batching alone (per-chunk/after, both compiled) "
                  f"{t['per-chunk, compiled'] / t['after']:.2f}x")
        if "4" in FLAGS.sections:
            seconds, result = runs["after"]
            t_forward, t_both = unit_costs(model, xs, FLAGS.batch_size)
            forward, backward = result["counts"]["forward"], result["counts"]["backward"]
            floor = (forward - backward) * t_forward + backward * t_both
            print(f"(4) AutoAttack floor: {forward} forward ({1e6 * t_forward:.1f} µs each) and {backward} "
                  f"forward+backward ({1e6 * t_both:.1f} µs each) = {floor:.1f} s; wall {seconds:.1f} s; "
                  f"ratio {seconds / floor:.2f} (target ≤ 1.15)")


if __name__ == "__main__":
    app.run(main)
