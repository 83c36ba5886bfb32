"""Small plain CNNs for MNIST-sized inputs: ``madry_cnn`` and ``small_cnn``.

Both flatten the last feature map (no global pooling) into a hidden Dense layer, then float32 logits.
"""

import keras

from tfrobust.errors import check_choice
from tfrobust.models import components, registry, stem
from tfrobust.models.components import NORMS

DOWNSAMPLINGS = ("pool", "stride")


def madry_cnn(input_shape, num_classes, *, width=1.0,
              mean=None, std=None, upsample=1, upsample_interpolation="nearest"):
    """The MNIST network of Madry et al.: conv5×5-32 → maxpool 2 → conv5×5-64 → maxpool 2 →
    Dense 1024 → logits (ReLU activations, "same" padding, as in their TensorFlow code).

    Args:
      input_shape: (height, width, channels) of one [0, 1] image (28×28×1 for MNIST).
      num_classes: number of logits.
      width: multiplier of all channel and hidden-unit counts (1.0 = the paper's 32-64-1024).
      mean, std, upsample, upsample_interpolation: input preprocessing, see ``stem.py``.

    Layer names: ``conv1``, ``pool1``, ``conv2``, ``pool2`` (= ``features``), ``flatten``, ``fc1``,
    ``logits``.

    Example:
      >>> model = madry_cnn((28, 28, 1), 10)

    Reference: Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks" (ICLR 2018),
    MNIST challenge model. Choices: He-normal conv init and Keras-default Dense init (the original uses
    truncated normals with std 0.1).
    """
    components.check_positive_int("num_classes", num_classes)
    components.check_positive_float("width", width)
    scaled = lambda c: components.scale_width(c, width)
    inputs, x = stem.inputs_and_stem(input_shape, mean=mean, std=std, upsample=upsample,
                                     upsample_interpolation=upsample_interpolation)
    for i, channels in enumerate((32, 64), 1):
        x = keras.layers.Conv2D(scaled(channels), 5, padding="same", activation="relu",
                                kernel_initializer="he_normal", name=f"conv{i}")(x)
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"pool{i}")(x)
    x = components.name_output(x, "features")
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(scaled(1024), activation="relu", name="fc1")(x)
    return keras.Model(inputs, components.classifier(x, num_classes), name="madry_cnn")


def small_cnn(input_shape, num_classes, *, width=1.0, norm="none", conv="standard",
              downsample="pool", hidden=128,
              mean=None, std=None, upsample=1, upsample_interpolation="nearest"):
    """A four-layer CNN: conv3×3-32 → conv3×3-32 → ↓2 → conv3×3-64 → conv3×3-64 → ↓2 → Dense → logits.

    Args:
      input_shape: (height, width, channels) of one [0, 1] image.
      num_classes: number of logits.
      width: multiplier of the convolution channels.
      norm: a ``NORMS`` name: "none" (default), "batch" or "group"; after every convolution.
      conv: a ``CONVS`` name ("standard").
      downsample: "pool" (2×2 max pooling after the 2nd and 4th conv) or "stride" (those two
        convolutions use stride 2 instead).
      hidden: units of the hidden Dense layer (default 128).
      mean, std, upsample, upsample_interpolation: input preprocessing, see ``stem.py``.

    Layer names: ``conv{i}``/``norm{i}``/``relu{i}`` (i = 1…4), ``pool1``/``pool2`` (with "pool"),
    ``features``, ``flatten``, ``fc1``, ``logits``.

    Example:
      >>> model = small_cnn((28, 28, 1), 10, norm="batch", downsample="stride")

    Reference: the common "small CNN" of MNIST robustness work (e.g. TRADES' 32-32-64-64 SmallCNN, whose
    FC part is 200-200); the FC width 128 and the "stride" variant are our choices.
    """
    components.check_positive_int("num_classes", num_classes)
    components.check_positive_float("width", width)
    components.check_positive_int("hidden", hidden)
    check_choice("downsample", downsample, DOWNSAMPLINGS)
    norm_fn = components.resolve("norm", NORMS, norm)
    conv_fn = components.conv_factory(conv, norm)
    inputs, x = stem.inputs_and_stem(input_shape, mean=mean, std=std, upsample=upsample,
                                     upsample_interpolation=upsample_interpolation)
    for i, channels in enumerate((32, 32, 64, 64), 1):
        closing = i % 2 == 0  # the 2nd conv of each pair downsamples
        stride = 2 if closing and downsample == "stride" else 1
        x = conv_fn(x, components.scale_width(channels, width), 3, stride, name=f"conv{i}")
        x = norm_fn(x, name=f"norm{i}")
        x = keras.layers.ReLU(name=f"relu{i}")(x)
        if closing and downsample == "pool":
            x = keras.layers.MaxPooling2D(2, padding="same", name=f"pool{i // 2}")(x)
    x = components.name_output(x, "features")
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(hidden, activation="relu", name="fc1")(x)
    return keras.Model(inputs, components.classifier(x, num_classes), name="small_cnn")


registry.register("madry_cnn", madry_cnn)
registry.register("small_cnn", small_cnn)
