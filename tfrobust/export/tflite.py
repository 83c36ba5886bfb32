"""TFLite conversion of an exported SavedModel: fp32, dynamic-range and full-integer int8.

Converting from the SavedModel (not from the live Keras model) keeps the ``serving_default`` signature
(``images`` → ``logits``, ``probabilities``) in the flatbuffer, so the interpreter's signature runner
addresses tensors by the same names as TF-Serving.

- ``fp32``: builtin ops, float weights and activations.
- ``dynamic``: int8 weights, float activations (no calibration data needed).
- ``int8``: integer-only graph with int8 input and output; activations calibrated on representative
  training images. Inputs are quantised by the caller (``TFLiteArtifact`` does it); the [0, 1] input
  range quantises with scale ≈ 1/255 so 8-bit pixel values stay exact.
"""

import numpy as np
import tensorflow as tf

from tfrobust.errors import TfrobustError, check_choice
from tfrobust.export.atomic import atomic_path
from tfrobust.export.saved_model import INPUT_NAME, SIGNATURE

QUANTIZATIONS = ("fp32", "dynamic", "int8")


def convert_tflite(saved_model_dir, path, quantization="fp32", representative_images=None,
                   calibration_steps=200):
    """Converts the SavedModel at ``saved_model_dir`` to ``path`` atomically; returns the path.

    Args:
      quantization: "fp32", "dynamic" or "int8".
      representative_images: float32 [N, H, W, C] images in [0, 1] (from the training set); required
        for "int8".
      calibration_steps: at most this many images are used for int8 calibration.
    """
    check_choice("quantization", quantization, QUANTIZATIONS)
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=[SIGNATURE])
    if quantization in ("dynamic", "int8"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "int8":
        if representative_images is None or len(representative_images) == 0:
            raise TfrobustError("int8 TFLite export needs representative images from the training set")
        images = np.asarray(representative_images, np.float32)[:calibration_steps]

        def representative_dataset():
            for image in images:
                yield {INPUT_NAME: image[None]}

        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    flatbuffer = converter.convert()
    with atomic_path(path, directory=False) as temp_path:
        with open(temp_path, "wb") as handle:
            handle.write(flatbuffer)
    return path
