"""AutoAttack's cost, counted: forward and backward passes per point of each component (docs/SCALING.md).

Trains the demo-sized CNN on Fashion-MNIST twice — normally (``standard``: almost every point falls to
APGD-CE, so the later components see few points) and with FGSM-RS adversarial training (``fgsm_rs``: about
half the points survive to APGD-T, FAB-T and Square) — then runs the standard AutoAttack
(``AutoAttack(version="standard")``: APGD-CE → APGD-T → FAB-T → Square-5000) on the first test points and
reads the attacks' own counters (``last_report``: per component its forward/backward ``counts``, summed
over chunks, and the points still ``robust``; ``last_counts`` the total). Per component it prints:

* points attacked (those standing when the component starts) and points still robust after it;
* forward and backward passes per attacked point and per clean-correct point, beside the component's
  budget per attacked point (the bound the attacks' docstrings give, reached by a point that survives
  the component; +1 forward for AutoAttack's re-evaluation of the returned point);
* forward-pass equivalents per attacked point (forward + 2 × backward: a backward pass costs about two
  forward passes in FLOPs);
* its wall time per attacked point, and wall ÷ floor, the floor being its counts priced at this CPU's unit
  costs (one compiled forward, one compiled forward+backward per example at the attack's batch size,
  median of ``--unit_repeats`` calls right before and right after the run).

It also counts the multiply-accumulates (MACs) of one forward pass per example — of this CNN and of the two
models docs/SCALING.md extrapolates to (WRN-28-10 on 32×32×3, Keras' ResNet-50 on 224×224×3) — by summing
the convolutions' and dense layers' MACs, and cross-checks them with TensorFlow's profiler (float ops of
the frozen inference graph: ≈ 2 × MACs plus bias adds, activations and pooling); and the FLOP rate this CPU
sustained during each AutoAttack run (2 × MACs × forward equivalents ÷ wall time).

  PYTHONPATH=$PWD .venv/bin/python benchmarks/autoattack_cost.py --out=docs/results/autoattack_cost.json

Counts do not depend on the machine; wall times do (the CPU flags are printed beside them). On a shared
machine the floor ratio is the meaningful time figure, not the seconds.
"""

import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from absl import flags

from tfrobust import cli, data, models
from tfrobust.attacks import AutoAttack
from tfrobust.attacks.apgd import APGD, APGDT
from tfrobust.attacks.fab import FABT
from tfrobust.attacks.square import Square
from tfrobust.evaluation import as_target, robust_accuracy
from tfrobust.training import AdversarialModel, OneCycle

from _machine import machine  # benchmarks/_machine.py (this script's folder)
from _unit_costs import UnitCosts  # benchmarks/_unit_costs.py

TRAININGS = ("standard", "fgsm_rs")

flags.DEFINE_integer("points", 300, "Test points AutoAttack is run on (the first of the test split).", lower_bound=1)
flags.DEFINE_float("eps", 0.1, "L∞ ε of AutoAttack and of FGSM-RS training.", lower_bound=0.0)
flags.DEFINE_integer("batch_size", 250, "AutoAttack's batch size (the reference's bs).", lower_bound=1)
flags.DEFINE_string("model", "small_cnn", "Model name.")
flags.DEFINE_multi_string("model_option", ["width=0.5", "downsample=stride"], "Builder option key=value "
                          "(default: the demo's CNN, trainers/configs/demo_fgsm_rs.flags).")
flags.DEFINE_integer("train_size", 30000, "Training images (the first of the training split).", lower_bound=1)
flags.DEFINE_integer("standard_epochs", 1, "Epochs of standard training.", lower_bound=1)
flags.DEFINE_integer("fgsm_rs_epochs", 2, "Epochs of FGSM-RS training (random start, step 1.25ε).",
                     lower_bound=1)
flags.DEFINE_multi_enum("trainings", list(TRAININGS), TRAININGS, "Which models to train and attack (repeatable).")
flags.DEFINE_integer("unit_repeats", 5, "Timed calls of each unit cost right before and right after every run.",
                     lower_bound=1)
flags.DEFINE_bool("reference_macs", True, "Also count the MACs of WRN-28-10 (32×32×3) and ResNet-50 "
                  "(224×224×3), built untrained (≈ 30 s).")
flags.DEFINE_string("out", None, "Write every figure as JSON to this file (docs/SCALING.md cites it).")
FLAGS = flags.FLAGS


# -- model arithmetic ----------------------------------------------------------------------------------
def _layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer


def layer_macs(model):
    """Multiply-accumulates of one forward pass of one example: the convolutions' (output positions ×
    kernel size × input channels per group × output channels; depthwise: × 1) and the dense layers'
    (inputs × units). Biases, normalisation, activations and pooling are left out (a few % at most)."""
    total = 0
    for layer in _layers(model):
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            out, kernel = layer.output.shape, layer.kernel.shape
            total += int(np.prod(out[1:])) * kernel[0] * kernel[1]
        elif isinstance(layer, keras.layers.Conv2D):
            out, kernel = layer.output.shape, layer.kernel.shape
            total += int(np.prod(out[1:-1])) * int(np.prod(kernel))
        elif isinstance(layer, keras.layers.Dense):
            total += int(np.prod(layer.kernel.shape))
    return total


def profiler_flops(model):
    """Float operations TensorFlow's profiler counts in the frozen inference graph of one example."""
    from tensorflow.python.framework.convert_to_constants import (  # pylint: disable=import-outside-toplevel
        convert_variables_to_constants_v2)

    function = tf.function(lambda images: model(images, training=False))
    concrete = function.get_concrete_function(tf.TensorSpec((1, *model.input_shape[1:]), tf.float32))
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    level = tf.get_logger().level
    tf.get_logger().setLevel("ERROR")  # the v1 profiler logs a deprecation warning per call
    try:
        profile = tf.compat.v1.profiler.profile(graph=convert_variables_to_constants_v2(concrete).graph,
                                                run_meta=tf.compat.v1.RunMetadata(), cmd="op", options=options)
    finally:
        tf.get_logger().setLevel(level)
    return int(profile.total_float_ops)


def macs_of(label, model):
    row = {"model": label, "params": int(model.count_params()), "macs": layer_macs(model),
           "profiler_flops": profiler_flops(model)}
    print(f"  {label}: {row['params']:,} parameters, {row['macs'] / 1e6:,.2f} M MACs per forward pass "
          f"(conv + dense), profiler {row['profiler_flops'] / 1e6:,.2f} M float ops "
          f"(= {row['profiler_flops'] / (2 * row['macs']):.3f} × 2 MACs)", flush=True)
    return row


def reference_macs():
    """MACs of the two models docs/SCALING.md extrapolates to, built untrained (no weights are loaded)."""
    rows = [macs_of("WRN-28-10, 32×32×3 (tfrobust wide_resnet depth=28 widen_factor=10)",
                    models.build("wide_resnet", (32, 32, 3), 10, depth=28, widen_factor=10))]
    keras.backend.clear_session()
    rows.append(macs_of("ResNet-50 v1, 224×224×3 (keras.applications.ResNet50, weights=None)",
                        keras.applications.ResNet50(weights=None)))
    keras.backend.clear_session()
    return rows


# -- training -------------------------------------------------------------------------------------------
def build():
    keras.utils.set_random_seed(0)
    return models.build(FLAGS.model, (28, 28, 1), 10, **cli.parse_options(FLAGS.model_option, "model_option"))


def train(kind, x, y):
    """A model trained by ``kind`` ("standard" or "fgsm_rs"): Adam with the one-cycle rate (peak 5e-3),
    batch 128, as trainers/configs/demo_fgsm_rs.flags; returns (model, training seconds)."""
    net = build()
    epochs = FLAGS.standard_epochs if kind == "standard" else FLAGS.fgsm_rs_epochs
    steps = -(-len(y) // 128) * epochs
    optimizer = keras.optimizers.Adam(OneCycle(5e-3, steps))
    if kind == "standard":
        trainer = net
        trainer.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    else:
        trainer = AdversarialModel(net, "fgsm_rs", eps=FLAGS.eps, step_size=1.25 * FLAGS.eps, seed=0,
                                   track_clean_accuracy=False, test_adversarial=False)
        trainer.compile(optimizer=optimizer)
    dataset = data.make_dataset(x, y, 128, shuffle=True, seed=0)
    start = time.perf_counter()
    trainer.fit(dataset, epochs=epochs, verbose=0, shuffle=False)  # the dataset shuffles itself
    return net, time.perf_counter() - start


# -- the counts -----------------------------------------------------------------------------------------
def budget(attack, num_classes):
    """(forward, backward) passes of ``attack`` on one point that survives it (the attacks' docstrings),
    plus AutoAttack's one forward pass re-evaluating the returned point."""
    if isinstance(attack, Square):
        return 1 + attack.restarts * (1 + attack.queries) + 1, 0
    if isinstance(attack, FABT):
        runs = min(attack.num_target_classes, num_classes - 1) * attack.restarts
        return 1 + 2 * runs * attack.steps + 1, runs * attack.steps
    if isinstance(attack, APGDT):
        runs = min(attack.num_target_classes, num_classes - 1) * attack.restarts
        return 1 + runs * (attack.steps + 1) + 1, runs * (attack.steps + 1)
    if isinstance(attack, APGD):
        return 1 + attack.restarts * (attack.steps + 1) + 1, attack.restarts * (attack.steps + 1)
    raise TypeError(f"no budget formula for {type(attack).__name__}")


def per(value, points):
    return value / points if points else None


def fmt(value, digits=1):
    return "—" if value is None else f"{value:,.{digits}f}"


def attack_model(kind, net, x, y, macs):
    """Standard AutoAttack on ``net`` with the counts per component; returns the JSON row."""
    target = as_target(net)
    units = UnitCosts(net, x, FLAGS.batch_size, FLAGS.unit_repeats)
    clean = int(robust_accuracy(None, target.logits_fn, x, y, batch_size=FLAGS.batch_size)["correct"].sum())
    attack = AutoAttack(eps=FLAGS.eps, version="standard", batch_size=FLAGS.batch_size)
    before = units.measure()
    start = time.perf_counter()
    result = robust_accuracy(attack, target.logits_fn, x, y, batch_size=FLAGS.batch_size)
    seconds = time.perf_counter() - start
    after = units.measure()
    t_forward = statistics.median(before[0] + after[0])
    t_both = statistics.median(before[1] + after[1])
    floor = lambda f, b: (f - b) * t_forward + b * t_both
    components, attacked = [], clean
    for step, (_, component) in zip(attack.last_report, attack.attacks):
        forward, backward = step["counts"].get("forward", 0), step["counts"].get("backward", 0)
        budget_forward, budget_backward = budget(component, 10)
        if forward > budget_forward * attacked or backward > budget_backward * attacked:
            # docs/SCALING.md's cost model rests on these bounds: a count above them is a bug to report.
            raise SystemExit(f"error: {step['attack']} counted {forward} forward / {backward} backward passes on "
                             f"{attacked} points, above its budget of {budget_forward} / {budget_backward} per point")
        components.append({
            "attack": step["attack"], "attacked": attacked, "robust_after": step["robust"],
            "forward": forward, "backward": backward,
            "forward_per_attacked": per(forward, attacked), "backward_per_attacked": per(backward, attacked),
            "forward_per_clean_correct": per(forward, clean), "backward_per_clean_correct": per(backward, clean),
            "forward_equivalents_per_attacked": per(forward + 2 * backward, attacked),
            "budget_forward": budget_forward, "budget_backward": budget_backward,
            "budget_forward_equivalents": budget_forward + 2 * budget_backward,
            "seconds": step["seconds"], "seconds_per_attacked": per(step["seconds"], attacked),
            "floor_seconds": floor(forward, backward),
            "wall_over_floor": step["seconds"] / floor(forward, backward) if forward else None})
        attacked = step["robust"]
    total_forward, total_backward = attack.last_counts["forward"], attack.last_counts["backward"]
    equivalents = total_forward + 2 * total_backward
    row = {"training": kind, "points": len(y), "clean_correct": clean, "robust": attacked,
           "robust_accuracy": result["accuracy"], "seconds": seconds,
           "seconds_per_point": seconds / len(y), "seconds_per_clean_correct": per(seconds, clean),
           "forward": total_forward, "backward": total_backward,
           "forward_per_clean_correct": per(total_forward, clean),
           "backward_per_clean_correct": per(total_backward, clean),
           "forward_equivalents_per_clean_correct": per(equivalents, clean),
           "unit_seconds_forward": t_forward, "unit_seconds_forward_backward": t_both,
           "unit_ratio_forward_backward_over_forward": t_both / t_forward,
           "floor_seconds": floor(total_forward, total_backward),
           "wall_over_floor": seconds / floor(total_forward, total_backward),
           "sustained_gflops": 2 * macs * equivalents / seconds / 1e9, "components": components}
    print(f"\n{kind}: clean {clean}/{len(y)}, robust after AutoAttack {attacked}/{len(y)} "
          f"({100 * result['accuracy']:.1f} %), {seconds:.1f} s ({seconds / len(y):.2f} s per point); "
          f"unit costs {1e6 * t_forward:.1f} µs forward, {1e6 * t_both:.1f} µs forward+backward per example "
          f"(batch {len(units.images)}, ratio {t_both / t_forward:.2f}); wall ÷ floor {row['wall_over_floor']:.2f}; "
          f"sustained {row['sustained_gflops']:.1f} GFLOP/s", flush=True)
    print("  component | attacked → robust | fwd / bwd per attacked point | budget per attacked (fwd / bwd) | "
          "fwd / bwd per clean-correct point | fwd-equivalents per attacked | s per attacked | wall ÷ floor")
    for c in components:
        print(f"  {c['attack']:8s} | {c['attacked']:4d} → {c['robust_after']:4d} | "
              f"{fmt(c['forward_per_attacked'])} / {fmt(c['backward_per_attacked'])} | "
              f"{c['budget_forward']:,} / {c['budget_backward']:,} | "
              f"{fmt(c['forward_per_clean_correct'])} / {fmt(c['backward_per_clean_correct'])} | "
              f"{fmt(c['forward_equivalents_per_attacked'], 0)} | {fmt(c['seconds_per_attacked'], 3)} | "
              f"{fmt(c['wall_over_floor'], 2)}")
    print(f"  total    | {clean:4d} → {attacked:4d} | per clean-correct point: "
          f"{fmt(row['forward_per_clean_correct'])} fwd / {fmt(row['backward_per_clean_correct'])} bwd = "
          f"{fmt(row['forward_equivalents_per_clean_correct'], 0)} forward equivalents", flush=True)
    return row


def main(argv):
    del argv
    (x_train, y_train), (x, y) = data.load_splits("fashion_mnist", train_size=FLAGS.train_size,
                                                  test_size=FLAGS.points)
    y_train, y = y_train.astype(np.int64), y.astype(np.int64)
    print(machine(), flush=True)
    print(f"TensorFlow {tf.__version__}; AutoAttack standard, L∞ ε = {FLAGS.eps}, {len(y)} Fashion-MNIST test "
          f"points, batch {FLAGS.batch_size}; {FLAGS.model} {' '.join(FLAGS.model_option)}", flush=True)
    print("MACs per forward pass of one example:")
    cnn = macs_of(f"{FLAGS.model} {' '.join(FLAGS.model_option)}, 28×28×1", build())
    report = {"machine": machine(), "tensorflow": tf.__version__,
              "settings": {name: FLAGS[name].value for name in (
                  "points", "eps", "batch_size", "model", "model_option", "train_size", "standard_epochs",
                  "fgsm_rs_epochs", "unit_repeats")},
              "macs": [cnn] + (reference_macs() if FLAGS.reference_macs else []), "trainings": {}}
    for kind in TRAININGS:
        if kind not in FLAGS.trainings:
            continue
        net, train_seconds = train(kind, x_train, y_train)
        print(f"\ntrained {kind} in {train_seconds:.0f} s", flush=True)
        report["trainings"][kind] = {"train_seconds": train_seconds, **attack_model(kind, net, x, y, cnn["macs"])}
        if FLAGS.out:  # after every model, so a long run leaves what it measured
            with open(FLAGS.out, "w", encoding="utf-8") as handle:
                json.dump(report, handle, indent=1)
    if FLAGS.out:
        print(f"\nwrote {FLAGS.out}")


if __name__ == "__main__":
    cli.run(main)  # bad flags: one error line, exit 2
