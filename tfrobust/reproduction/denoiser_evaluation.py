"""One trained denoiser of a PSNR claim: per-image PSNR under Gaussian noise, the paper's ObsAtk and the
strongest ObsAtk run, with the sanity checks, on the same noisy images for every model.

Noise and attacks are the thesis' (``tfrobust.evaluation.denoising``): the Gaussian row restores
``x + N(0, γ̂²)``; the ObsAtk rows start from ``y₀ = x + N(0, (γ̂ − e)²)`` and add ObsAtk's zero-mean
perturbation of norm ≤ e·√m (the thesis' Atk-e). Each image's noise comes from the stateless stream
(``seed``, image index) of ``evaluation.denoising.observation``, so two models see identical observations.

Rows (per-image arrays, the keys of ``PSNR_ROWS`` and a few more):

* ``gaussian`` — the noise alone;
* ``obsatk_paper`` — ObsAtk as the paper runs it (``paper_steps`` from δ = 0, step 2.5/steps of the budget);
* ``obsatk_strong`` — the strongest ObsAtk: per image, the worst (lowest PSNR) of the paper's run and
  ``strong_restarts`` runs of ``strong_steps`` steps (the first from δ = 0, the others from random points of
  the zero-mean ball, ``attacks.obsatk.random_zero_mean_start``);
* ``zero_mean`` — random zero-mean noise of the same norm on ``y₀`` (the baseline the attack must beat);
* ``obsatk_strong_run<k>`` — each run of the strongest attack alone.

Sanity checks (the denoiser analogues of ``evaluation.sanity_checks``; on every image, from the rows above):

* ``obsatk_weaker_than_random`` — the paper's ObsAtk leaves a mean PSNR at least as high as random zero-mean
  noise of the same norm: the gradient gives no ascent direction (masked or broken gradients);
* ``more_steps_weaker`` — the ``strong_steps`` run from δ = 0 leaves a mean PSNR more than
  ``MORE_STEPS_TOLERANCE_DB`` above the paper's ``paper_steps`` run (more iterations must not weaken a
  gradient attack; 0.1 dB allows for the different step lengths of the two runs).
"""

import json
import os
import time

import numpy as np
import tensorflow as tf

from tfrobust.attacks.obsatk import ObsAtk, ZeroMeanNoise
from tfrobust.core.run_layout import RunLayout
from tfrobust.data.image_folder import load_images
from tfrobust.errors import TfrobustError, check_int
from tfrobust.evaluation.denoising import observation
from tfrobust.evaluation.target import as_target
from tfrobust.reproduction.verdict import OBSATK_PAPER, OBSATK_STRONG

GAUSSIAN = "gaussian"
ZERO_MEAN = "zero_mean"
#: The rows of a PSNR claim's paired table, in order.
PSNR_ROWS = (GAUSSIAN, OBSATK_PAPER, OBSATK_STRONG)
MORE_STEPS_TOLERANCE_DB = 0.1


def load_denoiser(run_dir):
    """``(model, summary)`` of a finished ``trainers/train_denoiser.py`` run: the denoiser rebuilt from its
    summary (model, options, colour) with the last epoch's weights (denoiser training selects no epoch)."""
    from tfrobust import models  # pylint: disable=import-outside-toplevel

    layout = RunLayout(run_dir)
    for path in (layout.summary, layout.last_weights):
        if not os.path.isfile(path):
            raise TfrobustError(f"{run_dir} is not a finished denoiser training run: {path} is missing")
    with open(layout.summary, encoding="utf-8") as handle:
        summary = json.load(handle)
    if summary.get("task") != "denoise":
        raise TfrobustError(f"{run_dir} is not a denoiser run (summary task {summary.get('task')!r})")
    channels = 1 if summary.get("color", "gray") == "gray" else 3
    model = models.build(summary["model"], (None, None, channels), None, **summary.get("model_options", {}))
    model.load_weights(layout.last_weights)
    return model, summary


def load_test_images(source, size, color="gray"):
    """The first ``size`` test images of a denoising source (``dataset:fashion_mnist``, ``skimage`` or a
    folder): a list of float32 (H, W, C) arrays in [0, 1]."""
    images, _ = load_images(source, "test", color, size=size)
    return images


def _batches(images, batch_size):
    """Index lists of at most ``batch_size`` images of one shape (benchmark images differ in size)."""
    groups = {}
    for index, image in enumerate(images):
        groups.setdefault(image.shape, []).append(index)
    for indices in groups.values():
        for start in range(0, len(indices), batch_size):
            yield indices[start:start + batch_size]


def _observations(images, kind, level, eps, seed):
    return [np.asarray(observation(tf.constant(image[None]), kind, level, eps, seed, index))[0]
            for index, image in enumerate(images)]


def _psnr(target, images, observed, batch_size, perturb=None):
    """Per-image PSNR (dB) of ``target``'s restoration of ``observed`` (after ``perturb(noisy, clean)``)."""
    out = np.empty(len(images), np.float64)
    for indices in _batches(images, batch_size):
        clean = np.stack([images[i] for i in indices])
        noisy = np.stack([observed[i] for i in indices])
        if perturb is not None:
            noisy = np.asarray(perturb(noisy, clean), np.float32)
        restored = np.clip(target.predict(noisy), 0.0, 1.0)
        out[indices] = tf.image.psnr(tf.constant(restored), tf.constant(clean), max_val=1.0).numpy()
    return out


def evaluate_denoiser_psnr(model, images, *, eps, level, paper_steps=5, strong_steps=20, strong_restarts=3, seed=0,
                           batch_size=250, verbose=0, name="model"):
    """Gaussian, paper-ObsAtk and strongest-ObsAtk PSNR of one denoiser, per image, with the sanity checks.

    Args:
      model: a Keras denoiser (images in [0, 1] → images) or a differentiable ``Target``.
      images: the clean test images (the same list for every model of a claim).
      eps: ObsAtk's per-pixel budget e (ε = e·√m); level: the noise level γ̂ (> eps).
      paper_steps: ObsAtk's iterations in the paper's setting; strong_steps, strong_restarts: the strongest
        run (see the module docstring).
      seed: the noise streams' and the random starts' seed.
      batch_size: images per attack batch (of one shape).

    Returns:
      ``(result, arrays)``: ``result`` is JSON-able ({"rows": [{"attack", "description", "psnr", "seconds"}],
      "sanity_flags", "flagged", "points", "seconds"}); ``arrays`` maps every row name to its per-image PSNR.
    """
    check_int("paper_steps", paper_steps, 1)
    check_int("strong_steps", strong_steps, paper_steps)
    check_int("strong_restarts", strong_restarts, 1)
    check_int("batch_size", batch_size, 1)
    if not 0 < eps < level:
        raise TfrobustError(f"the ObsAtk budget {eps * 255:.3g}/255 must be positive and below the noise level "
                            f"{level * 255:.3g}/255")
    target = as_target(model, name)
    if not target.differentiable:
        raise TfrobustError(f"{target.name} has no gradients: the PSNR claims attack denoisers white-box")
    start = time.perf_counter()
    rows, arrays = [], {}

    def row(key, description, compute):
        began = time.perf_counter()
        arrays[key] = compute()
        rows.append({"attack": key, "description": description, "psnr": float(np.mean(arrays[key])),
                     "seconds": round(time.perf_counter() - began, 1)})
        if verbose:
            print(f"  {name}: {key} {rows[-1]['psnr']:.2f} dB ({rows[-1]['seconds']:.0f} s)", flush=True)

    def attack_with(attack):
        return lambda noisy, clean: attack(target.logits_fn, noisy, clean)

    gaussian = _observations(images, "gaussian", level, 0.0, seed)
    base = _observations(images, "obsatk", level, eps, seed)
    e, g = f"{eps * 255:g}/255", f"{level * 255:g}/255"
    row(GAUSSIAN, f"N(0, ({g})²) noise", lambda: _psnr(target, images, gaussian, batch_size))
    row(ZERO_MEAN, f"random zero-mean noise of norm {e}·√m on N(0, ({g} − {e})²) noise",
        lambda: _psnr(target, images, base, batch_size, attack_with(ZeroMeanNoise(eps=eps, seed=seed))))
    row(OBSATK_PAPER, f"ObsAtk-{e}, {paper_steps} steps from δ = 0 (the paper's setting)",
        lambda: _psnr(target, images, base, batch_size, attack_with(ObsAtk(eps=eps, steps=paper_steps))))
    random_start = ObsAtk(eps=eps, steps=strong_steps, random_start=True, seed=seed)
    for run in range(strong_restarts):
        attack = ObsAtk(eps=eps, steps=strong_steps) if run == 0 else random_start
        row(f"{OBSATK_STRONG}_run{run}", f"ObsAtk-{e}, {strong_steps} steps from "
            f"{'δ = 0' if run == 0 else 'a random start'}",
            lambda attack=attack: _psnr(target, images, base, batch_size, attack_with(attack)))
    runs = [arrays[OBSATK_PAPER]] + [arrays[f"{OBSATK_STRONG}_run{k}"] for k in range(strong_restarts)]
    arrays[OBSATK_STRONG] = np.minimum.reduce(runs)
    rows.append({"attack": OBSATK_STRONG, "description": f"per-image worst case of the paper's run and "
                 f"{strong_restarts} × {strong_steps}-step runs", "psnr": float(np.mean(arrays[OBSATK_STRONG])),
                 "seconds": round(sum(r["seconds"] for r in rows if r["attack"].startswith(OBSATK_STRONG)), 1)})
    flags = psnr_sanity_flags(arrays, paper_steps, strong_steps)
    result = {"rows": rows, "sanity_flags": flags, "flagged": [f["check"] for f in flags if f["flagged"]],
              "points": len(images), "seconds": round(time.perf_counter() - start, 1)}
    return result, arrays


def psnr_sanity_flags(arrays, paper_steps, strong_steps):
    """The two sanity checks of the module docstring on per-image PSNR ``arrays``."""
    paper, random = float(np.mean(arrays[OBSATK_PAPER])), float(np.mean(arrays[ZERO_MEAN]))
    longer = float(np.mean(arrays[f"{OBSATK_STRONG}_run0"]))
    return [
        {"check": "obsatk_weaker_than_random", "flagged": bool(paper >= random),
         "detail": f"ObsAtk ({paper_steps} steps) {paper:.2f} dB vs random zero-mean noise {random:.2f} dB"},
        {"check": "more_steps_weaker", "flagged": bool(longer > paper + MORE_STEPS_TOLERANCE_DB),
         "detail": f"{strong_steps} steps from δ = 0 {longer:.2f} dB vs {paper_steps} steps {paper:.2f} dB "
                   f"(tolerance {MORE_STEPS_TOLERANCE_DB:g} dB)"},
    ]
