"""EVPNet components on a Fashion-MNIST subset — a SMOKE RESULT, NOT a reproduction.

The EVPNet paper's Table 1 ablation (SE-ResNet-20 on CIFAR-10, 160 epochs of normal training) shrunk to
what a shared 2-core CPU runs in minutes: a ResNet with one basic block per stage and widths 16-32-64
("ResNet-8", the SE-ResNet-20 layout with 1 instead of 3 blocks per stage), trained normally for a few
epochs on the first ``--train_size`` training images, evaluated on the first ``--points`` test images:

  clean accuracy, FGSM and PGD-20 (step 2.5·ε/20, uniform random start) at ε = ``--eps`` (L∞), plus two
  gradient-masking probes: PGD-20 images crafted on the SE baseline and *transferred* to each variant (a
  transfer attack beating white-box PGD means the white-box gradients are poor), the per-point worst case
  of white-box and transfer PGD, and the share of points with an all-zero input gradient,

for the variants of ``tfrobust.models.evp_resnet`` (``pdog``/``trelu``/``pnl`` switches; all off is the
SE-ResNet baseline). Then, per variant, the analyses of ``tfrobust.evaluation.analyses``:

  * error amplification γ per residual block, clean vs PGD-20 images (EVPNet fig. 4),
  * unchanged-prediction ratio under PGD-20 at several ε (feature-map paper Table II),
  * per-layer spectral norms (ConvNorm report fig. 1),

each written as JSON, with one PNG per analysis comparing the variants. Also writes ``results.json``
(everything, with training logs and seconds) and ``table.md`` (the Markdown table of
docs/results/components.md).

  .venv/bin/python benchmarks/evp_smoke.py --out_dir=docs/results/components     # ≈ 15–20 CPU minutes
  .venv/bin/python benchmarks/evp_smoke.py --variants=se,evp --train_size=2000 --points=200   # quicker
"""

import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from absl import flags

from _machine import machine  # benchmarks/_machine.py (this script's folder)
from tfrobust import data, models
from tfrobust.attacks import FGSM, PGD
from tfrobust.cli import run
from tfrobust.errors import TfrobustError
from tfrobust.evaluation import analyses
from tfrobust.evaluation.robustness import robust_accuracy
from tfrobust.evaluation.sanity import gradient_health
from tfrobust.training.recipe import make_optimizer, make_schedule

#: Variant name → (pdog, trelu, pnl), the rows of EVPNet Table 1 we can afford (all off = SE-ResNet).
VARIANTS = {
    "se": (False, False, False),
    "evp": (True, True, True),
    "pdog": (True, False, False),
    "pdog+pnl": (True, False, True),
    "pdog+trelu": (True, True, False),
    "pnl": (False, False, True),
}

flags.DEFINE_string("out_dir", "runs/evp_smoke", "Where the JSON files, PNGs and table.md go.")
flags.DEFINE_list("variants", list(VARIANTS), f"Variants to train, from {', '.join(VARIANTS)}.")
flags.DEFINE_integer("train_size", 5000, "First N Fashion-MNIST training images.", lower_bound=1)
flags.DEFINE_integer("points", 300, "First N test images for clean / FGSM / PGD accuracy.", lower_bound=1)
flags.DEFINE_integer("analysis_points", 64, "First N test images for error amplification and the "
                     "unchanged-prediction ratio.", lower_bound=1)
flags.DEFINE_integer("epochs", 3, "Training epochs (normal training).", lower_bound=1)
flags.DEFINE_enum("optimizer", "adam", ["adam", "sgd"], "Optimizer (SGD with momentum 0.9).")
flags.DEFINE_float("learning_rate", 2e-3, "Initial learning rate (cosine decay to 0).")
flags.DEFINE_float("weight_decay", 0.0, "Decoupled weight decay.")
flags.DEFINE_float("eps", 0.1, "L∞ radius of FGSM / PGD-20 (image units).", lower_bound=0.0)
flags.DEFINE_list("ratio_eps", ["0", "0.05", "0.1"], "ε values of the unchanged-prediction ratio.")
flags.DEFINE_list("stage_widths", ["16", "32", "64"], "Channels per stage (one basic block each).")
flags.DEFINE_string("trelu_mode", "block", "tReLU threshold granularity: block or channel.")
flags.DEFINE_integer("seed", 0, "Seed of weights, shuffling and attacks.")
FLAGS = flags.FLAGS


def build(variant):
    pdog, trelu, pnl = VARIANTS[variant]
    widths = [int(w) for w in FLAGS.stage_widths]
    return models.build("evp_resnet", (28, 28, 1), 10, pdog=pdog, trelu=trelu, pnl=pnl, trelu_mode=FLAGS.trelu_mode,
                        stage_blocks=[1] * len(widths), stage_widths=widths)


def train(net, x_train, y_train):
    """Normal training: ``--optimizer`` at ``--learning_rate`` with a cosine schedule, batch 128.

    Adam by default: with SGD 0.05 / momentum 0.9 / wd 5e-4 (the demo recipe) and 3 epochs, the PNL variants
    stay far from converged (measured: full EVP 24 % clean vs 76 % for SE), because PNL's unit-norm,
    non-negative features need large classifier weights before the logits separate; Adam grows them faster.
    """
    batch = 128
    steps = -(-len(x_train) // batch)
    rate = make_schedule("cosine", FLAGS.learning_rate, steps_per_epoch=steps, epochs=FLAGS.epochs)
    net.compile(optimizer=make_optimizer(FLAGS.optimizer, rate, momentum=0.9, weight_decay=FLAGS.weight_decay),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    dataset = data.make_dataset(x_train, y_train, batch, shuffle=True, seed=FLAGS.seed)
    start = time.perf_counter()
    history = net.fit(dataset, epochs=FLAGS.epochs, verbose=2)
    return time.perf_counter() - start, {k: [round(float(v), 4) for v in vals] for k, vals in history.history.items()}


def evaluate_variant(variant, splits, out_dir, transfer):
    """Trains and evaluates one variant; ``transfer`` holds the SE baseline's PGD images once it has run."""
    (x_train, y_train), (x, y) = splits
    keras.utils.set_random_seed(FLAGS.seed)
    net = build(variant)
    train_seconds, logs = train(net, x_train, y_train)
    fn = lambda images: net(images, training=False)
    eps = FLAGS.eps
    pgd = PGD(eps=eps, steps=20, seed=FLAGS.seed)
    start = time.perf_counter()
    row = {"variant": variant, "components": dict(zip(("pdog", "trelu", "pnl"), VARIANTS[variant])),
           "params": int(net.count_params()), "train_seconds": round(train_seconds, 1), "train_logs": logs,
           "clean": robust_accuracy(None, fn, x, y, batch_size=250)["accuracy"],
           "fgsm": robust_accuracy(FGSM(eps=eps), fn, x, y, batch_size=250)["accuracy"]}
    white_box = robust_accuracy(pgd, fn, x, y, batch_size=250)
    row["pgd20"] = white_box["accuracy"]
    if variant == "se":  # PGD images on every point (not only the correct ones) for the transfer probe
        transfer["x_adv"] = np.concatenate([np.asarray(pgd(fn, x[i:i + 250], y[i:i + 250]))
                                            for i in range(0, len(x), 250)])
    if "x_adv" in transfer:
        transferred = analyses_predict(net, transfer["x_adv"]) == y
        row["transfer_pgd20_from_se"] = float(np.mean(transferred))
        row["worst_case"] = float(np.mean(white_box["correct"] & transferred))
    row["zero_gradient_share"] = gradient_health(net, x, y)["zero"]
    n = FLAGS.analysis_points
    # γ needs the adversarial images themselves: PGD-20 on the first n points with their true labels.
    x_adv = np.asarray(pgd(fn, x[:n], y[:n]))
    gamma = analyses.error_amplification(net, x[:n], x_adv)
    ratio = analyses.unchanged_prediction_ratio(
        net, x[:n], [float(e) for e in FLAGS.ratio_eps],
        attack_factory=lambda e: PGD(eps=e, steps=20, seed=FLAGS.seed))
    norms = analyses.spectral_norms(net)
    for result in (gamma, ratio, norms):
        result["model"] = variant
        analyses.write_json(result, os.path.join(out_dir, f"{result['analysis']}_{variant.replace('+', '_')}.json"))
    row["eval_seconds"] = round(time.perf_counter() - start, 1)
    row["analyses"] = {"gamma": gamma["gamma"], "unchanged_ratio": dict(zip(ratio["epsilons"], ratio["ratio"])),
                       "max_spectral_norm": max(r["spectral_norm"] for r in norms["layers"])}
    print(variant, json.dumps({k: v for k, v in row.items() if k != "train_logs"}), flush=True)
    return row, {"error_amplification": gamma, "unchanged_prediction_ratio": ratio, "spectral_norms": norms}


def analyses_predict(net, images, batch_size=250):
    return np.concatenate([np.argmax(np.asarray(net(images[i:i + batch_size], training=False)), axis=-1)
                           for i in range(0, len(images), batch_size)])


def table(rows):
    tick = lambda on: "✓" if on else ""
    pct = lambda v: "" if v is None else f"{100 * v:.1f}"
    lines = [f"| variant | +pDoG | +tReLU | +PNL | params | clean | FGSM ε={FLAGS.eps:g} | PGD-20 ε={FLAGS.eps:g} | "
             f"PGD-20 transfer from se | worst case | zero-grad % | γ last block | unchanged @ ε={FLAGS.eps:g} | "
             "train s |",
             "|---|:-:|:-:|:-:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for row in rows:
        c = row["components"]
        ratio = row["analyses"]["unchanged_ratio"].get(float(FLAGS.eps))
        lines.append(f"| {row['variant']} | {tick(c['pdog'])} | {tick(c['trelu'])} | {tick(c['pnl'])} | "
                     f"{row['params']:,} | {100 * row['clean']:.1f} | {100 * row['fgsm']:.1f} | "
                     f"{pct(row['pgd20'])} | {pct(row.get('transfer_pgd20_from_se'))} | "
                     f"{pct(row.get('worst_case'))} | {pct(row['zero_gradient_share'])} | "
                     f"{row['analyses']['gamma'][-1]:.3f} | {pct(ratio)} | {row['train_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def write_summary(rows, results, out_dir, seconds):
    for name, plot in (("error_amplification", analyses.plot_error_amplification),
                       ("unchanged_prediction_ratio", analyses.plot_unchanged_prediction),
                       ("spectral_norms", analyses.plot_spectral_norms)):
        plot({v: r[name] for v, r in results.items()}, os.path.join(out_dir, f"{name}.png"))
    setup = {"dataset": "fashion_mnist", "train_size": FLAGS.train_size, "points": FLAGS.points,
             "analysis_points": FLAGS.analysis_points, "epochs": FLAGS.epochs, "eps": FLAGS.eps,
             "optimizer": FLAGS.optimizer, "learning_rate": FLAGS.learning_rate, "weight_decay": FLAGS.weight_decay,
             "stage_widths": [int(w) for w in FLAGS.stage_widths], "trelu_mode": FLAGS.trelu_mode,
             "seed": FLAGS.seed, "total_seconds": round(seconds, 1), "machine": machine()}
    analyses.write_json({"setup": setup, "rows": rows}, os.path.join(out_dir, "results.json"))
    with open(os.path.join(out_dir, "table.md"), "w", encoding="utf-8") as handle:
        handle.write(table(rows))


def main(argv):
    del argv
    unknown = [v for v in FLAGS.variants if v not in VARIANTS]
    if unknown:
        raise TfrobustError(f"unknown variants {unknown}; valid choices: {', '.join(VARIANTS)}")
    # The SE baseline first: the transfer probe uses its PGD images.
    FLAGS.variants = sorted(FLAGS.variants, key=lambda v: v != "se")
    out_dir = FLAGS.out_dir
    os.makedirs(out_dir, exist_ok=True)
    splits = data.load_splits("fashion_mnist", train_size=FLAGS.train_size, test_size=FLAGS.points)
    rows, results, transfer = [], {}, {}
    start = time.perf_counter()
    for variant in FLAGS.variants:
        row, analysis = evaluate_variant(variant, splits, out_dir, transfer)
        rows.append(row)
        results[variant] = analysis
        # Written after every variant, so an interrupted run still leaves its finished rows.
        write_summary(rows, results, out_dir, time.perf_counter() - start)
    print(table(rows))
    print(f"total {time.perf_counter() - start:.0f} s ({machine()}); files in {out_dir}")


if __name__ == "__main__":
    run(main)
