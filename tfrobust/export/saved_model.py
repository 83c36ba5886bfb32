"""SavedModel export in TF-Serving layout: ``<base>/<name>/<version>/`` with a ``serving_default``
signature (input ``images`` float32 [None, H, W, C] in [0, 1]; outputs ``logits`` and ``probabilities``).

Image-to-image models (denoisers: a 4-D output) serve ``images`` → ``denoised`` instead, and their
spatial axes may stay open (``[None, None, None, C]``: any image size).

Every version also holds TF Serving warm-up requests and a ``tfrobust.json`` description in
``<version>/assets.extra/``."""

import os

import keras
import numpy as np
import tensorflow as tf

from tfrobust.errors import TfrobustError, check_int
from tfrobust.export.atomic import atomic_path
from tfrobust.export.contract import DENOISED_NAME, INPUT_NAME, NAME_PATTERN, SIGNATURE
from tfrobust.export.description import describe, write_description
from tfrobust.export.warmup import check_warmup_images, write_warmup_requests

#: Side of the grey warm-up images of a model with open spatial axes exported without data.
WARMUP_SIDE = 32


def is_image_to_image(model):
    """Whether ``model`` maps images to images (a denoiser): one 4-D output."""
    outputs = getattr(model, "outputs", None) or []
    return len(outputs) == 1 and len(outputs[0].shape) == 4


def serving_fn(model):
    """The function every export serves: images → {"logits", "probabilities"} (classifiers) or
    {"denoised"} (image-to-image models), in float32 whatever the model's compute dtype."""
    if is_image_to_image(model):
        return lambda images: {DENOISED_NAME: tf.cast(model(images, training=False), tf.float32)}

    def serve(images):
        logits = tf.cast(model(images, training=False), tf.float32)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits)}

    return serve


def float32_model(model):
    """``model`` itself if it computes in float32, else a float32 copy with the same weights.

    Exports always compute in float32: a model trained under ``mixed_bfloat16`` keeps float32 weights,
    and its bfloat16 ops convert to neither builtin TFLite nor int8 kernels. Serving in float32 is also
    what a CPU deployment wants. Layers are rebuilt from their configs with ``dtype="float32"``.
    """
    if all(layer.dtype_policy.compute_dtype == "float32" for layer in model.layers):
        return model

    def rebuild(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    clone = keras.models.clone_model(model, clone_function=rebuild)
    clone.set_weights(model.get_weights())
    return clone


def next_version(model_base):
    """The next TF-Serving version number under ``model_base`` (1 when there is none)."""
    if not os.path.isdir(model_base):
        return 1
    versions = [int(entry) for entry in os.listdir(model_base) if entry.isdigit()]
    return max(versions, default=0) + 1


def export_saved_model(model, base_dir, name, version=None, representative_images=None, description=None):
    """Writes ``model`` as ``<base_dir>/<name>/<version>/`` atomically and returns that path.

    The version directory holds the SavedModel, ``assets.extra/tf_serving_warmup_requests`` (see
    ``warmup``) and ``assets.extra/tfrobust.json`` (see ``description``), all written inside the
    temporary directory before the rename, so a server never loads a version without them.

    Args:
      model: a built ``keras.Model`` mapping [0, 1] images to logits (or to images: a denoiser).
      base_dir: the model server's base path.
      name: model name (letters, digits, ``_ . -``).
      version: positive integer; default one above the highest existing version.
      representative_images: float32 images in [0, 1] from the training data, of the model's input shape
        (checked: ``ArtifactError`` otherwise); the first ones become the warm-up requests. Without them
        the warm-up requests hold mid-grey (0.5) images (open spatial axes: ``WARMUP_SIDE`` pixels): the
        kernels warmed up are the same, only the activations are unrealistic.
      description: keyword arguments of ``description.describe`` besides name, version, shapes and task
        (``class_names``, ``dataset``, ``method``).
    """
    if not NAME_PATTERN.match(name or ""):
        raise TfrobustError(f"model name must match {NAME_PATTERN.pattern}, got {name!r}")
    model_base = os.path.join(base_dir, name)
    version = next_version(model_base) if version is None else version
    check_int("version", version, 1)
    input_shape = tuple(model.inputs[0].shape[1:])
    if None in input_shape and not (is_image_to_image(model) and input_shape[-1] is not None):
        raise TfrobustError(f"model input shape must be fully known besides the batch, got {input_shape}")
    model = float32_model(model)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name=SIGNATURE, fn=serving_fn(model),
        input_signature=[tf.TensorSpec((None, *input_shape), tf.float32, name=INPUT_NAME)])
    final_path = os.path.join(model_base, str(version))
    image_to_image = is_image_to_image(model)
    if representative_images is None or not len(representative_images):
        shape = tuple(WARMUP_SIDE if d is None else d for d in input_shape)
        representative_images = np.full((1, *shape), 0.5, np.float32)
    warmup_images = check_warmup_images(representative_images, input_shape)  # before anything is written
    with atomic_path(final_path, directory=True) as temp_path:
        archive.write_out(temp_path, verbose=False)
        write_warmup_requests(temp_path, warmup_images, name, input_shape)
        write_description(temp_path, describe(
            name=name, version=version, input_shape=input_shape, task="denoise" if image_to_image else "classify",
            num_classes=None if image_to_image else int(model.outputs[0].shape[-1]), **(description or {})))
    return final_path
