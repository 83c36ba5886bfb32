"""Parametric difference of Gaussians (pDoG): EVPNet eq. 6–7."""

import keras

from tfrobust.errors import TfrobustError, check_int


def check_kernel_size(name, value, minimum):
    """Returns ``value`` as an int ≥ ``minimum`` or raises one line naming ``name``."""
    check_int(name, value, minimum)
    return value


@keras.saving.register_keras_serializable(package="tfrobust")
class PDoG(keras.layers.Layer):
    """Parametric difference of Gaussians: two successive depthwise convolutions with one *shared*
    learnable k×k kernel, and the differences of adjacent scales.

        f1 = DW(f0; w),  f2 = DW(f1; w)          (eq. 6)
        d0 = f1 − f0,    d1 = f2 − f1            (eq. 7)

    The learnable kernel w stands in for SIFT's Gaussian kernel; it is shared by both convolutions (as
    the Gaussian is in DoG), one k×k kernel per channel (depthwise), and need not be symmetric.

    Args:
      kernel_size: k ≥ 2 (a 1×1 depthwise kernel is a per-channel scale: no scale space).
      kernel_initializer: initializer of the depthwise kernel, shape (k, k, channels, 1).
      kernel_regularizer: optional regularizer of the kernel.
      **kwargs: base ``keras.layers.Layer`` arguments (``name``, ``dtype``, …).

    Call arguments:
      inputs: feature map f0, [batch, height, width, channels].
      training: unused (accepted for the layer contract).

    Returns:
      ``[d0, d1]``, two tensors of the input's shape.

    Example:
      >>> d0, d1 = PDoG(kernel_size=3)(keras.random.uniform((2, 8, 8, 4)))

    Reference: Sun, Li & Zhang, "Extreme Value Preserving Networks" (arXiv:2011.08367), §4.1, eq. 6–7.

    Choices where the paper is silent: "same" zero padding and stride 1 (the differences need equal
    resolutions; a stride belongs to the convolution before pDoG, see ``EVPConv``); for even k the
    "same" padding is asymmetric (TensorFlow pads bottom/right), so f2 is shifted by one pixel against
    f0 — use odd k for a centred scale space; the kernel is initialised like any depthwise convolution
    (Glorot uniform, Keras' ``DepthwiseConv2D`` default), not as a Gaussian.
    """

    def __init__(self, kernel_size=3, *, kernel_initializer="glorot_uniform", kernel_regularizer=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = check_kernel_size("kernel_size", kernel_size, 2)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise TfrobustError("PDoG needs a known number of input channels")
        self.kernel = self.add_weight(
            name="kernel", shape=(self.kernel_size, self.kernel_size, channels, 1),
            initializer=self.kernel_initializer, regularizer=self.kernel_regularizer)

    def call(self, inputs, training=None):
        del training
        f0 = inputs
        f1 = keras.ops.depthwise_conv(f0, self.kernel, strides=1, padding="same")
        f2 = keras.ops.depthwise_conv(f1, self.kernel, strides=1, padding="same")
        return [f1 - f0, f2 - f1]

    def compute_output_shape(self, input_shape):
        return [tuple(input_shape), tuple(input_shape)]

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer)}
