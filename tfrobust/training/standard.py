"""Training through ``keras.Model.fit``, from a ``TrainingConfig`` to a trained model and its run summary:
standard training, or any robust training method through ``AdversarialModel``.

This is the library behind ``trainers/train.py``; the script parses flags into a ``TrainingConfig``,
calls ``train`` and then exports (``tfrobust.export.export_all``) and ``record_exports``.
"""

import dataclasses
import math
import time

import keras
import numpy as np

from tfrobust import data, models
from tfrobust.core.files import write_json
from tfrobust.core.layer_needs import training_label_layers
from tfrobust.core.run_layout import SUMMARY_FILE, RunLayout  # noqa: F401  (SUMMARY_FILE re-exported)
from tfrobust.errors import TfrobustError
from tfrobust.training.adversarial import AdversarialModel
from tfrobust.training.config import TrainingConfig
from tfrobust.training.distribute import check_global_batch, is_chief, make_strategy, shard_dataset, worker_dir
from tfrobust.training.methods import make_method
from tfrobust.training.recipe import StopOnNaN, make_callbacks, make_optimizer, make_schedule, set_precision

#: Training images kept as the representative set of an int8 TFLite export.
REPRESENTATIVE_IMAGES = 200


@dataclasses.dataclass
class TrainedRun:
    """What ``train`` returns.

    Attributes:
      model: the trained plain Keras model (images → logits): what is saved and exported.
      summary: the run summary, also written to ``summary_path`` (``summary.json``).
      representative_images: the first training images, for int8 TFLite calibration.
      chief: whether this process is the chief (only the chief exports in multi-worker training).
      model_dir: this process's run folder (the chief's is ``config.model_dir``).
    """

    model: keras.Model
    summary: dict
    representative_images: np.ndarray
    chief: bool
    model_dir: str


def train(config):
    """Trains ``config.model`` on ``config.dataset`` with ``config.method``; returns a ``TrainedRun``.

    ``method="standard"`` without parameters is plain ``keras.Model.fit`` with cross-entropy; any other
    method (``tfrobust.training.methods.names()``, parameters in ``method_params``, e.g.
    ``{"eps": 0.1, "beta": 6.0}``) trains an ``AdversarialModel`` around the model, validates against the
    method's own attack every epoch, and reports the final clean and adversarial test accuracy. Models
    with layers that read the training labels (``uses_training_labels``, e.g. CIFS) and multi-worker runs
    train through ``AdversarialModel`` even for standard training.

    ``distribute`` is a ``tfrobust.training.distribute.STRATEGIES`` name ("none", "mirrored",
    "multi_worker", "tpu"; ``tpu`` names the TPU); ``batch_size`` is then the global batch and must be a
    multiple of the number of replicas. Non-chief workers keep their files in
    ``<model_dir>/workers/<type>_<index>``.

    Everything a run writes lives in ``model_dir`` (``tfrobust.core.run_layout``: backup, checkpoints,
    logs, history, ``summary.json``). Re-running with the same config after an interruption resumes from
    the last completed epoch. A NaN loss raises ``TfrobustError`` naming the epoch and batch; the last
    good checkpoint and backup are kept.

    ``config.recipe`` (a ``RecipeOptions``) carries the reference-recipe and model-selection settings:
    coupled weight decay, EMA, the attack's BatchNorm mode, CIFS and TisODE specifics, and the held-out
    validation split with its fixed PGD attack, best-robust weights and ``export_weights``; with a
    validation split the run validates on it (never on the test set), ``TrainedRun.model`` holds the
    selected weights and ``summary.json``'s ``selection`` names the selected epoch and its validation
    metrics.
    """
    if not isinstance(config, TrainingConfig):
        raise TfrobustError(f"train takes a TrainingConfig, got {type(config).__name__}")
    c = config
    recipe = c.recipe
    # Multi-worker runs train through AdversarialModel even for standard training: it works around a
    # Keras bug that breaks plain models under MultiWorkerMirroredStrategy (see its _maybe_symbolic_build).
    adversarial = (c.method != "standard" or bool(c.method_params) or c.distribute == "multi_worker"
                   or recipe.needs_wrapper)
    method_object = make_method(c.method, **c.method_params) if adversarial else None  # fail before loading
    strategy = make_strategy(c.distribute, tpu=c.tpu)
    check_global_batch(c.batch_size, strategy)
    keras.utils.set_random_seed(c.seed)
    policy = set_precision(c.mixed_precision)
    info = data.info(c.dataset)
    (x_train, y_train), (x_test, y_test) = data.load_splits(c.dataset, train_size=c.train_size,
                                                            test_size=c.test_size, data_dir=c.data_dir)
    (x_train, y_train), validation = recipe.split(x_train, y_train, c.seed)
    # Global batches; fit splits them across replicas and shards them across workers.
    train_ds = shard_dataset(data.make_dataset(x_train, y_train, c.batch_size, shuffle=True, seed=c.seed,
                                               augment=c.augment))
    test_ds = shard_dataset(data.make_dataset(x_test, y_test, c.batch_size))
    validation_ds = test_ds if validation is None else shard_dataset(data.make_dataset(*validation, c.batch_size))
    steps_per_epoch = math.ceil(len(x_train) / c.batch_size)
    updates_per_batch = method_object.updates_per_batch if adversarial else 1
    rate = make_schedule(c.schedule, c.learning_rate, steps_per_epoch=steps_per_epoch * updates_per_batch,
                         epochs=c.epochs, boundaries=c.lr_boundaries, factor=c.lr_factor)
    with strategy.scope():  # variables (model, optimizer, metrics) are created per replica here
        net = models.build(c.model, info.image_shape, info.num_classes, **c.model_options)
        opt = make_optimizer(c.optimizer, rate, momentum=c.momentum, weight_decay=c.weight_decay,
                             weight_decay_mode=recipe.weight_decay_mode, ema=recipe.ema)
        if not adversarial and training_label_layers(net):
            # Such layers (CIFS puts the true label in place of its top-1 prediction, thesis §4.3.2) read
            # the labels from AdversarialModel's training_labels context, which plain fit lacks.
            adversarial, method_object = True, make_method("standard")
        if adversarial:
            trained_net, method_object = recipe.training_model(net, c.method, c.method_params, method_object)
            trained = AdversarialModel(trained_net, method_object, seed=c.seed,
                                       **recipe.wrapper_options(method_object))
            trained.compile(optimizer=opt)
        else:
            trained = net
            trained.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                            metrics=["accuracy"])
    chief = is_chief(strategy)
    model_dir = worker_dir(c.model_dir, strategy)
    callbacks = recipe.callbacks(make_callbacks(model_dir), model_dir, net)
    start = time.perf_counter()
    history = trained.fit(train_ds, epochs=c.epochs, validation_data=validation_ds, callbacks=callbacks,
                          validation_freq=recipe.validation_freq, verbose=c.verbose)
    train_seconds = time.perf_counter() - start
    nan_stop = next(cb for cb in callbacks if isinstance(cb, StopOnNaN))
    if nan_stop.message:
        raise TfrobustError(nan_stop.message)
    epochs_done = _epochs_done(callbacks, c.epochs)
    if recipe.ema is not None and epochs_done < c.epochs:
        # SwapEMAWeights finalises the average only at the scheduled last epoch; after an early stop, fit's
        # own finalize_variable_values copies the swapped-out raw weights back. The last checkpoint was
        # written after the swap and holds the EMA weights the summary and the export must use.
        net.load_weights(RunLayout(model_dir).last_weights)
    selected = recipe.select(callbacks, net, epochs_done=epochs_done)
    results = trained.evaluate(test_ds, verbose=0, return_dict=True)
    summary = {
        "dataset": c.dataset, "model": c.model, "model_options": c.model_options, "epochs": c.epochs,
        "batch_size": c.batch_size, "optimizer": c.optimizer, "learning_rate": c.learning_rate,
        "schedule": c.schedule, "weight_decay": c.weight_decay, "augment": c.augment, "precision": policy,
        "seed": c.seed, "train_size": len(x_train), "test_size": len(x_test), "distribute": c.distribute,
        "replicas": strategy.num_replicas_in_sync,
        "method": method_object.get_config() if adversarial else {"name": "standard"},
        "test_accuracy": float(results["clean_accuracy"] if adversarial else results["accuracy"]),
        "train_seconds": train_seconds, "epochs_run_this_invocation": len(history.epoch),
        "images_per_second": len(history.epoch) * len(x_train) / max(train_seconds, 1e-9),
        "recipe": recipe.as_dict(), "selection": selected,
        "validation_size": 0 if validation is None else len(validation[0]),
    }
    if adversarial and trained.validation_attack is not None:
        # The fixed validation attack (PGD-k, true labels) on the test set, with the selected weights.
        summary["test_adv_accuracy"] = float(results["adv_accuracy"])
        summary["test_attack"] = trained.validation_attack.get_config()
    elif adversarial and method_object.crafted:
        # Accuracy against the method's own training attack (inference mode) — not a robustness
        # evaluation: use tfrobust.evaluation (PGD-50, AutoAttack) for that.
        summary[f"test_{method_object.crafted}_accuracy"] = float(results[f"{method_object.crafted}_accuracy"])
    summary["summary_path"] = RunLayout(model_dir).summary
    write_json(summary["summary_path"], summary)
    return TrainedRun(net, summary, x_train[:REPRESENTATIVE_IMAGES], chief, model_dir)


def _epochs_done(callbacks, epochs):
    """Epochs completed (EarlyStopping may stop before ``epochs``)."""
    stopper = next((cb for cb in callbacks if isinstance(cb, keras.callbacks.EarlyStopping)), None)
    return stopper.stopped_epoch + 1 if stopper is not None and stopper.stopped_epoch else epochs


def record_exports(run, exports):
    """Adds ``exports`` (``{format: path}`` from ``export_all``) to the run's summary and rewrites its
    ``summary.json`` (atomically); returns the summary."""
    run.summary["exports"] = dict(exports)
    write_json(run.summary["summary_path"], run.summary)
    return run.summary
