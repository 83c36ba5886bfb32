"""Accuracy of a model under an attack, batch by batch.

Robust accuracy counts every test point: a point misclassified on the clean input counts as broken
(the convention of RobustBench and of our seed papers unless they say otherwise), so robust accuracy
never exceeds clean accuracy. The attack is run only on points still classified correctly, and a point
counts as robust only if it is classified correctly both clean and under attack.
"""

import time

import numpy as np
import tensorflow as tf

from tfrobust.attacks.gaussian_noise import GaussianNoise
from tfrobust.attacks.losses import logits_of


def predict_labels(predict_fn, x, batch_size=256):
    """argmax of ``predict_fn`` over ``x`` in batches (``predict_fn`` maps a NumPy batch to logits)."""
    if not len(x):
        return np.zeros(0, np.int64)
    return np.concatenate([np.argmax(np.asarray(predict_fn(x[i:i + batch_size])), axis=-1)
                           for i in range(0, len(x), batch_size)])


def robust_accuracy(attack, craft_fn, x, y, *, predict_fn=None, batch_size=256, standing=None):
    """Runs ``attack`` and reports accuracy.

    Args:
      attack: an attack (``attack(model_fn, x, y) -> x_adv``), or None for clean accuracy.
      craft_fn: what the attack is called with (a TF ``images -> logits`` callable, or a NumPy predict
        function for prediction-only attacks).
      x, y: images in [0, 1] and integer labels.
      predict_fn: the model evaluated on the crafted inputs (NumPy images → logits); defaults to
        ``craft_fn``. A different ``predict_fn`` makes this a transfer attack from ``craft_fn``.
      batch_size: points per attack batch.
      standing: optional bool [N], the points still unbroken (e.g. by earlier attacks); default: the
        points ``predict_fn`` classifies correctly.

    Returns:
      dict with ``accuracy`` (fraction of all points), ``correct`` (bool [N] per point), ``seconds``,
      and ``counts``: per-example model evaluations the attack made (summed ``attack.last_counts``).
    """
    if predict_fn is None:
        predict_fn = lambda batch: logits_of(craft_fn(tf.constant(batch))).numpy()
    start = time.perf_counter()
    x = np.asarray(x, np.float32)
    y = np.asarray(y).astype(np.int64)
    correct = predict_labels(predict_fn, x, batch_size) == y
    if standing is not None:
        correct &= np.asarray(standing, bool)
    counts = {}
    if attack is not None:
        # Attack only the points still standing: broken points stay broken.
        index_standing = np.flatnonzero(correct)
        for i in range(0, len(index_standing), batch_size):
            index = index_standing[i:i + batch_size]
            x_adv = np.asarray(attack(craft_fn, x[index], y[index]))
            correct[index] = predict_labels(predict_fn, x_adv, batch_size) == y[index]
            for key, value in getattr(attack, "last_counts", {}).items():
                counts[key] = counts.get(key, 0) + int(value)
    return {"accuracy": float(np.mean(correct)) if len(correct) else float("nan"),
            "correct": correct, "seconds": time.perf_counter() - start, "counts": counts}


def noise_sweep(model_fn, x, y, sigmas, *, samples=1, seed=0, clip_min=0.0, clip_max=1.0, batch_size=256,
                among_correct=False):
    """Accuracy under Gaussian noise for each σ: ``{sigma: accuracy}``.

    Uses ``robust_accuracy``, so the convention is the evaluation engine's: every point counts, and a point
    is correct only if it is classified correctly both clean and noisy (σ = 0 gives clean accuracy;
    accuracy never exceeds it). Each σ uses a fresh ``GaussianNoise(sigma=σ, samples=samples, seed=seed)``,
    so the sweep is reproducible.

    ``among_correct=True`` reports instead the fraction of the clean-correct points that stay correct
    (accuracy(σ) / clean accuracy), the convention of the TisODE/ODEnet robustness tables (Yan et al.,
    "On Robustness of Neural Ordinary Differential Equations", ICLR 2020: "accuracies on perturbed images,
    in which the original non-perturbed versions of these images are all correctly classified").
    """
    clean = robust_accuracy(None, model_fn, x, y, batch_size=batch_size)["accuracy"] if among_correct else 1.0
    results = {}
    for sigma in sigmas:
        attack = GaussianNoise(sigma=float(sigma), samples=samples, seed=seed, clip_min=clip_min,
                               clip_max=clip_max)
        accuracy = robust_accuracy(attack, model_fn, x, y, batch_size=batch_size)["accuracy"]
        results[float(sigma)] = accuracy / clean if clean > 0 else float("nan")
    return results
