"""The pieces of a standard Keras training run: precision policy, learning-rate schedule, optimizer and
callbacks. Adversarial training (``AdversarialModel``) reuses all of them."""

import os

import keras

from tfrobust.errors import TfrobustError, check_choice, check_range

PRECISIONS = {"none": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
SCHEDULES = ("constant", "piecewise", "cosine")
OPTIMIZERS = ("sgd", "adam", "adamw")


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
        105 as in the feature-map paper); "cosine" (decay to 0 over all ``epochs``).
      learning_rate: the initial rate, > 0.
      steps_per_epoch, epochs: to convert epoch boundaries to steps.
    """
    check_choice("schedule", name, SCHEDULES)
    check_range("learning_rate", learning_rate, 0.0, low_inclusive=False)
    if name == "constant":
        return learning_rate
    if name == "cosine":
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps_per_epoch * epochs)
    boundaries = sorted(int(b) for b in boundaries)
    if not boundaries:
        raise TfrobustError("schedule 'piecewise' needs at least one boundary epoch")
    if boundaries[0] < 1 or boundaries[-1] >= epochs:
        raise TfrobustError(f"piecewise boundaries must lie in [1, {epochs - 1}] epochs, got {boundaries}")
    check_range("factor", factor, 0.0, low_inclusive=False)
    values = [learning_rate * factor ** i for i in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay([b * steps_per_epoch for b in boundaries],
                                                              values)


def make_optimizer(name, learning_rate, *, momentum=0.9, weight_decay=0.0):
    """SGD (with momentum, Nesterov off), Adam or AdamW; ``weight_decay`` is decoupled (Keras' own)."""
    check_choice("optimizer", name, OPTIMIZERS)
    check_range("weight_decay", weight_decay, 0.0)
    decay = weight_decay or None
    if name == "sgd":
        check_range("momentum", momentum, 0.0, 1.0, high_inclusive=False)
        return keras.optimizers.SGD(learning_rate, momentum=momentum, weight_decay=decay)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, weight_decay=decay)
    return keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)


def make_callbacks(model_dir):
    """Resume, checkpoints, logs: BackupAndRestore (``backup/``, removed when training completes),
    the last epoch's weights (``checkpoints/last.weights.h5``), TensorBoard (``logs/``), a CSV history
    (``history.csv``, appended on resume) and TerminateOnNaN."""
    os.makedirs(model_dir, exist_ok=True)
    return [
        keras.callbacks.BackupAndRestore(os.path.join(model_dir, "backup")),
        keras.callbacks.ModelCheckpoint(os.path.join(model_dir, "checkpoints", "last.weights.h5"),
                                        save_weights_only=True),
        keras.callbacks.TensorBoard(os.path.join(model_dir, "logs")),
        keras.callbacks.CSVLogger(os.path.join(model_dir, "history.csv"), append=True),
        keras.callbacks.TerminateOnNaN(),
    ]
