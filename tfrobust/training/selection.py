"""Model selection without touching the test set: a seeded held-out split of the *training* data, a
fixed validation attack, the best-robust weights kept beside the last, and EMA weights.

Robust overfitting (Rice, Wong & Kolter 2020) makes the last epoch of adversarial training often worse
than an earlier one; published robust numbers come from the best-robust checkpoint chosen on held-out
data. Choosing it on the test points that also report the result is test-set selection, so
``train_and_export`` validates on ``split_validation``'s held-out part of the training set, with one
fixed attack for every method (``validation_attack``), and ``BestWeights`` keeps the best epoch.
"""

import json
import math
import os

import keras
import numpy as np

from tfrobust.core.files import atomic_path, write_json
from tfrobust.errors import TfrobustError, check_choice, check_int
from tfrobust.training.methods import make_method
from tfrobust.training.recipe import served_model

EXPORT_WEIGHTS = ("last", "best")
#: What ``BestWeights`` monitors by default and the validation metrics it records with the best epoch.
MONITOR = "val_adv_accuracy"
RECORDED = ("val_clean_accuracy", "val_adv_accuracy")


def split_validation(x, y, size, seed):
    """``((x_train, y_train), (x_val, y_val))``: ``size`` examples drawn without replacement from the
    training arrays by a permutation seeded with ``seed`` (the same split in every run with that
    seed), the rest kept for training in their original order."""
    check_int("validation_size", size, 1)
    if size >= len(x):
        raise TfrobustError(f"validation_size must be in [1, {len(x) - 1}] (the training set has {len(x)} "
                            f"examples), got {size!r}")
    order = np.random.default_rng(seed).permutation(len(x))
    held_out = np.sort(order[:size])
    kept = np.sort(order[size:])
    return (x[kept], y[kept]), (x[held_out], y[held_out])


def validation_attack(*, eps, steps=10, step_size=None, norm="linf"):
    """The fixed validation attack: PGD-``steps`` (default step 2.5·ε/steps) from a uniform random start,
    against the true labels, with ``AdversarialModel``'s fixed evaluation random stream — the same
    attack whatever the training method (Free-AT's own evaluation is a single step, TRADES' a KL
    ascent)."""
    if eps is None:
        raise TfrobustError("the validation attack needs eps > 0 (the method's eps, or set it explicitly)")
    return make_method("pgd_at", eps=eps, steps=steps, step_size=step_size, norm=norm, random_start="uniform")


class BestWeights(keras.callbacks.Callback):
    """``ModelCheckpoint(save_best_only=True)`` for the served model, with the record of the choice.

    After each epoch whose logs hold ``monitor`` (validation epochs) and a finite loss, writes the
    served model's weights (the wrapped model of an ``AdversarialModel``) to ``path`` atomically if
    ``monitor`` improved, and ``<path>.json`` with the epoch (1-based) and the ``RECORDED`` validation
    metrics. A resumed run reads that JSON back, so the best-so-far survives interruptions.

    Args:
      path: a ``.weights.h5`` file.
      monitor: the log key (default ``val_adv_accuracy``).
      mode: "max" (default) or "min".
    """

    def __init__(self, path, monitor=MONITOR, mode="max"):
        super().__init__()
        if not path.endswith(".weights.h5"):
            raise TfrobustError(f"weights path must end in .weights.h5, got {path}")
        check_choice("mode", mode, ("max", "min"))
        self.path, self.monitor, self.mode = path, monitor, mode
        self.record_path = path[:-len(".weights.h5")] + ".json"
        self.best = None  # {"epoch": …, monitor: …, val metrics …}

    def on_train_begin(self, logs=None):
        self._first_epoch = True
        if os.path.exists(self.record_path) and os.path.exists(self.path):
            with open(self.record_path, encoding="utf-8") as handle:
                self.best = json.load(handle)

    def on_epoch_begin(self, epoch, logs=None):
        # A run that starts at epoch 0 is a new run (a resumed one starts later): a record left in a reused
        # model_dir by a finished earlier run is not this run's best.
        if self._first_epoch and epoch == 0:
            self.best = None
        self._first_epoch = False

    def _improved(self, value):
        if self.best is None:
            return True
        previous = self.best[self.monitor]
        return value > previous if self.mode == "max" else value < previous

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            return
        loss = logs.get("loss")
        value = float(logs[self.monitor])
        if (loss is not None and not math.isfinite(float(loss))) or not math.isfinite(value):
            return
        if not self._improved(value):
            return
        with atomic_path(self.path) as temporary:
            served_model(self.model).save_weights(temporary, overwrite=True)
        record = {"epoch": epoch + 1, self.monitor: value}
        record.update({key: float(logs[key]) for key in RECORDED if key in logs})
        write_json(self.record_path, record)
        self.best = record


class LastValidation(keras.callbacks.Callback):
    """Remembers the last validation epoch's ``RECORDED`` metrics (for the run summary)."""

    def __init__(self):
        super().__init__()
        self.last = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if all(key in logs for key in RECORDED):
            self.last = {"epoch": epoch + 1, **{key: float(logs[key]) for key in RECORDED}}


def selection_callbacks(model_dir, *, early_stopping_patience=None):
    """``BestWeights`` (``<model_dir>/checkpoints/best.weights.h5``), ``LastValidation`` and an optional
    ``EarlyStopping`` on ``val_adv_accuracy`` (patience in validation epochs)."""
    callbacks = [BestWeights(os.path.join(model_dir, "checkpoints", "best.weights.h5")), LastValidation()]
    if early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=MONITOR, mode="max",
                                                       patience=early_stopping_patience))
    return callbacks


__all__ = ["EXPORT_WEIGHTS", "MONITOR", "RECORDED", "BestWeights", "LastValidation", "selection_callbacks",
           "split_validation", "validation_attack"]
