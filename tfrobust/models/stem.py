"""Input preprocessing inside the model, shared by every builder.

The model's input is always a float32 image batch in [0, 1] (NHWC), so an attacker perturbs exactly what
a deployed model receives. Two optional steps follow the input, in this order:

1. per-channel normalisation ``(x - mean) / std`` (layer ``input_normalization``), off by default —
   dataset-customary values (e.g. CIFAR-10 means) are the caller's choice;
2. upsampling by an integer factor with nearest or bilinear interpolation (layer ``input_upsampling``),
   the "upsampling inputs" remedy of the feature-map paper (Sec. IV-A). Off by default (factor 1).

Both layers run in float32 even under a mixed-precision policy; the first convolution casts.

Every builder takes the same four stem options (``STEM_OPTIONS``):

  mean: None, a float, or one float per input channel.
  std: None, a positive float, or one positive float per channel. If only one of ``mean``/``std`` is
    given the other defaults to 0 / 1.
  upsample: integer factor ≥ 1 (1 = no upsampling).
  upsample_interpolation: "nearest" or "bilinear".

Reference: C. Xu and M. Yang, "Understanding Adversarial Robustness from Feature Maps of Convolutional
Layers", Sec. IV-A (upsampling inputs); its code (MTandHJ/rcm) applies normalisation and upsampling inside
the model wrapper, as here.
"""

import keras
import numpy as np

from tfrobust.errors import TfrobustError, check_choice, check_int

#: Defaults of the stem options every builder accepts.
STEM_OPTIONS = {"mean": None, "std": None, "upsample": 1, "upsample_interpolation": "nearest"}

INTERPOLATIONS = ("nearest", "bilinear")


def model_input(input_shape):
    """A float32 ``keras.Input`` named ``images`` after checking ``input_shape`` is (H, W, C)."""
    shape = tuple(input_shape) if isinstance(input_shape, (list, tuple)) else None
    if (shape is None or len(shape) != 3
            or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape)):
        raise TfrobustError(
            f"input_shape must be (height, width, channels) of positive integers, got {input_shape!r}")
    return keras.Input(shape=shape, dtype="float32", name="images")


def preprocess(images, *, mean=None, std=None, upsample=1, upsample_interpolation="nearest"):
    """Applies the stem (normalisation, then upsampling) to the input tensor ``images``."""
    channels = images.shape[-1]
    x = images
    if mean is not None or std is not None:
        mean_values = _per_channel("mean", 0.0 if mean is None else mean, channels)
        std_values = _per_channel("std", 1.0 if std is None else std, channels)
        if np.any(std_values <= 0):
            raise TfrobustError(f"std must be positive, got {std!r}")
        x = keras.layers.Normalization(mean=mean_values.tolist(),
                                       variance=(std_values ** 2).tolist(),
                                       dtype="float32", name="input_normalization")(x)
    check_int("upsample", upsample, 1)
    check_choice("upsample_interpolation", upsample_interpolation, INTERPOLATIONS)
    if upsample > 1:
        x = keras.layers.UpSampling2D(size=upsample, interpolation=upsample_interpolation,
                                      dtype="float32", name="input_upsampling")(x)
    return x


def inputs_and_stem(input_shape, **stem_options):
    """``(inputs, x)``: the model input and the preprocessed tensor the network body starts from."""
    inputs = model_input(input_shape)
    return inputs, preprocess(inputs, **stem_options)


def _per_channel(name, value, channels):
    values = np.atleast_1d(np.asarray(value, dtype="float64")) if _is_numeric(value) else None
    if values is None or values.ndim != 1 or len(values) not in (1, channels):
        raise TfrobustError(
            f"{name} must be a number or {channels} numbers (one per channel), got {value!r}")
    return np.broadcast_to(values, (channels,)).astype("float64")


def _is_numeric(value):
    try:
        np.asarray(value, dtype="float64")
    except (TypeError, ValueError):
        return False
    return True
