"""AutoAttack fidelity and speed figures of issue 11, each measured in one run on one model and data.

(1) Softmax outputs: APGD-T (standard: 100 steps, 9 targets) on a 10-class linear Fashion-MNIST model
    ending in a softmax (its trained weights ×100: a confident model, same predictions), attacked on
    its probabilities (before) and through ``as_target``, which takes the pre-softmax logits (after).
(2) Square-5000 alone on the demo-sized CNN: an eager TF callable per query (before) vs the callable
    compiled once by ``score_based._callable`` (after); ratio before/after.
(3) AutoAttack standard on the same CNN: survivor batching (now: every standing point, survivors
    re-chunked into full batches) vs the previous engine (one call per chunk of ``batch_size``
    clean-correct points), both with compiled queries (``--eager_before`` adds the previous engine with
    eager Square queries). The engines run alternately, ``--rounds`` times (A B, B A, A B, …), and the
    wall-time ratio is the median of the per-round ratios: on a shared machine the load drifts, and only
    ratios of runs taken side by side mean something.
(4) AutoAttack's wall time ÷ its floor, per run: the forward and backward passes it counts times the
    unit cost of one compiled forward and one compiled forward+backward per example at the attack's
    batch size, measured right before and right after that run (median of both). Target ≤ 1.15.

  .venv/bin/python benchmarks/autoattack_fidelity.py --sections=3,4 --points=100 --batch_size=32 --eps=0.08

Speed figures depend on the CPU (print its flags beside them) and on load: on a shared machine run
the sections you need (``--sections=3,4``) and quote only ratios.
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

from _machine import machine  # benchmarks/_machine.py (this script's folder)
from _unit_costs import UnitCosts  # benchmarks/_unit_costs.py

flags.DEFINE_integer("points", 500, "Test points for AutoAttack (section 3, 4).")
flags.DEFINE_integer("square_points", 100, "Test points for Square alone (section 2).")
flags.DEFINE_integer("softmax_points", 1000, "Test points for the softmax model (section 1).")
flags.DEFINE_integer("softmax_epochs", 5, "Epochs of the linear softmax model.")
flags.DEFINE_float("softmax_scale", 100.0, "Factor on its trained weights and bias: a confident model with the "
                   "same predictions, whose probabilities saturate in float32 (1: as trained).")
flags.DEFINE_float("eps", 0.03, "L∞ ε for the CNN (small enough that APGD-T, FAB-T and Square do work).")
flags.DEFINE_integer("train_points", 10000, "Training points for the one-epoch models.")
flags.DEFINE_integer("batch_size", 250, "AutoAttack's batch size (the reference's bs).")
flags.DEFINE_bool("eager_before", False, "Section 3 also runs the previous engine with eager Square queries "
                  "(slow; section 2 measures that effect alone).")
flags.DEFINE_integer("rounds", 3, "Rounds of sections 3/4: each runs every engine once, the order alternating "
                     "(A B, B A, A B, …) so that a drifting load hits both alike; ratios are medians over rounds.")
flags.DEFINE_integer("unit_repeats", 5, "Timed calls of each unit cost right before and right after every run.")
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


def engine_run(label, model, target, xs, ys, units):
    """One AutoAttack standard run of engine ``label`` between two unit-cost measurements."""
    attack = AutoAttack(eps=FLAGS.eps, version="standard", batch_size=FLAGS.batch_size)
    eager = label == "before"
    if eager:
        eager_queries(attack.attacks[-1][1])
    if label != "after":  # the previous engine: one AutoAttack call per chunk of the evaluation's batches
        attack.batches_itself = False
    craft = (lambda images: model(images, training=False)) if eager else target.logits_fn
    before = units.measure()
    start = time.perf_counter()
    result = robust_accuracy(attack, craft, xs, ys, batch_size=FLAGS.batch_size)
    seconds = time.perf_counter() - start
    after = units.measure()
    t_forward = statistics.median(before[0] + after[0])
    t_both = statistics.median(before[1] + after[1])
    forward, backward = result["counts"]["forward"], result["counts"]["backward"]
    floor = (forward - backward) * t_forward + backward * t_both
    print(f"  {label}: {seconds:.1f} s, robust {100 * result['accuracy']:.2f}%, {forward} forward / {backward} "
          f"backward; unit costs {1e6 * t_forward:.1f} / {1e6 * t_both:.1f} µs per example (forward / "
          f"forward+backward, batch {len(units.images)}, medians of {2 * units.repeats} calls before+after: "
          f"forward {1e6 * statistics.median(before[0]):.1f}→{1e6 * statistics.median(after[0]):.1f}); "
          f"floor {floor:.1f} s; wall ÷ floor {seconds / floor:.2f}", flush=True)
    return {"seconds": seconds, "accuracy": result["accuracy"], "floor_ratio": seconds / floor}


def main(argv):
    del argv
    n = max(FLAGS.points, FLAGS.square_points, FLAGS.softmax_points)
    (x_train, y_train), (x, y) = data.load_splits("fashion_mnist", test_size=n)
    x_train, y_train = x_train[:FLAGS.train_points], y_train[:FLAGS.train_points]
    y = y.astype(np.int64)
    print(machine(), flush=True)
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
        xs, ys = x[:FLAGS.points], y[:FLAGS.points]
        units = UnitCosts(model, xs, FLAGS.batch_size, FLAGS.unit_repeats)
        engines = ["after"]
        if "3" in FLAGS.sections:
            engines += ["per-chunk"] + (["before"] if FLAGS.eager_before else [])
        print(f"(3)/(4) AutoAttack standard, L∞ ε={FLAGS.eps}, {len(ys)} points, batch {FLAGS.batch_size}; engines: "
              "after = survivor batching (now), per-chunk = one call per chunk of the evaluation (previous "
              "engine, compiled queries)" + (", before = per-chunk with eager Square queries" if FLAGS.eager_before
                                              else "") + f"; {FLAGS.rounds} rounds, order alternating", flush=True)
        runs = {label: [] for label in engines}
        for r in range(FLAGS.rounds):
            for label in engines if r % 2 == 0 else engines[::-1]:
                runs[label].append(engine_run(label, model, target, xs, ys, units))
        if "3" in FLAGS.sections:
            for label in engines[1:]:
                ratios = [old["seconds"] / new["seconds"] for old, new in zip(runs[label], runs["after"])]
                print(f"(3) wall-time ratio {label}/after per round {', '.join(f'{v:.2f}' for v in ratios)}; "
                      f"median {statistics.median(ratios):.2f}x (> 1: survivor batching faster)")
        if "4" in FLAGS.sections:
            for label in engines:
                ratios = [run["floor_ratio"] for run in runs[label]]
                print(f"(4) AutoAttack wall ÷ floor, {label}: per run {', '.join(f'{v:.2f}' for v in ratios)}; "
                      f"median {statistics.median(ratios):.2f} (target ≤ 1.15 for after)")

if __name__ == "__main__":
    app.run(main)
