"""DnCNN (Zhang et al. 2017): the residual-learning denoiser of thesis chapter 2, gray (-B) and RGB (-C).

A denoiser maps images to images, so it uses the registry's ``build(name, input_shape, num_classes)``
with ``num_classes`` standing for the output channels: pass None (= the input's channels) or the
input's channel count. ``input_shape`` may leave height and width None: the network is fully
convolutional and denoises any size (exports keep the spatial axes open).
"""

import keras

from tfrobust.errors import TfrobustError, check_int
from tfrobust.models import registry


def dncnn(input_shape, num_classes=None, *, depth=17, width=64, batch_norm=True):
    """DnCNN: conv3×3-w + ReLU → (depth − 2) × [conv3×3-w + BN + ReLU] → conv3×3-C = the noise estimate;
    output ``clip(y − noise, 0, 1)``.

    Args:
      input_shape: (H, W, C) with C = 1 (gray) or 3 (RGB); H and W may be None (any size).
      num_classes: None or C (a denoiser outputs as many channels as it takes).
      depth: convolution layers, ≥ 3 (17 for DnCNN-S, 20 for DnCNN-B/-C as in the thesis).
      width: feature channels of the hidden layers (64 in the paper).
      batch_norm: BatchNorm after the hidden convolutions (the paper's; False gives a plain CNN).

    Layer names: ``conv1`` … ``conv<depth>``, ``bn2`` … ``bn<depth-1>``, ``noise`` (the residual),
    ``denoised`` (float32, [0, 1]).

    Reference: Zhang, Zuo, Chen, Meng & Zhang, "Beyond a Gaussian Denoiser: Residual Learning of Deep CNN
    for Image Denoising", IEEE TIP 2017 (Fig. 1). Choices: the output is clipped into [0, 1] (the
    library's image contract; the clip can only move a reconstruction closer to a [0, 1] ground truth);
    He-normal initialisation (the paper's "MSRA" scheme) except the last convolution, which starts at zero
    so the untrained denoiser is the identity (it converges in far fewer steps; the paper is silent);
    hidden convolutions without bias when BatchNorm follows.
    """
    shape = tuple(input_shape) if isinstance(input_shape, (list, tuple)) else None
    if (shape is None or len(shape) != 3 or shape[2] not in (1, 3)
            or any(d is not None and (isinstance(d, bool) or not isinstance(d, int) or d < 1)
                   for d in shape[:2])):
        raise TfrobustError(f"DnCNN input_shape must be (height or None, width or None, 1 or 3), got {input_shape!r}")
    channels = shape[2]
    if num_classes is not None and num_classes != channels:
        raise TfrobustError(f"a denoiser outputs its input's {channels} channel(s): num_classes must be None or "
                            f"{channels}, got {num_classes!r}")
    check_int("depth", depth, 3)
    check_int("width", width, 1)
    images = keras.Input(shape=shape, dtype="float32", name="images")
    x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", kernel_initializer="he_normal",
                            name="conv1")(images)
    for i in range(2, depth):
        x = keras.layers.Conv2D(width, 3, padding="same", use_bias=not batch_norm,
                                kernel_initializer="he_normal", name=f"conv{i}")(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
    # Zero-initialised noise head: the untrained network is the identity (output = input), so training
    # starts at the input's PSNR instead of from a random residual several dB below it.
    x = keras.layers.Conv2D(channels, 3, padding="same", kernel_initializer="zeros", name=f"conv{depth}")(x)
    noise = keras.layers.Activation("linear", dtype="float32", name="noise")(x)
    residual = keras.layers.Subtract(dtype="float32", name="residual")([images, noise])
    # ReLU capped at 1 is clip(·, 0, 1) as a serialisable builtin layer (TFLite: RELU_0_TO_1 / RELU6-style).
    denoised = keras.layers.ReLU(max_value=1.0, dtype="float32", name="denoised")(residual)
    return keras.Model(images, denoised, name="dncnn")


def dncnn_b(input_shape, num_classes=None, *, depth=20, width=64, batch_norm=True):
    """DnCNN-B: the blind gray-scale denoiser (20 layers, 64 channels; thesis §2.3.2)."""
    if tuple(input_shape)[-1:] != (1,):
        raise TfrobustError(f"dncnn_b is the gray-scale DnCNN: input_shape must end in 1, got {input_shape!r}")
    return dncnn(input_shape, num_classes, depth=depth, width=width, batch_norm=batch_norm)


def dncnn_c(input_shape, num_classes=None, *, depth=20, width=64, batch_norm=True):
    """DnCNN-C: the colour denoiser (20 layers, 64 channels, 3 input and output channels; thesis §2.3.2)."""
    if tuple(input_shape)[-1:] != (3,):
        raise TfrobustError(f"dncnn_c is the RGB DnCNN: input_shape must end in 3, got {input_shape!r}")
    return dncnn(input_shape, num_classes, depth=depth, width=width, batch_norm=batch_norm)


registry.register("dncnn", dncnn, task="denoise")
registry.register("dncnn_b", dncnn_b, task="denoise")
registry.register("dncnn_c", dncnn_c, task="denoise")
