"""Our PGD against the TF peers at the same ε, steps and step size, on the same model and points.

(b) PGD-20 L∞ (random start, or none with --norandom_start): tfrobust (fp32 and mixed_bfloat16), IBM ART
    (TensorFlowV2Classifier PGD), CleverHans 4 (tf2 projected_gradient_descent) and Foolbox 3 (LinfPGD).
    Prints robust accuracy and the median wall time of each, and our time ratio to each peer.
    Needs `pip install -r requirements-bench.txt`.

  .venv/bin/python benchmarks/attack_peers.py [--points=1000] [--eps=0.1] [--steps=20] [--step_size=0.01]
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
from tfrobust.attacks import PGD

from _machine import machine  # benchmarks/_machine.py (this script's folder)

flags.DEFINE_integer("points", 1000, "Fashion-MNIST test points.")
flags.DEFINE_float("eps", 0.1, "L∞ budget.")
flags.DEFINE_integer("steps", 20, "PGD iterations.")
flags.DEFINE_float("step_size", 0.01, "Absolute PGD step.")
flags.DEFINE_integer("repeats", 3, "Timed repeats (median reported).")
flags.DEFINE_bool("random_start", True, "Uniform random start in the ε-ball (each library draws its own; "
                  "--norandom_start makes all four run the same deterministic iteration).")
FLAGS = flags.FLAGS


def timed(fn, repeats):
    result = fn()  # warm-up (tracing)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return np.asarray(result), statistics.median(times)


def train_model(x_train, y_train, precision="float32"):
    keras.mixed_precision.set_global_policy(precision)
    try:
        keras.utils.set_random_seed(0)
        return models.build("small_cnn", (28, 28, 1), 10)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def main(argv):
    del argv
    (x_train, y_train), (x, y) = data.load_splits("fashion_mnist", train_size=20000, test_size=FLAGS.points)
    model = train_model(x_train, y_train)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train, y_train, batch_size=128, epochs=1, verbose=0)
    bf16 = train_model(x_train, y_train, "mixed_bfloat16")
    bf16.set_weights(model.get_weights())
    eps, steps, step = FLAGS.eps, FLAGS.steps, FLAGS.step_size
    labels = y.astype(np.int64)

    def accuracy(x_adv, net=model):
        return float(np.mean(np.argmax(net(x_adv, training=False).numpy(), axis=1) == labels))

    results = {}
    ours = PGD(eps=eps, steps=steps, step_size=step, random_start=FLAGS.random_start, seed=0)
    model_fn = lambda images: model(images, training=False)
    x_adv, seconds = timed(lambda: ours(model_fn, x, labels).numpy(), FLAGS.repeats)
    results["tfrobust fp32"] = (accuracy(x_adv), seconds)
    ours_bf16 = PGD(eps=eps, steps=steps, step_size=step, random_start=FLAGS.random_start, seed=0)
    bf16_fn = lambda images: bf16(images, training=False)
    x_adv, seconds = timed(lambda: ours_bf16(bf16_fn, x, labels).numpy(), FLAGS.repeats)
    results["tfrobust mixed_bfloat16"] = (accuracy(x_adv), seconds)

    from cleverhans.tf2.attacks.projected_gradient_descent import projected_gradient_descent

    x_adv, seconds = timed(lambda: projected_gradient_descent(
        model_fn, tf.constant(x), eps, step, steps, np.inf, clip_min=0.0, clip_max=1.0, y=tf.constant(labels),
        rand_init=FLAGS.random_start, sanity_checks=False).numpy(), FLAGS.repeats)
    results["CleverHans 4"] = (accuracy(x_adv), seconds)

    import foolbox

    fmodel = foolbox.TensorFlowModel(model, bounds=(0, 1))
    fb_attack = foolbox.attacks.LinfPGD(abs_stepsize=step, steps=steps, random_start=FLAGS.random_start)
    x_adv, seconds = timed(lambda: fb_attack(fmodel, tf.constant(x), tf.constant(labels), epsilons=eps)[1].numpy(),
                           FLAGS.repeats)
    results["Foolbox 3"] = (accuracy(x_adv), seconds)

    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import TensorFlowV2Classifier

    classifier = TensorFlowV2Classifier(model=model, nb_classes=10, input_shape=(28, 28, 1), clip_values=(0.0, 1.0),
                                        loss_object=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    art_attack = ProjectedGradientDescent(classifier, norm=np.inf, eps=eps, eps_step=step, max_iter=steps,
                                          num_random_init=int(FLAGS.random_start), batch_size=len(x), verbose=False)
    x_adv, seconds = timed(lambda: art_attack.generate(x, np.eye(10)[labels]), FLAGS.repeats)
    results["IBM ART"] = (accuracy(x_adv), seconds)

    clean = accuracy(x)
    print(machine())
    print(f"(b) PGD-{steps} L∞ ε={eps} step {step}, random start {FLAGS.random_start}, {len(x)} Fashion-MNIST "
          f"points, clean {100 * clean:.2f}%")
    print("| implementation | robust acc. (%) | median time (s) | tfrobust fp32 speed-up | tfrobust bf16 speed-up |")
    print("|---|---|---|---|---|")
    ours_fp32, ours_bf16_t = results["tfrobust fp32"][1], results["tfrobust mixed_bfloat16"][1]
    for name, (acc, seconds) in results.items():
        print(f"| {name} | {100 * acc:.2f} | {seconds:.2f} | {seconds / ours_fp32:.2f}× | "
              f"{seconds / ours_bf16_t:.2f}× |")


if __name__ == "__main__":
    app.run(main)
