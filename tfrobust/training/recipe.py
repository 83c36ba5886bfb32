"""The pieces of a standard Keras training run: precision policy, learning-rate schedule, optimizer and
callbacks. Adversarial training (``AdversarialModel``) reuses all of them."""

import logging
import math
import os

import keras

from tfrobust.core import files
from tfrobust.core.layer_needs import collect_diagnostics, diagnostic_layers
from tfrobust.core.run_layout import RunLayout
from tfrobust.errors import TfrobustError, check_choice, check_int, check_number
from tfrobust.training.coupled_decay import AdamWithL2, SGDWithL2

PRECISIONS = {"none": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
SCHEDULES = ("constant", "piecewise", "cosine", "one_cycle")
OPTIMIZERS = ("sgd", "adam", "adamw")
WEIGHT_DECAY_MODES = ("decoupled", "coupled")


def set_precision(name):
    """Sets Keras' global dtype policy: "none" (float32), "bfloat16" (CPU/TPU) or "float16" (GPU).

    Under "float16" ``Model.compile`` wraps the optimizer in a LossScaleOptimizer (Keras does it when
    the policy is mixed_float16). Models build their last layer in float32, so logits stay float32.
    """
    check_choice("mixed_precision", name, PRECISIONS)
    keras.mixed_precision.set_global_policy(PRECISIONS[name])
    return PRECISIONS[name]


def make_schedule(name, learning_rate, *, steps_per_epoch, epochs, boundaries=(), factor=0.1):
    """A learning-rate schedule stepped per batch.

    Args:
      name: "constant"; "piecewise" (× ``factor`` at each epoch in ``boundaries``, e.g. ÷10 at 100 and
        105 as in the feature-map paper); "cosine" (decay to 0 over all ``epochs``); "one_cycle"
        (linear 0 → ``learning_rate`` over the first 2/5 of training, then linear → 0: the cyclic
        schedule of fast FGSM-RS training, Wong et al. 2020; see ``OneCycle``).
      learning_rate: the initial rate, > 0.
      steps_per_epoch, epochs: to convert epoch boundaries to steps.
    """
    check_choice("schedule", name, SCHEDULES)
    check_number("learning_rate", learning_rate, 0.0, low_inclusive=False)
    if name == "constant":
        return learning_rate
    if name == "cosine":
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps_per_epoch * epochs)
    if name == "one_cycle":
        return OneCycle(learning_rate, total_steps=steps_per_epoch * epochs)
    boundaries = sorted(int(b) for b in boundaries)
    if not boundaries:
        raise TfrobustError("schedule 'piecewise' needs at least one boundary epoch")
    if boundaries[0] < 1 or boundaries[-1] >= epochs:
        raise TfrobustError(f"piecewise boundaries must lie in [1, {epochs - 1}] epochs, got {boundaries}")
    check_number("factor", factor, 0.0, low_inclusive=False)
    values = [learning_rate * factor ** i for i in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay([b * steps_per_epoch for b in boundaries],
                                                              values)


@keras.saving.register_keras_serializable(package="tfrobust")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Triangular one-cycle learning rate: 0 → ``peak`` linearly until ``peak_fraction`` of training,
    then linearly back to 0 at ``total_steps``.

    Wong, Rice & Kolter, "Fast is better than free" (ICLR 2020) train FGSM-RS with
    ``lr(t) = interp(t, [0, 2/5·T, T], [0, lr_max, 0])`` over epochs t, updated every batch; the rate
    here is evaluated at step + 1 (as their per-batch t = epoch + (i + 1)/batches), so the first update
    is not a no-op.

    Args:
      peak: the maximum rate, > 0.
      total_steps: optimizer steps of the whole run, ≥ 1.
      peak_fraction: where the peak lies, in (0, 1) (default 0.4).
    """

    def __init__(self, peak, total_steps, peak_fraction=0.4):
        check_number("learning_rate", peak, 0.0, low_inclusive=False)
        check_int("total_steps", total_steps, 1)
        check_number("peak_fraction", peak_fraction, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.peak_fraction = float(peak_fraction)

    def __call__(self, step):
        t = keras.ops.cast(step, "float32") + 1.0
        peak_step = self.peak_fraction * self.total_steps
        rising = t / peak_step
        falling = (self.total_steps - t) / (self.total_steps - peak_step)
        return self.peak * keras.ops.clip(keras.ops.minimum(rising, falling), 0.0, 1.0)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "peak_fraction": self.peak_fraction}


def make_optimizer(name, learning_rate, *, momentum=0.9, weight_decay=0.0, weight_decay_mode="decoupled",
                   ema=None):
    """SGD (with momentum, Nesterov off), Adam or AdamW.

    Args:
      weight_decay: λ ≥ 0.
      weight_decay_mode: "decoupled" (Keras' own ``weight_decay``: w ← w − η·λ·w beside the step) or
        "coupled" (PyTorch's ``weight_decay``: λ·w added to the gradient before momentum / Adam's
        moments — ``tfrobust.training.coupled_decay``); the references' numbers mean "coupled", which
        under SGD momentum 0.9 is ≈ 10× the decoupled decay of the same λ. AdamW is decoupled by
        definition (coupled AdamW is refused: use adam).
      ema: None, or the momentum in [0, 1) of an exponential moving average of the weights (Keras'
        ``use_ema``; swap it in for evaluation with ``keras.callbacks.SwapEMAWeights``).
    """
    check_choice("optimizer", name, OPTIMIZERS)
    check_number("weight_decay", weight_decay, 0.0)
    check_choice("weight_decay_mode", weight_decay_mode, WEIGHT_DECAY_MODES)
    extra = {}
    if ema is not None:
        check_number("ema", ema, 0.0, 1.0, high_inclusive=False)
        extra = {"use_ema": True, "ema_momentum": float(ema)}
    coupled = weight_decay_mode == "coupled" and weight_decay > 0
    decay = None if coupled else (weight_decay or None)
    if name == "sgd":
        check_number("momentum", momentum, 0.0, 1.0, high_inclusive=False)
        if coupled:
            return SGDWithL2(learning_rate, momentum=momentum, l2=weight_decay, **extra)
        return keras.optimizers.SGD(learning_rate, momentum=momentum, weight_decay=decay, **extra)
    if name == "adam":
        if coupled:
            return AdamWithL2(learning_rate, l2=weight_decay, **extra)
        return keras.optimizers.Adam(learning_rate, weight_decay=decay, **extra)
    if coupled:
        raise TfrobustError("adamw decays decoupled by definition; for coupled (L2) decay use "
                            "optimizer=adam with weight_decay_mode=coupled")
    return keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay, **extra)


def make_callbacks(model_dir):
    """Resume, checkpoints, logs (file names: ``tfrobust.core.run_layout``): BackupAndRestore
    (``backup/``, removed when training completes), the last epoch's weights of the served model
    (``checkpoints/last.weights.h5``; for an ``AdversarialModel`` the wrapped model's), TensorBoard
    (``logs/``), a CSV history (``history.csv``, one row per completed epoch, exactly once across
    resumes), ``DiagnosticsLogger`` (per-epoch means of the layers' diagnostics, e.g. an ODE model's
    ``nfe``; nothing for models without such layers) and ``StopOnNaN``.

    A NaN loss stops training; the epoch it happened in is not checkpointed or backed up, so the last
    good checkpoint and backup are kept (``StopOnNaN.message`` names the epoch and batch).
    """
    os.makedirs(model_dir, exist_ok=True)
    layout = RunLayout(model_dir)
    return [
        DiagnosticsLogger(),  # first: the loggers after it see its entries in the epoch logs
        # Before the backup: an epoch's row is written before its backup, so a kill in between leaves
        # a row the resumed run replaces (ResumableCSVLogger) instead of a backed-up epoch with no row.
        ResumableCSVLogger(layout.history),
        GoodBackupAndRestore(layout.backup),
        LastWeights(layout.last_weights),
        keras.callbacks.TensorBoard(layout.logs),
        StopOnNaN(),
    ]


class DiagnosticsLogger(keras.callbacks.Callback):
    """Adds each layer diagnostic (``tfrobust.core.layer_needs``: layers with a ``diagnostics()``
    method, e.g. the ODE block's ``nfe``) to the epoch logs of ``fit``: the mean over the epoch's
    training batches of the value after each batch, summed over the layers that report it. History, CSV
    and TensorBoard see it when this callback comes before them. Works on a plain model and on a wrapper
    with ``.model`` (``AdversarialModel``). Without such layers it does nothing; with them each batch
    costs one small device-to-host copy per diagnostic."""

    def on_epoch_begin(self, epoch, logs=None):
        self._layers = diagnostic_layers(self.model)
        self._sums, self._batches = {}, 0

    def on_train_batch_end(self, batch, logs=None):
        if self._layers:
            for name, value in collect_diagnostics(self.model, self._layers).items():
                self._sums[name] = self._sums.get(name, 0.0) + value
            self._batches += 1

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self._batches:
            logs.update({name: total / self._batches for name, total in self._sums.items()})


def served_model(model):
    """The model that is saved and exported: the wrapped model of an ``AdversarialModel``, else itself."""
    from tfrobust.training.adversarial import AdversarialModel

    return model.model if isinstance(model, AdversarialModel) else model


def _finite_loss(logs):
    loss = (logs or {}).get("loss")
    return loss is None or math.isfinite(float(loss))


class StopOnNaN(keras.callbacks.Callback):
    """Stops training at the first non-finite batch loss and records where (``message``, also
    logged). ``tfrobust.training.standard`` turns the message into a one-line error."""

    def __init__(self):
        super().__init__()
        self.message = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.message is None and not _finite_loss(logs):
            self.message = (f"the loss became {float(logs['loss'])} in epoch {self._epoch + 1}, batch "
                            f"{batch + 1}; training stopped and the last good checkpoint was kept")
            self.model.stop_training = True
            logging.getLogger("tfrobust").error(self.message)


class LastWeights(keras.callbacks.Callback):
    """After every epoch with a finite loss, writes the served model's weights to ``path`` (a
    ``.weights.h5`` file) atomically: a temporary file, then a rename."""

    def __init__(self, path):
        super().__init__()
        if not path.endswith(".weights.h5"):
            raise TfrobustError(f"weights path must end in .weights.h5, got {path}")
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        if not _finite_loss(logs):
            return
        with files.atomic_path(self.path) as temporary:
            served_model(self.model).save_weights(temporary, overwrite=True)


class ResumableCSVLogger(keras.callbacks.CSVLogger):
    """``CSVLogger`` appending across resumed runs with exactly one row per epoch.

    A run killed after an epoch's row was written but before that epoch was backed up redoes the
    epoch when resumed; when the first epoch of a run begins (after ``BackupAndRestore`` has chosen
    where to resume), rows of that epoch and later ones are dropped, so the rerun's rows replace
    them. A row cut off by the kill is dropped too.
    """

    def __init__(self, filename, separator=","):
        super().__init__(filename, separator=separator, append=True)
        self._opened = False

    def on_train_begin(self, logs=None):
        self._opened = False  # the file is opened at the first epoch, once the resume epoch is known

    def on_epoch_begin(self, epoch, logs=None):
        if self._opened:
            return
        self._opened = True
        if os.path.exists(self.filename):
            with open(self.filename, encoding="utf-8") as handle:
                text = handle.read()
            lines = text.splitlines()
            if text and not text.endswith("\n"):
                lines = lines[:-1]  # cut off mid-write
            kept = lines[:1] + [line for line in lines[1:] if _row_epoch(line, self.sep) < epoch]
            if len(kept) != len(lines) or not text.endswith("\n"):
                files.write_text(self.filename, "".join(line + "\n" for line in kept))
        super().on_train_begin()


def _row_epoch(line, separator):
    """The epoch of a CSV history row; rows that do not start with an integer sort last."""
    try:
        return int(line.split(separator, 1)[0])
    except ValueError:
        return math.inf


class GoodBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` that neither backs up an epoch whose loss is not finite nor deletes the
    backup when training was stopped by a NaN, so a rerun resumes from the last good epoch, and whose
    backup survives a kill at any moment (written to temporary files, then renamed)."""

    def __init__(self, backup_dir, **kwargs):
        super().__init__(backup_dir, **kwargs)
        self._bad = False

    def on_epoch_end(self, epoch, logs=None):
        if not _finite_loss(logs):
            self._bad = True
            return
        super().on_epoch_end(epoch, logs)

    def on_train_batch_end(self, batch, logs=None):
        if not _finite_loss(logs):
            self._bad = True
            return
        super().on_train_batch_end(batch, logs)

    def on_train_end(self, logs=None):
        if not self._bad:
            super().on_train_end(logs)

    def _save_model(self):
        # Keras writes the weights file in place, then the metadata: a SIGKILL during the weights write
        # leaves a corrupt HDF5 file on which every rerun fails. Write both to temporary files and rename
        # them into place, weights first: a kill between the two renames makes the rerun repeat one
        # epoch (the metadata never points past the weights, so no epoch is skipped).
        with files.atomic_path(self._weights_path) as weights:
            self.model.save_weights(weights, overwrite=True)
        files.write_json(self._training_metadata_path,
                         {"epoch": self._current_epoch, "batch": self._last_batch_seen}, indent=None)
