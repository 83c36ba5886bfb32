"""Accuracy of a model under an attack, batch by batch.

Robust accuracy counts every test point: a point misclassified on the clean input counts as broken
(the convention of RobustBench and of our seed papers unless they say otherwise), so robust accuracy
never exceeds clean accuracy. The attack is run only on points still classified correctly, and a point
counts as robust only if it is classified correctly both clean and under attack.

Every point an attack returns is verified before it is scored (``verify_points``): finite, inside
[clip_min, clip_max] and, for an attack that declares ``respects_threat_model``, inside its ε-ball
(‖x_adv − x‖ ≤ ε·(1 + 1e-6) plus float32 rounding of the image range). A point that fails is an attack
failure: it is restored to the clean input (so a NaN image never counts as broken) and counted in
``invalid``; with ``strict`` (the test suite sets ``TFROBUST_STRICT_ATTACKS=1``) it raises instead.

Progress follows Keras's ``verbose`` convention: 0 silent (the default, so tests print nothing), 1 a
``keras.utils.Progbar`` per attack (batches done of all, points still standing, elapsed/ETA), 2 one line
per attack when it ends (name, points attacked, points standing, seconds). An attack that batches itself
(AutoAttack) is one step of the bar; if it declares ``reports_progress`` it gets a ``progress`` callback
and each of its components gets its own bar (verbose 1) or line (verbose 2).
"""

import os
import time
import warnings

import keras
import numpy as np
import tensorflow as tf

from tfrobust.attacks.checks import verify_points
from tfrobust.attacks.gaussian_noise import GaussianNoise
from tfrobust.attacks.losses import logits_of
from tfrobust.errors import TfrobustError

#: Environment variable that makes ``robust_accuracy`` raise on an invalid returned point.
STRICT_ENV = "TFROBUST_STRICT_ATTACKS"


def predict_labels(predict_fn, x, batch_size=256):
    """argmax of ``predict_fn`` over ``x`` in batches (``predict_fn`` maps a NumPy batch to logits)."""
    if not len(x):
        return np.zeros(0, np.int64)
    return np.concatenate([np.argmax(np.asarray(predict_fn(x[i:i + batch_size])), axis=-1)
                           for i in range(0, len(x), batch_size)])


def robust_accuracy(attack, craft_fn, x, y, *, predict_fn=None, batch_size=256, standing=None, strict=None,
                    verbose=0, name=None, keep_adversarial=False):
    """Runs ``attack`` and reports accuracy.

    Args:
      attack: an attack (``attack(model_fn, x, y) -> x_adv``), or None for clean accuracy. An attack with
        ``batches_itself = True`` (AutoAttack) gets every standing point in one call and batches them
        itself (it re-chunks the survivors of each component).
      craft_fn: what the attack is called with (a TF ``images -> logits`` callable, or a NumPy predict
        function for prediction-only attacks).
      x, y: images in [0, 1] and integer labels.
      predict_fn: the model evaluated on the crafted inputs (NumPy images → logits); defaults to
        ``craft_fn``. A different ``predict_fn`` makes this a transfer attack from ``craft_fn``.
      batch_size: points per attack batch.
      standing: optional bool [N], the points still unbroken (e.g. by earlier attacks); default: the
        points ``predict_fn`` classifies correctly.
      strict: raise ``TfrobustError`` on a returned point that fails ``verify_points`` instead of
        restoring it; default: the ``TFROBUST_STRICT_ATTACKS`` environment variable is "1".
      verbose: 0 silent, 1 progress bar, 2 one line when the attack ends (see the module docstring).
      name: the attack's name in the progress output (default: its class name).
      keep_adversarial: also return ``x_adv`` (float32 [N, ...]: the verified crafted point where the
        attack ran, the clean input elsewhere) and ``y_pred`` (int64 [N]: ``predict_fn``'s labels on
        ``x_adv``), so that ``correct == (y_pred == y)`` point by point (without ``standing``).

    Returns:
      dict with ``accuracy`` (fraction of all points), ``correct`` (bool [N] per point), ``seconds``,
      ``counts``: per-example model evaluations the attack made (summed ``attack.last_counts``),
      ``invalid``: returned points that failed verification (restored to x), and ``attack_report``: the
      attack's ``last_report`` when it batches itself (AutoAttack's per-component diagnostics); with
      ``keep_adversarial``, ``x_adv`` and ``y_pred`` as well.
    """
    if verbose not in (0, 1, 2):
        raise TfrobustError(f"verbose must be 0, 1 or 2, got {verbose!r}")
    if predict_fn is None:
        predict_fn = lambda batch: logits_of(craft_fn(tf.constant(batch))).numpy()
    if strict is None:
        strict = os.environ.get(STRICT_ENV) == "1"
    start = time.perf_counter()
    x = np.asarray(x, np.float32)
    y = np.asarray(y).astype(np.int64)
    y_pred = predict_labels(predict_fn, x, batch_size)
    correct = y_pred == y
    x_adv_all = x.copy() if keep_adversarial else None
    if standing is not None:
        correct &= np.asarray(standing, bool)
    counts, invalid, attack_report = {}, 0, None
    if attack is not None:
        # Attack only the points still standing: broken points stay broken.
        index_standing = np.flatnonzero(correct)
        chunk = max(len(index_standing), 1) if getattr(attack, "batches_itself", False) else batch_size
        name = name or type(attack).__name__
        batches = -(-len(index_standing) // chunk)
        progress = None
        if verbose == 1:
            print(f"{name}: {len(index_standing)} of {len(y)} points standing", flush=True)
            progress = keras.utils.Progbar(batches, verbose=1, stateful_metrics=["standing"], unit_name="batch")
        for i in range(0, len(index_standing), chunk):
            index = index_standing[i:i + chunk]
            options = {}
            if verbose and getattr(attack, "reports_progress", False):
                options["progress"] = _ComponentProgress(name, verbose, len(y))
            x_adv = np.array(attack(craft_fn, x[index], y[index], **options), np.float32)
            valid, reasons = verify_points(attack, x_adv, x[index])
            if not np.all(valid):
                first = int(np.flatnonzero(~valid)[0])
                message = (f"{type(attack).__name__} returned {int(np.sum(~valid))} invalid point(s) "
                           f"(e.g. point {int(index[first])}: {reasons[first]})")
                if strict:
                    raise TfrobustError(message)
                warnings.warn(message + "; they count as attack failures (restored to x)", stacklevel=2)
                invalid += int(np.sum(~valid))
                x_adv[~valid] = x[index][~valid]
            y_pred[index] = predict_labels(predict_fn, x_adv, batch_size)
            correct[index] = y_pred[index] == y[index]
            if keep_adversarial:
                x_adv_all[index] = x_adv
            for key, value in getattr(attack, "last_counts", {}).items():
                counts[key] = counts.get(key, 0) + int(value)
            if progress is not None:
                progress.update(i // chunk + 1, values=[("standing", int(np.sum(correct)))])
        if verbose == 2:
            print(f"{name}: {len(index_standing)} points attacked in {batches} batch(es), {int(np.sum(correct))} "
                  f"of {len(y)} standing, {time.perf_counter() - start:.1f}s", flush=True)
        if getattr(attack, "batches_itself", False):
            attack_report = getattr(attack, "last_report", None)
    result = {"accuracy": float(np.mean(correct)) if len(correct) else float("nan"),
              "correct": correct, "seconds": time.perf_counter() - start, "counts": counts,
              "invalid": invalid, "attack_report": attack_report}
    if keep_adversarial:
        result.update(x_adv=x_adv_all, y_pred=y_pred)
    return result


class _ComponentProgress:
    """The ``progress`` callback of an attack that batches itself: a Progbar per component (verbose 1) or
    one line when a component's last chunk is done (verbose 2)."""

    def __init__(self, name, verbose, num_points):
        self.name, self.verbose, self.num_points = name, verbose, num_points
        self.component, self.bar, self.start = None, None, time.perf_counter()

    def __call__(self, component, chunk, chunks, standing):
        if component != self.component:
            self.component, self.start = component, time.perf_counter()
            if self.verbose == 1:
                print(f"{self.name} / {component}", flush=True)
                self.bar = keras.utils.Progbar(chunks, verbose=1, stateful_metrics=["standing"], unit_name="batch")
        if self.verbose == 1:
            self.bar.update(chunk, values=[("standing", standing)])
        elif chunk == chunks:
            print(f"{self.name} / {component}: {chunks} batch(es), {standing} of the attacked points standing, "
                  f"{time.perf_counter() - self.start:.1f}s", flush=True)


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
