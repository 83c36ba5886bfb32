"""Training through ``keras.Model.fit``, from dataset name to exports: standard training, or any robust
training method through ``AdversarialModel``.

This is the library behind ``trainers/train.py``; the script only parses flags.
"""

import json
import math
import os
import time

import keras

from tfrobust import data, models
from tfrobust.errors import TfrobustError
from tfrobust.export import export_all
from tfrobust.layers.cifs import cifs_layers
from tfrobust.training.adversarial import AdversarialModel
from tfrobust.training.distribute import check_global_batch, is_chief, make_strategy, shard_dataset, worker_dir
from tfrobust.training.methods import make_method
from tfrobust.training.recipe import StopOnNaN, make_callbacks, make_optimizer, make_schedule, set_precision

SUMMARY_FILE = "summary.json"


def train_and_export(*, dataset, model, model_dir, epochs, batch_size, data_dir=None, train_size=None,
                     test_size=None, model_options=None, method="standard", method_params=None,
                     optimizer="sgd", learning_rate=0.05, momentum=0.9, weight_decay=5e-4, schedule="cosine",
                     lr_boundaries=(), lr_factor=0.1, augment=None, mixed_precision="none", seed=0,
                     export_dir=None, export_name=None,
                     export_formats=("saved_model", "keras", "tflite_fp32", "tflite_int8"), distribute="none",
                     tpu=None, verbose="auto"):
    """Trains ``model`` on ``dataset`` with ``method`` and optionally exports it; returns the run summary.

    ``method="standard"`` without parameters is plain ``keras.Model.fit`` with cross-entropy; any other
    method (``tfrobust.training.methods.names()``, parameters in ``method_params``, e.g.
    ``{"eps": 0.1, "beta": 6.0}``) trains an ``AdversarialModel`` around the model, validates against the
    method's own attack every epoch, and reports the final clean and adversarial test accuracy.

    ``distribute`` is a ``tfrobust.training.distribute.STRATEGIES`` name ("none", "mirrored",
    "multi_worker", "tpu"; ``tpu`` names the TPU); ``batch_size`` is then the global batch and must be a
    multiple of the number of replicas. In multi-worker training only the chief exports; the other
    workers keep their files in ``<model_dir>/workers/<type>_<index>``.

    Everything a run writes lives in ``model_dir`` (see ``make_callbacks``) plus ``summary.json``.
    Re-running with the same arguments after an interruption resumes from the last completed epoch.
    Exports (of the plain model) go to ``export_dir`` under ``export_name`` (default: the basename of
    ``model_dir``). A NaN loss raises ``TfrobustError`` naming the epoch and batch; the last good
    checkpoint and backup are kept.
    """
    method_params = dict(method_params or {})
    # Multi-worker runs train through AdversarialModel even for standard training: it works around a
    # Keras bug that breaks plain models under MultiWorkerMirroredStrategy (see its _maybe_symbolic_build).
    adversarial = method != "standard" or bool(method_params) or distribute == "multi_worker"
    method_object = make_method(method, **method_params) if adversarial else None  # fail before loading
    strategy = make_strategy(distribute, tpu=tpu)
    check_global_batch(batch_size, strategy)
    keras.utils.set_random_seed(seed)
    policy = set_precision(mixed_precision)
    info = data.info(dataset)
    (x_train, y_train), (x_test, y_test) = data.load_splits(dataset, train_size=train_size,
                                                            test_size=test_size, data_dir=data_dir)
    # Global batches; fit splits them across replicas and shards them across workers.
    train_ds = shard_dataset(data.make_dataset(x_train, y_train, batch_size, shuffle=True, seed=seed,
                                               augment=augment))
    test_ds = shard_dataset(data.make_dataset(x_test, y_test, batch_size))
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    updates_per_batch = method_object.updates_per_batch if adversarial else 1
    rate = make_schedule(schedule, learning_rate, steps_per_epoch=steps_per_epoch * updates_per_batch,
                         epochs=epochs, boundaries=lr_boundaries, factor=lr_factor)
    with strategy.scope():  # variables (model, optimizer, metrics) are created per replica here
        net = models.build(model, info.image_shape, info.num_classes, **(model_options or {}))
        opt = make_optimizer(optimizer, rate, momentum=momentum, weight_decay=weight_decay)
        if not adversarial and cifs_layers(net):
            # CIFS puts the true label in place of its top-1 prediction in training (thesis §4.3.2); the
            # labels reach it through AdversarialModel's training_labels context, which plain fit lacks.
            adversarial, method_object = True, make_method("standard")
        if adversarial:
            trained = AdversarialModel(net, method_object, seed=seed)
            trained.compile(optimizer=opt)
        else:
            trained = net
            trained.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                            metrics=["accuracy"])
    chief = is_chief(strategy)
    model_dir = worker_dir(model_dir, strategy)
    callbacks = make_callbacks(model_dir)
    start = time.perf_counter()
    history = trained.fit(train_ds, epochs=epochs, validation_data=test_ds, callbacks=callbacks,
                          verbose=verbose)
    train_seconds = time.perf_counter() - start
    nan_stop = next(c for c in callbacks if isinstance(c, StopOnNaN))
    if nan_stop.message:
        raise TfrobustError(nan_stop.message)
    results = trained.evaluate(test_ds, verbose=0, return_dict=True)
    summary = {
        "dataset": dataset, "model": model, "model_options": model_options or {}, "epochs": epochs,
        "batch_size": batch_size, "optimizer": optimizer, "learning_rate": learning_rate,
        "schedule": schedule, "weight_decay": weight_decay, "augment": augment, "precision": policy,
        "seed": seed, "train_size": len(x_train), "test_size": len(x_test), "distribute": distribute,
        "replicas": strategy.num_replicas_in_sync,
        "method": method_object.get_config() if adversarial else {"name": "standard"},
        "test_accuracy": float(results["clean_accuracy"] if adversarial else results["accuracy"]),
        "train_seconds": train_seconds, "epochs_run_this_invocation": len(history.epoch),
        "images_per_second": len(history.epoch) * len(x_train) / max(train_seconds, 1e-9),
    }
    if adversarial and method_object.crafted:
        # Accuracy against the method's own training attack (inference mode) — not a robustness
        # evaluation: use tfrobust.evaluation (PGD-50, AutoAttack) for that.
        summary[f"test_{method_object.crafted}_accuracy"] = float(results[f"{method_object.crafted}_accuracy"])
    if export_dir and chief:
        name = export_name or os.path.basename(os.path.normpath(model_dir))
        summary["exports"] = export_all(net, export_dir, name, export_formats,
                                        representative_images=x_train[:200])
    summary["summary_path"] = os.path.join(model_dir, SUMMARY_FILE)
    temp_path = summary["summary_path"] + ".tmp"
    with open(temp_path, "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2)
    os.replace(temp_path, summary["summary_path"])
    return summary
