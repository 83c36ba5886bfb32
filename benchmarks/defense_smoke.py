"""Smoke results for the thesis' defenses (Yan, ch. 3–4) on a Fashion-MNIST subset — NOT a reproduction.

Trains, for a few epochs on the first ``--train_size`` training images, and evaluates on the first
``--points`` test images:

A. Thesis Table 3.3 protocol: CNN (``odenet_cnn``) vs ODEnet (``odenet``) vs TisODE (``tisode``), all
   trained on clean + Gaussian-noised images (σ ∈ {50, 75, 100}/255, probability 0.5: the ``gaussian``
   method), evaluated under Gaussian noise (σ = 100/255), FGSM and PGD, plus the ODE evaluation recipe
   (``defense_analyses.ode_evaluation``: white-box PGD, PGD crafted on the fixed-step RK4 surrogate, Square,
   SPSA; worst case per point) on ``--recipe_points`` points. For TisODE also accuracy and NFE versus the
   DormandPrince tolerance.
B. Thesis Table 4.12 protocol, shortened: vanilla vs CIFS ResNet-10 (``cifs_resnet10``, ``cifs_blocks=0`` for
   vanilla) under PGD adversarial training; CIFS crafted on ℓβ (β = 2) over final + probe logits as the
   reference code does. Evaluated under FGSM and PGD; the CIFS model also under the strongest adaptive
   attack available (``defense_analyses.cifs_adaptive_evaluation``: PGD on ℓβ for β_atk ∈ {0, 0.1, 1, 2, 10,
   100, ∞} and each probe alone, through the full mask path, worst case per point), plus top-k accuracy
   under attack (Table 4.4) and the channel-activation plot (fig. 4.1/4.3).

Writes ``<out_dir>/defenses_<parts>.json`` and ``defenses_<parts>.md`` (the table pasted into
docs/results/defenses.md), ``channels_vanilla.png``, ``channels_cifs.png`` and ``ode_tolerance.png``.
The two studies are independent and can run as two processes (``--parts=ode`` and ``--parts=cifs``).

  .venv/bin/python benchmarks/defense_smoke.py --out_dir=docs/results          # ≈ 25 CPU minutes
"""

import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from absl import app, flags

from _machine import machine  # benchmarks/_machine.py (this script's folder)
from tfrobust import data, models
from tfrobust.attacks import FGSM, PGD, GaussianNoise
from tfrobust.attacks.losses import AuxiliaryLoss
from tfrobust.evaluation import defense_analyses as analyses
from tfrobust.evaluation.robustness import robust_accuracy
from tfrobust.layers.cifs import probe_keys, probed_model
from tfrobust.training.adversarial import AdversarialModel
from tfrobust.training.methods import make_method

flags.DEFINE_string("out_dir", "docs/results", "Where the JSON, Markdown table and PNGs go.")
flags.DEFINE_integer("batch_size", 64, "Training batch size.")
flags.DEFINE_float("ode_learning_rate", 3e-3, "Adam learning rate of the ODE study (thesis: 1e-3 for 100 epochs).")
flags.DEFINE_float("cifs_learning_rate", 0.05, "Initial SGD learning rate of the PGD-AT study (cosine decay).")
flags.DEFINE_integer("train_size", 4000, "First N Fashion-MNIST training images.")
flags.DEFINE_integer("points", 200, "First N test images for FGSM / PGD / noise.")
flags.DEFINE_integer("recipe_points", 50, "First N test images for the ODE recipe (Square, SPSA).")
flags.DEFINE_integer("square_queries", 200, "Square queries per point in the ODE recipe.")
flags.DEFINE_integer("spsa_steps", 10, "SPSA steps in the ODE recipe (16 directions each).")
flags.DEFINE_integer("ode_epochs", 4, "Training epochs of the ODE-study models.")
flags.DEFINE_integer("cifs_epochs", 4, "PGD-AT epochs of the ResNet-10 models.")
flags.DEFINE_float("ode_width", 0.25, "Width multiplier of the ODE-study models (1 = the thesis' 64 channels).")
flags.DEFINE_float("resnet_width", 0.25, "Width multiplier of ResNet-10 (1 = 64-128-256-512).")
flags.DEFINE_float("eps", 0.1, "L∞ radius of the CIFS study and of the ODE recipe (image units).")
flags.DEFINE_integer("train_steps", 3, "PGD steps of adversarial training (step 2.5·eps/steps).")
flags.DEFINE_list("ode_models", ["odenet_cnn", "odenet", "tisode"], "Which models of the ODE study to run.")
flags.DEFINE_list("cifs_arms", ["vanilla", "cifs"], "Which arms of the CIFS study to run.")
flags.DEFINE_string("cifs_mask_scale", "channels", "CIFS mask_scale: 'channels' or a number (1 = eq. 4.2).")
flags.DEFINE_list("parts", ["ode", "cifs"], "Which studies to run.")
flags.DEFINE_integer("seed", 0, "Seed of weights, shuffling and attacks.")
flags.register_validator("parts", lambda parts: bool(parts) and set(parts) <= {"ode", "cifs"},
                         "--parts must be a comma-separated subset of ode,cifs")
FLAGS = flags.FLAGS

SIGMAS = [50 / 255, 75 / 255, 100 / 255]


def _accuracy(attack, model, x, y):
    fn = lambda images: model(images, training=False)
    return robust_accuracy(attack, fn, x, y, batch_size=250)


def ode_study(splits, out_dir):
    (x_train, y_train), (x, y) = splits
    train = data.make_dataset(x_train, y_train, FLAGS.batch_size, shuffle=True, seed=FLAGS.seed)
    results = {}
    for name in ("odenet_cnn", "odenet", "tisode"):
        if name not in FLAGS.ode_models:
            continue
        keras.utils.set_random_seed(FLAGS.seed)
        net = models.build(name, (28, 28, 1), 10, width=FLAGS.ode_width)
        trainer = AdversarialModel(net, make_method("gaussian", sigma=SIGMAS, probability=0.5), seed=FLAGS.seed,
                                   test_adversarial=False)
        trainer.compile(optimizer=keras.optimizers.Adam(FLAGS.ode_learning_rate))
        start = time.perf_counter()
        history = trainer.fit(train, epochs=FLAGS.ode_epochs, verbose=2)
        row = {"train_seconds": round(time.perf_counter() - start, 1),
               "train_logs": {k: [round(float(v), 4) for v in vals] for k, vals in history.history.items()}}
        row["clean"] = _accuracy(None, net, x, y)["accuracy"]
        row["gauss-100/255"] = _accuracy(GaussianNoise(sigma=100 / 255, seed=FLAGS.seed), net, x, y)["accuracy"]
        for eps in (0.15, 0.3):
            row[f"fgsm-{eps:g}"] = _accuracy(FGSM(eps=eps), net, x, y)["accuracy"]
        for eps in (0.1, 0.2):
            row[f"pgd20-{eps:g}"] = _accuracy(PGD(eps=eps, steps=20, seed=FLAGS.seed), net, x, y)["accuracy"]
        n = FLAGS.recipe_points
        if name != "odenet_cnn":  # the recipe needs an ODE block; the CNN has no solver to fool the attack
            recipe = analyses.ode_evaluation(net, x[:n], y[:n], eps=FLAGS.eps, pgd_steps=20,
                                             square_queries=FLAGS.square_queries, spsa_steps=FLAGS.spsa_steps,
                                             spsa_samples=16, seed=FLAGS.seed, batch_size=n)
            row["recipe"] = {"eps": FLAGS.eps, "points": n, "clean": recipe["clean"],
                             "rows": [{k: r[k] for k in ("attack", "mode", "accuracy", "seconds")}
                                      for r in recipe["rows"]], "worst_case": recipe["worst_case"]}
        if name == "tisode":
            tolerance = analyses.accuracy_nfe_vs_tolerance(net, x[:n], y[:n], tolerances=(1e-1, 1e-2, 1e-3),
                                                           attack=FGSM(eps=0.15), batch_size=n)
            row["tolerance"] = tolerance
            analyses.plot_accuracy_nfe_vs_tolerance(tolerance, os.path.join(out_dir, "ode_tolerance.png"),
                                                    title=f"TisODE (smoke), {n} test points, FGSM-0.15")
        print(name, json.dumps({k: v for k, v in row.items() if k != "train_logs"}, default=float), flush=True)
        results[name] = row
    return results


def cifs_study(splits, out_dir):
    (x_train, y_train), (x, y) = splits
    train = data.make_dataset(x_train, y_train, FLAGS.batch_size, shuffle=True, seed=FLAGS.seed)
    eps, steps = FLAGS.eps, FLAGS.train_steps
    results = {}
    scale = FLAGS.cifs_mask_scale if FLAGS.cifs_mask_scale == "channels" else float(FLAGS.cifs_mask_scale)
    for name, cifs_blocks in (("vanilla", 0), ("cifs", 2)):
        if name not in FLAGS.cifs_arms:
            continue
        keras.utils.set_random_seed(FLAGS.seed)
        options = dict(mask_scale=scale) if cifs_blocks else {}
        net = models.build("cifs_resnet10", (28, 28, 1), 10, width=FLAGS.resnet_width, cifs_blocks=cifs_blocks,
                           **options)
        params = dict(eps=eps, steps=steps, step_size=2.5 * eps / steps, random_start="uniform")
        if cifs_blocks:
            # The reference code crafts its training examples on the joint loss ℓβ (β = 2) over the final
            # and probe logits; the CIFS layers add β/L·CE(probe) through add_loss (labels from the engine).
            trained_net = probed_model(net)
            params["attack_loss"] = AuxiliaryLoss.beta(2.0, probe_keys(net))
        else:
            trained_net = net
        trainer = AdversarialModel(trained_net, make_method("pgd_at", **params), seed=FLAGS.seed,
                                   test_adversarial=False)
        schedule = keras.optimizers.schedules.CosineDecay(FLAGS.cifs_learning_rate, FLAGS.cifs_epochs * len(train))
        trainer.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=2e-4))
        start = time.perf_counter()
        history = trainer.fit(train, epochs=FLAGS.cifs_epochs, verbose=2)
        row = {"train_seconds": round(time.perf_counter() - start, 1),
               "train_logs": {k: [round(float(v), 4) for v in vals] for k, vals in history.history.items()}}
        row["clean"] = _accuracy(None, net, x, y)["accuracy"]
        row[f"fgsm-{eps:g}"] = _accuracy(FGSM(eps=eps), net, x, y)["accuracy"]
        pgd = PGD(eps=eps, steps=20, step_size=eps / 10 * 2, seed=FLAGS.seed)
        row[f"pgd20-{eps:g}"] = _accuracy(pgd, net, x, y)["accuracy"]
        if cifs_blocks:
            # The naive attack on the deployed (detached-path) gradient and the adaptive β sweep.
            naive = analyses.cifs_adaptive_evaluation(
                net, x, y, lambda loss: PGD(eps=eps, steps=20, step_size=eps / 5, loss=loss, seed=FLAGS.seed),
                betas=(0.0,), per_probe=False, mask_path="detached")
            row[f"pgd20-{eps:g} detached mask path"] = naive["rows"][0]["accuracy"]
            sweep = analyses.cifs_adaptive_evaluation(
                net, x, y, lambda loss: PGD(eps=eps, steps=20, step_size=eps / 5, loss=loss, seed=FLAGS.seed))
            row["adaptive"] = {"rows": sweep["rows"], "worst_case": sweep["worst_case"],
                               "strongest": sweep["strongest"]}
        row["top_k under pgd20"] = analyses.top_k_accuracy(net, x, y, pgd, ks=(1, 2, 3, 5))
        x_adv = np.concatenate([np.asarray(pgd(lambda images, net=net: net(images, training=False), x[i:i + 250],
                                               y[i:i + 250])) for i in range(0, len(x), 250)])
        label = int(np.bincount(y).argmax())  # the best-represented class of the subset
        channels = analyses.channel_activations(net, x, y, label, x_adv=x_adv, layer="features",
                                                classifier="logits")
        analyses.plot_channel_activations(channels, os.path.join(out_dir, f"channels_{name}.png"),
                                          title=f"{name} ResNet-10 (smoke): class {label}, natural vs PGD-20")
        print(name, json.dumps({k: v for k, v in row.items() if k != "train_logs"}, default=float), flush=True)
        results[name] = row
    return results


def table(results):
    lines = []
    if "ode" in results:
        lines += ["### A. CNN vs ODEnet vs TisODE (Gaussian-augmented training; thesis Table 3.3 protocol)", "",
                  "| model | clean | Gauss σ=100/255 | FGSM-0.15 | FGSM-0.3 | PGD-20 ε=0.1 | PGD-20 ε=0.2 | "
                  f"ODE recipe worst case ε={FLAGS.eps:g} (PGD, RK4-surrogate PGD, Square, SPSA) |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, row in results["ode"].items():
            recipe = row.get("recipe")
            recipe_text = "n/a (no ODE block)" if recipe is None else (
                f"{100 * recipe['worst_case']:.1f} (" + ", ".join(f"{100 * r['accuracy']:.1f}"
                                                                  for r in recipe["rows"]) + ")")
            lines.append(f"| {name} | {100 * row['clean']:.1f} | {100 * row['gauss-100/255']:.1f} | "
                         f"{100 * row['fgsm-0.15']:.1f} | {100 * row['fgsm-0.3']:.1f} | {100 * row['pgd20-0.1']:.1f} | "
                         f"{100 * row['pgd20-0.2']:.1f} | {recipe_text} |")
        tolerance = results["ode"].get("tisode", {}).get("tolerance")
        if tolerance:
            lines += ["", "TisODE solved by DormandPrince (rtol = atol):", "",
                      "| tolerance | clean | FGSM-0.15 | NFE |", "|---|---|---|---|"]
            lines += [f"| {r['tolerance']:g} | {100 * r['clean']:.1f} | {100 * r['robust']:.1f} | {r['nfe']:.0f} |"
                      for r in tolerance]
        lines.append("")
    if "cifs" in results:
        eps = f"{FLAGS.eps:g}"
        lines += [f"### B. Vanilla vs CIFS ResNet-10 (PGD-AT ε={eps}; thesis Table 4.12 protocol, shortened)", "",
                  "| model | clean | FGSM | PGD-20 CE (full mask path) | PGD-20 CE, detached mask path | "
                  "strongest adaptive (β sweep worst case) | top-1/2/3/5 under PGD-20 |",
                  "|---|---|---|---|---|---|---|"]
        for name, row in results["cifs"].items():
            adaptive = row.get("adaptive")
            adaptive_text = (f"{100 * row[f'pgd20-{eps}']:.1f} (plain CE: no probes)" if adaptive is None else
                             f"**{100 * adaptive['worst_case']:.1f}** (lowest single: {adaptive['strongest']})")
            detached = row.get(f"pgd20-{eps} detached mask path")
            top = row["top_k under pgd20"]
            lines.append(f"| {name} | {100 * row['clean']:.1f} | {100 * row[f'fgsm-{eps}']:.1f} | "
                         f"{100 * row[f'pgd20-{eps}']:.1f} | "
                         f"{'—' if detached is None else f'{100 * detached:.1f}'} | {adaptive_text} | "
                         + "/".join(f"{100 * top[k]:.1f}" for k in sorted(top)) + " |")
        cifs = results["cifs"].get("cifs", {}).get("adaptive")
        if cifs:
            lines += ["", "CIFS under PGD-20 on ℓβ per β_atk (full mask path):", "",
                      "| " + " | ".join(r["label"] for r in cifs["rows"]) + " |",
                      "|" + "---|" * len(cifs["rows"]),
                      "| " + " | ".join(f"{100 * r['accuracy']:.1f}" for r in cifs["rows"]) + " |"]
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    os.makedirs(FLAGS.out_dir, exist_ok=True)
    splits = data.load_splits("fashion_mnist", train_size=FLAGS.train_size, test_size=FLAGS.points)
    start = time.perf_counter()
    results = {"config": {k: FLAGS[k].value for k in ("train_size", "batch_size", "points", "recipe_points",
                                                       "square_queries", "spsa_steps", "ode_epochs", "cifs_epochs",
                                                       "ode_width", "resnet_width", "ode_learning_rate",
                                                       "cifs_learning_rate", "cifs_mask_scale", "eps", "train_steps",
                                                       "seed")}}
    if "ode" in FLAGS.parts:
        results["ode"] = ode_study(splits, FLAGS.out_dir)
    if "cifs" in FLAGS.parts:
        results["cifs"] = cifs_study(splits, FLAGS.out_dir)
    results["wall_seconds"] = round(time.perf_counter() - start, 1)
    results["machine"] = machine()
    arms = "" if set(FLAGS.cifs_arms) == {"vanilla", "cifs"} or "cifs" not in FLAGS.parts else "-" + "-".join(
        FLAGS.cifs_arms)
    if "ode" in FLAGS.parts and len(FLAGS.ode_models) < 3:
        arms += "-" + "-".join(FLAGS.ode_models)
    stem = os.path.join(FLAGS.out_dir, "defenses_" + "_".join(FLAGS.parts) + arms)
    analyses.save_json(results, stem + ".json")
    text = table(results)
    with open(stem + ".md", "w", encoding="utf-8") as handle:
        handle.write(text)
    print(text)
    print(f"wall time {results['wall_seconds']:.0f} s ({results['machine']})")


if __name__ == "__main__":
    app.run(main)
