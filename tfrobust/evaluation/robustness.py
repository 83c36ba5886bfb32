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
from tfrobust.core.files import plain
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
                    verbose=0, name=None, keep_adversarial=False, journal=None, query_count=None,
                    map_batches=None, map_chunks=None):
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
      journal: optional ``tfrobust.core.journal.Journal`` making the run resumable: the plan (clean
        predictions, points to attack) and every finished batch are recorded; a run given a journal with
        records replays them and attacks only the rest, ending with exactly the result of an uninterrupted
        run (batch b always draws the attack's stream b, ``Attack.set_stream``). An attack that keeps its
        own journal (``keeps_journal``, AutoAttack) records its chunks in ``journal.child("attack")``.
      query_count: optional callable returning the target's cumulative query count (an artifact's
        counter); the queries spent by this run, replayed ones included, are returned as ``target_queries``.
      map_batches: optional ``map_batches(jobs) -> iterable of (x_adv, counts)`` in the order of ``jobs``,
        each job a (stream, x, y) batch to attack; default: attack them here, one after the other. A
        sharded evaluation sends the batches to its workers.
      map_chunks: passed to an attack that batches itself (``AutoAttack.__call__``).

    Returns:
      dict with ``accuracy`` (fraction of all points), ``correct`` (bool [N] per point), ``seconds``,
      ``counts``: per-example model evaluations the attack made (summed ``attack.last_counts``),
      ``invalid``: returned points that failed verification (restored to x), ``target_queries`` (0
      without ``query_count``), and ``attack_report``: the attack's ``last_report`` when it batches itself
      (AutoAttack's per-component diagnostics); with ``keep_adversarial``, ``x_adv`` and ``y_pred`` as well.
    """
    if verbose not in (0, 1, 2):
        raise TfrobustError(f"verbose must be 0, 1 or 2, got {verbose!r}")
    if predict_fn is None:
        predict_fn = lambda batch: logits_of(craft_fn(tf.constant(batch))).numpy()
    if strict is None:
        strict = os.environ.get(STRICT_ENV) == "1"
    clock = _Clock(query_count)
    x = np.asarray(x, np.float32)
    y = np.asarray(y).astype(np.int64)
    records = journal.records() if journal is not None else []
    if records:
        meta, arrays = records[0]
        if meta.get("points") != len(y):
            raise TfrobustError(f"the saved evaluation state is for {meta.get('points')} points, this run has "
                                f"{len(y)}")
        y_pred, correct = arrays["y_pred"].copy(), arrays["correct"].copy()
        clock.add(meta)
    else:
        y_pred = predict_labels(predict_fn, x, batch_size)
        correct = y_pred == y
        if standing is not None:
            correct &= np.asarray(standing, bool)
        if journal is not None:
            # The attack's batch size, so a reader of the state (evaluation.progress) can count its batches; an
            # attack that batches itself gets every standing point in one.
            size = None
            if attack is not None:
                size = max(int(np.sum(correct)), 1) if getattr(attack, "batches_itself", False) else int(batch_size)
            journal.append({"points": len(y), "batch_size": size, **clock.take()}, y_pred=y_pred, correct=correct)
    x_adv_all = x.copy() if keep_adversarial else None
    counts, invalid, attack_report = {}, 0, None
    if attack is not None:
        # Attack only the points still standing: broken points stay broken.
        index_standing = np.flatnonzero(correct)
        batches_itself = getattr(attack, "batches_itself", False)
        chunk = max(len(index_standing), 1) if batches_itself else batch_size
        batches = [index_standing[i:i + chunk] for i in range(0, len(index_standing), chunk)]
        name = name or type(attack).__name__
        progress = None
        if verbose == 1:
            print(f"{name}: {len(index_standing)} of {len(y)} points standing", flush=True)
            progress = keras.utils.Progbar(len(batches), verbose=1, stateful_metrics=["standing"], unit_name="batch")
        done = records[1:len(batches) + 1]
        if batches_itself:
            options = {}
            if verbose and getattr(attack, "reports_progress", False):
                options["progress"] = _ComponentProgress(name, verbose, len(y))
            if journal is not None and getattr(attack, "keeps_journal", False):
                options["journal"] = journal.child("attack")
            if map_chunks is not None:
                options["map_chunks"] = map_chunks
            run_batches = lambda jobs: (attack_batch(attack, craft_fn, *job, **options) for job in jobs)
        else:
            run_batches = map_batches or (lambda jobs: (attack_batch(attack, craft_fn, *job) for job in jobs))
        results = iter(run_batches([(b, x[index], y[index]) for b, index in enumerate(batches) if b >= len(done)]))
        for b, index in enumerate(batches):
            if b < len(done):
                meta, arrays = done[b]
                if meta.get("batch") != b or len(arrays["y_pred"]) != len(index):
                    raise TfrobustError(f"the saved evaluation state does not match this run (record of batch "
                                        f"{meta.get('batch')} with {len(arrays['y_pred'])} points, expected batch "
                                        f"{b} with {len(index)})")
                if keep_adversarial and "x_adv" not in arrays:
                    raise TfrobustError("the saved evaluation state has no adversarial examples; start over "
                                        "(--restart) to keep them")
                y_pred[index] = arrays["y_pred"]
                if keep_adversarial:
                    x_adv_all[index] = arrays["x_adv"]
                batch_counts, batch_invalid, attack_report = meta["counts"], meta["invalid"], meta["report"]
                clock.add(meta)
            else:
                x_adv, batch_counts = next(results)
                # A copy: a Ray worker's array arrives read-only, and invalid points are restored in place below.
                x_adv = np.array(x_adv, np.float32)
                valid, reasons = verify_points(attack, x_adv, x[index])
                batch_invalid = int(np.sum(~valid))
                if batch_invalid:
                    first = int(np.flatnonzero(~valid)[0])
                    message = (f"{type(attack).__name__} returned {batch_invalid} invalid point(s) "
                               f"(e.g. point {int(index[first])}: {reasons[first]})")
                    if strict:
                        raise TfrobustError(message)
                    warnings.warn(message + "; they count as attack failures (restored to x)", stacklevel=2)
                    x_adv[~valid] = x[index][~valid]
                y_pred[index] = predict_labels(predict_fn, x_adv, batch_size)
                if keep_adversarial:
                    x_adv_all[index] = x_adv
                if batches_itself:
                    attack_report = plain(getattr(attack, "last_report", None))
                if journal is not None:
                    journal.append({"batch": b, "counts": batch_counts, "invalid": batch_invalid,
                                    "report": attack_report, **clock.take()},
                                   y_pred=y_pred[index], **({"x_adv": x_adv} if keep_adversarial else {}))
            correct[index] = y_pred[index] == y[index]
            invalid += int(batch_invalid)
            for key, value in batch_counts.items():
                counts[key] = counts.get(key, 0) + int(value)
            if progress is not None:
                progress.update(b + 1, values=[("standing", int(np.sum(correct)))])
        if verbose == 2:
            print(f"{name}: {len(index_standing)} points attacked in {len(batches)} batch(es), "
                  f"{int(np.sum(correct))} of {len(y)} standing, {clock.seconds + clock.elapsed():.1f}s", flush=True)
    clock.take()
    result = {"accuracy": float(np.mean(correct)) if len(correct) else float("nan"),
              "correct": correct, "seconds": clock.seconds, "counts": counts, "invalid": invalid,
              "target_queries": clock.queries, "attack_report": attack_report}
    if keep_adversarial:
        result.update(x_adv=x_adv_all, y_pred=y_pred)
    return result


def attack_batch(attack, craft_fn, stream, x, y, **options):
    """(x_adv as float32 NumPy, the attack's counts) for one batch, drawing the attack's stream ``stream``."""
    set_stream = getattr(attack, "set_stream", None)
    if set_stream is not None:
        set_stream(stream)
    x_adv = np.array(attack(craft_fn, x, y, **options), np.float32)
    return x_adv, {key: int(value) for key, value in getattr(attack, "last_counts", {}).items()}


class _Clock:
    """Seconds and target queries of a run, in parts: each record stores the part since the last one, so a
    resumed run's totals add the replayed parts to its own."""

    def __init__(self, query_count):
        self.query_count = query_count
        self.seconds, self.queries = 0.0, 0
        self._since, self._queries_since = time.perf_counter(), self._queries_now()

    def _queries_now(self):
        return int(self.query_count()) if self.query_count is not None else 0

    def elapsed(self):
        return time.perf_counter() - self._since

    def take(self):
        """The part since the last call, added to the totals: {"seconds", "queries"}."""
        now, queries = time.perf_counter(), self._queries_now()
        part = {"seconds": now - self._since, "queries": queries - self._queries_since}
        self._since, self._queries_since = now, queries
        self.add(part)
        return part

    def add(self, part):
        """Adds a replayed record's part."""
        self.seconds += float(part["seconds"])
        self.queries += int(part["queries"])


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
