"""Training image denoisers through the adversarial-training engine: ``DenoisingModel`` and
``train_denoiser`` (the library behind ``trainers/train_denoiser.py``).

``AdversarialModel`` is written for classifiers in exactly three places — its batches are
``(images, integer labels)``, its metrics are accuracies, and its test step falls back to the
cross-entropy. ``DenoisingModel`` subclasses it and replaces only those: batches are ``(noisy, clean)``
image pairs, the metrics are PSNR (``tf.image.psnr``) on the observations and on the method's crafted
observations. Crafting, ``minimize`` (replica scaling, loss scaling), auxiliary losses, seeds per step,
``compile`` and the distribution plumbing are the parent's, unchanged.
"""

import math
import os
import time

import keras
import tensorflow as tf

from tfrobust import models
from tfrobust.core.files import write_json
from tfrobust.core.run_layout import SUMMARY_FILE
from tfrobust.data.denoising import make_denoising_dataset, sample_patches
from tfrobust.data.image_folder import COLORS, load_images
from tfrobust.errors import TfrobustError, check_choice, check_int, check_number
from tfrobust.training.adversarial import AdversarialModel
from tfrobust.training.methods.base import Method
from tfrobust.training.methods.hat import HAT
from tfrobust.training.recipe import StopOnNaN, make_callbacks, make_optimizer, make_schedule
from tfrobust.training.standard import TrainedRun

#: Denoising methods by name (HAT with α = 0 is normal training). Kept apart from the classifier
#: registry (``training.methods.names()``), whose methods need labels.
DENOISING_METHODS = {"hat": HAT}


class DenoisingModel(AdversarialModel):
    """Wraps a denoiser (images → images in [0, 1]) so that ``fit`` trains it with a denoising method.

    Args:
      model: a Keras model mapping [0, 1] images to [0, 1] images of the same shape.
      method: "hat" (``tfrobust.training.methods.HAT``; α = 0 is normal training) or a method object.
      seed: integer seed of the in-graph random streams.
      name: the Keras model name.
      **params: the method's parameters (``alpha=1.0, eps=5/255, steps=1`` …).

    Batches: ``(noisy, clean)`` float image pairs (``tfrobust.data.denoising.make_denoising_dataset``).
    Metrics: ``loss``, the method's components (``reconstruction``, ``consistency``), ``psnr`` (of
    f(y) against x) and, when the method crafts, ``adv_psnr`` (of f(y′); in ``fit`` on the training
    attack in training mode, in ``evaluate`` in inference mode — the training attack, not an evaluation).
    """

    def __init__(self, model, method="hat", *, seed=0, name=None, **params):
        if isinstance(method, str):
            check_choice("denoising method", method, DENOISING_METHODS)
            method, params = DENOISING_METHODS[method](**params), {}
        elif not isinstance(method, Method):
            raise TfrobustError(f"method must be a denoising method name or a Method, got {method!r}")
        super().__init__(model, method, seed=seed, track_clean_accuracy=False, test_adversarial=True,
                         name=name or f"denoising_{model.name}", **params)
        trackers = {"loss": keras.metrics.Mean(name="loss")}
        for component in self.method.components:
            trackers[component] = keras.metrics.Mean(name=component)
        trackers["aux"] = keras.metrics.Mean(name="aux")
        trackers["psnr"] = keras.metrics.Mean(name="psnr")
        if self.method.crafted:
            trackers[f"{self.method.crafted}_psnr"] = keras.metrics.Mean(name=f"{self.method.crafted}_psnr")
        self._trackers = trackers

    def train_step(self, data):
        self._state.train_traces += 1
        observed, clean = self._unpack(data)
        seed = self._step_seed(self.optimizer.iterations, salt=0)
        record = self.method.train_step(self, observed, clean, seed)
        return self._update_metrics(clean, [record], record.clean_logits)

    def test_step(self, data):
        self._state.test_traces += 1
        observed, clean = self._unpack(data)
        seed = self._step_seed(tf.constant(0, tf.int64), salt=1)
        crafted = tf.stop_gradient(self.method.craft(self, observed, clean, seed))
        record = self._record_loss(lambda: self.method.loss(self, observed, clean, crafted, training=False))
        return self._update_metrics(clean, [record], record.clean_logits)

    quality_metric = "psnr"
    clean_quality_metric = "psnr"

    def _update_quality(self, name, y, outputs):
        self._trackers[name].update_state(tf.image.psnr(outputs, y, max_val=1.0))

    def _unpack(self, data):
        observed, clean, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if sample_weight is not None:
            raise TfrobustError("DenoisingModel does not support sample weights")
        if clean is None:
            raise TfrobustError("DenoisingModel needs clean targets: fit on (noisy, clean) image batches")
        return tf.cast(observed, tf.float32), tf.cast(clean, tf.float32)


def train_denoiser(*, model_dir, model="dncnn", model_options=None, color="gray", train_source="skimage",
                   test_source="skimage", patch_size=50, num_patches=3000, test_patches=256, gamma=25 / 255,
                   alpha=0.0, eps=5 / 255, eps_unit="per_pixel", attack_steps=1, step_size=None, epochs=5,
                   batch_size=64, optimizer="adam", learning_rate=1e-3, weight_decay=0.0, schedule="cosine",
                   seed=0, verbose="auto"):
    """Trains a γ-denoiser with HAT (α = 0: normal training); returns a ``TrainedRun`` (export is the
    caller's step, as for classifiers: ``export_all(run.model, …, representative_images=
    run.representative_images)`` then ``training.record_exports``).

    Data: ``num_patches`` seeded ``patch_size``² patches of ``train_source`` ("skimage": the embedded
    training split; or an image folder), Gaussian noise σ ~ U(0, γ) per patch drawn afresh every epoch;
    validation on ``test_patches`` patches of ``test_source`` (the held-out split). Everything is
    written to ``model_dir`` (checkpoints, backup for resume, history.csv, TensorBoard logs,
    summary.json) as for the classifiers (``tfrobust.training.recipe.make_callbacks``).
    """
    check_choice("color", color, COLORS)
    check_choice("denoiser", model, models.names("denoise"))
    check_int("patch_size", patch_size, 1)
    check_int("epochs", epochs, 1)
    check_int("batch_size", batch_size, 1)
    check_number("gamma", gamma, 0.0, 1.0, low_inclusive=False)
    check_number("alpha", alpha, 0.0)
    check_number("eps", eps, 0.0, low_inclusive=False)
    check_int("seed", seed, 0)
    keras.utils.set_random_seed(seed)
    train_images, _ = load_images(train_source, "train", color)
    test_images, _ = load_images(test_source, "test", color)
    train_patches = sample_patches(train_images, patch_size, num_patches, seed=seed)
    val_patches = sample_patches(test_images, patch_size, test_patches, seed=seed + 1, augment=False)
    train_ds = make_denoising_dataset(train_patches, batch_size, gamma=gamma, seed=seed)
    val_ds = make_denoising_dataset(val_patches, batch_size, gamma=gamma, seed=seed + 1, shuffle=False)
    steps_per_epoch = math.ceil(num_patches / batch_size)
    rate = make_schedule(schedule, learning_rate, steps_per_epoch=steps_per_epoch, epochs=epochs)
    channels = train_patches.shape[-1]
    net = models.build(model, (None, None, channels), None, **(model_options or {}))
    trained = DenoisingModel(net, "hat", seed=seed, alpha=alpha, eps=eps, eps_unit=eps_unit, steps=attack_steps,
                             step_size=step_size)
    trained.compile(optimizer=make_optimizer(optimizer, rate, weight_decay=weight_decay))
    callbacks = make_callbacks(model_dir)
    start = time.perf_counter()
    history = trained.fit(train_ds, epochs=epochs, validation_data=val_ds, callbacks=callbacks, verbose=verbose)
    train_seconds = time.perf_counter() - start
    nan_stop = next(c for c in callbacks if isinstance(c, StopOnNaN))
    if nan_stop.message:
        raise TfrobustError(nan_stop.message)
    results = trained.evaluate(val_ds, verbose=0, return_dict=True)
    summary = {
        "task": "denoise", "model": model, "model_options": model_options or {}, "color": color,
        "train_source": train_source, "test_source": test_source, "patch_size": patch_size,
        "num_patches": num_patches, "gamma": gamma, "method": trained.method.get_config(), "epochs": epochs,
        "batch_size": batch_size, "optimizer": optimizer, "learning_rate": learning_rate, "schedule": schedule,
        "weight_decay": weight_decay, "seed": seed, "train_seconds": train_seconds,
        "epochs_run_this_invocation": len(history.epoch),
        "val_psnr": float(results["psnr"]),
    }
    if "adv_psnr" in results:
        summary["val_adv_psnr"] = float(results["adv_psnr"])
    summary["summary_path"] = os.path.join(model_dir, SUMMARY_FILE)
    write_json(summary["summary_path"], summary)
    # int8 calibration on what the denoiser receives: noisy observations across the noise range.
    calibration = next(iter(make_denoising_dataset(train_patches[:200], 200, gamma=gamma, seed=seed)))[0]
    return TrainedRun(model=net, summary=summary, representative_images=calibration.numpy(), chief=True,
                      model_dir=model_dir)


__all__ = ["DenoisingModel", "train_denoiser"]
