"""CIFAR VGG-16 and AlexNet with configurable downsampling strides (feature-map paper, Appendix B).

Registered models: ``vgg16`` and ``alexnet``. Both are a convolutional part, adaptive (global) average
pooling (the ``pooling`` head, "avg" by default), then a fully connected chain
``Dense(fc_units[0]) → ReLU → Dropout → Dense(fc_units[1]) → ReLU → Dropout → logits`` (float32).

Downsampling (Fig. 9 of the paper, as in its code MTandHJ/rcm):

* VGG-16: five stages of 3×3 convolutions (64×2, 128×2, 256×3, 512×3, 512×3), each followed by a 2×2
  max pooling with that stage's stride; a stride-1 entry drops the pooling (the reference code does the
  same). Default "2-2-2-2-2"; the paper's improved configuration is "1-1-2-2-2".
* AlexNet: the stride of the first (5×5, 64) convolution, then of the three 2×2 max poolings (after the
  5×5 192-channel conv and after the 384-256-256 3×3 convs). Default "2-2-2-2"; improved "1-1-2-2".
  A stride-1 pooling is kept (a 2×2 max filter), as in the reference code.

Choices where the paper is silent: "same" padding for convolutions and poolings, so any input size
works (28×28 MNIST included) and a stride-1 pooling keeps the size (PyTorch's unpadded 2×2 stride-1
pooling shrinks it by one pixel); FC widths as in the reference code — 256-256 for VGG-16 (the ImageNet
4096-4096 is far too wide for a 512-d pooled CIFAR feature), 512-512 for AlexNet — with dropout 0.5
after each hidden Dense layer for both (the reference AlexNet drops before each of its first two Dense
layers instead; same number of dropouts); AlexNet has no normalisation by default, VGG-16 uses batch
normalisation ("vgg16_bn" in the reference code).
"""

import keras

from tfrobust.errors import check_number
from tfrobust.models import components, registry, stem
from tfrobust.models.components import HEADS, NORMS

#: VGG-16 (configuration "D") channels per stage.
VGG16_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


def vgg16(input_shape, num_classes, *, strides="2-2-2-2-2", width=1.0, norm="batch", conv="standard",
          pooling="avg", fc_units=(256, 256), dropout=0.5,
          mean=None, std=None, upsample=1, upsample_interpolation="nearest"):
    """VGG-16 for CIFAR-sized inputs: 13 3×3 conv layers in 5 stages, global pooling, FC chain.

    Args:
      input_shape: (height, width, channels) of one [0, 1] image.
      num_classes: number of logits.
      strides: stride of each stage's closing 2×2 max pooling, "2-2-2-2-2" (1 = no pooling).
      width: multiplier of the convolution channels.
      norm: a ``NORMS`` name: "batch" (default), "group" or "none"; after every convolution.
      conv: a ``CONVS`` name ("standard").
      pooling: a ``HEADS`` name, "avg" (the paper's adaptive average pooling) or "max".
      fc_units: widths of the hidden Dense layers (default 256, 256).
      dropout: dropout rate after each hidden Dense layer (default 0.5).
      mean, std, upsample, upsample_interpolation: input preprocessing, see ``stem.py``.

    Layer names: ``stage{s}_conv{j}``/``_norm{j}``/``_relu{j}``, ``stage{s}_pool``, ``stage{s}_out``,
    ``features`` (= last stage output), ``pool``, ``fc{i}``, ``logits``.

    Example:
      >>> model = vgg16((32, 32, 3), 10, strides="1-1-2-2-2")  # 4×4 features instead of 1×1

    Reference: Simonyan & Zisserman (2015), configuration D; Xu & Yang, "Understanding Adversarial
    Robustness from Feature Maps of Convolutional Layers", Appendix B, Fig. 9, Table IV.
    """
    stage_strides = components.parse_strides(strides, len(VGG16_STAGES))
    head_fn, units = _check_common(num_classes, width, pooling, fc_units, dropout)
    norm_fn = components.resolve("norm", NORMS, norm)
    conv_fn = components.conv_factory(conv, norm)
    inputs, x = stem.inputs_and_stem(input_shape, mean=mean, std=std, upsample=upsample,
                                     upsample_interpolation=upsample_interpolation)
    for s, (channels, stride) in enumerate(zip(VGG16_STAGES, stage_strides), 1):
        for j, c in enumerate(channels, 1):
            x = _conv_norm_relu(x, conv_fn, norm_fn, components.scale_width(c, width), 3, 1,
                                f"stage{s}_", j)
        if stride > 1:
            x = keras.layers.MaxPooling2D(2, strides=stride, padding="same", name=f"stage{s}_pool")(x)
        x = components.name_output(x, f"stage{s}_out")
    return _head_and_classifier(inputs, x, num_classes, head_fn, units, dropout, "vgg16")


def alexnet(input_shape, num_classes, *, strides="2-2-2-2", width=1.0, norm="none", conv="standard",
            pooling="avg", fc_units=(512, 512), dropout=0.5,
            mean=None, std=None, upsample=1, upsample_interpolation="nearest"):
    """AlexNet for CIFAR-sized inputs: conv5×5-64 → pool → conv5×5-192 → pool → conv3×3-384-256-256 →
    pool, global pooling, FC chain.

    Args:
      input_shape: (height, width, channels) of one [0, 1] image.
      num_classes: number of logits.
      strides: "s1-s2-s3-s4": stride of ``conv1``, then of ``pool1``, ``pool2``, ``pool3``.
      width: multiplier of the convolution channels.
      norm: a ``NORMS`` name: "none" (default, as AlexNet), "batch" or "group"; after every conv.
      conv: a ``CONVS`` name ("standard").
      pooling: a ``HEADS`` name, "avg" (the paper's adaptive average pooling) or "max".
      fc_units: widths of the hidden Dense layers (default 512, 512).
      dropout: dropout rate after each hidden Dense layer (default 0.5).
      mean, std, upsample, upsample_interpolation: input preprocessing, see ``stem.py``.

    Layer names: ``conv{i}``/``norm{i}``/``relu{i}`` (i = 1…5), ``pool{i}`` (i = 1…3), ``features``,
    ``pool``, ``fc{i}``, ``logits``.

    Example:
      >>> model = alexnet((32, 32, 3), 10, strides="1-1-2-2")  # 8×8 features instead of 2×2

    Reference: Krizhevsky (2014), "One weird trick…" layout (64-192-384-256-256); Xu & Yang,
    "Understanding Adversarial Robustness from Feature Maps of Convolutional Layers", Appendix B,
    Fig. 9, Table IV.
    """
    s1, s2, s3, s4 = components.parse_strides(strides, 4)
    head_fn, units = _check_common(num_classes, width, pooling, fc_units, dropout)
    norm_fn = components.resolve("norm", NORMS, norm)
    conv_fn = components.conv_factory(conv, norm)
    scaled = lambda c: components.scale_width(c, width)
    inputs, x = stem.inputs_and_stem(input_shape, mean=mean, std=std, upsample=upsample,
                                     upsample_interpolation=upsample_interpolation)
    x = _conv_norm_relu(x, conv_fn, norm_fn, scaled(64), 5, s1, "", 1)
    x = keras.layers.MaxPooling2D(2, strides=s2, padding="same", name="pool1")(x)
    x = _conv_norm_relu(x, conv_fn, norm_fn, scaled(192), 5, 1, "", 2)
    x = keras.layers.MaxPooling2D(2, strides=s3, padding="same", name="pool2")(x)
    for i, c in ((3, 384), (4, 256), (5, 256)):
        x = _conv_norm_relu(x, conv_fn, norm_fn, scaled(c), 3, 1, "", i)
    x = keras.layers.MaxPooling2D(2, strides=s4, padding="same", name="pool3")(x)
    return _head_and_classifier(inputs, x, num_classes, head_fn, units, dropout, "alexnet")


def _conv_norm_relu(x, conv_fn, norm_fn, filters, kernel_size, stride, prefix, index):
    x = conv_fn(x, filters, kernel_size, stride, name=f"{prefix}conv{index}")
    x = norm_fn(x, name=f"{prefix}norm{index}")
    return keras.layers.ReLU(name=f"{prefix}relu{index}")(x)


def _check_common(num_classes, width, pooling, fc_units, dropout):
    """Validates the shared options; returns the head factory and the FC widths."""
    components.check_positive_int("num_classes", num_classes)
    components.check_positive_float("width", width)
    head_fn = components.resolve("pooling", HEADS, pooling)
    units = () if fc_units in ((), []) else components.check_int_list("fc_units", fc_units)
    check_number("dropout", dropout, 0, 1, high_inclusive=False)
    return head_fn, units


def _head_and_classifier(inputs, x, num_classes, head_fn, units, dropout, model_name):
    x = components.name_output(x, "features")
    x = head_fn(x, name="pool")
    for i, u in enumerate(units, 1):
        x = keras.layers.Dense(u, activation="relu", name=f"fc{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
    outputs = components.classifier(x, num_classes)
    return keras.Model(inputs, outputs, name=model_name)


registry.register("vgg16", vgg16)
registry.register("alexnet", alexnet)
