"""Squeeze-and-Excitation channel calibration (Hu et al. 2018), as used inside EVPConv (EVPNet eq. 15)."""

import keras

from tfrobust.errors import TfrobustError, check_positive_int


@keras.saving.register_keras_serializable(package="tfrobust")
class SqueezeExcite(keras.layers.Layer):
    """Squeeze-and-Excitation: rescales each channel by a gate computed from global context.

        s = σ(W2 · relu(W1 · GAP(x) + b1) + b2),   y = x ⊙ s   (per channel)

    Args:
      reduction: r, the bottleneck has ``max(1, channels // r)`` units (default 16, Hu et al.).
      kernel_initializer: initializer of W1 and W2.
      **kwargs: base ``keras.layers.Layer`` arguments.

    Call arguments:
      inputs: [batch, height, width, channels].
      training: unused.

    Returns:
      the calibrated tensor, same shape as the input.

    Example:
      >>> y = SqueezeExcite(reduction=4)(keras.random.uniform((2, 8, 8, 16)))

    Reference: Hu, Shen & Sun, "Squeeze-and-Excitation Networks" (CVPR 2018), §3 (eq. 2–4); used on
    concat(z0, z1) inside EVPConv: Sun et al., "Extreme Value Preserving Networks", eq. 15.
    Choices: biases in both Dense steps, a bottleneck of at least one unit (CIFAR widths are small),
    Glorot-uniform kernels (Keras' Dense default).
    """

    def __init__(self, reduction=16, *, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        check_positive_int("reduction", reduction)
        self.reduction = reduction
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise TfrobustError("SqueezeExcite needs a known number of channels")
        units = max(1, channels // self.reduction)
        self.squeeze_kernel = self.add_weight(name="squeeze_kernel", shape=(channels, units),
                                              initializer=self.kernel_initializer)
        self.squeeze_bias = self.add_weight(name="squeeze_bias", shape=(units,), initializer="zeros")
        self.excite_kernel = self.add_weight(name="excite_kernel", shape=(units, channels),
                                             initializer=self.kernel_initializer)
        self.excite_bias = self.add_weight(name="excite_bias", shape=(channels,), initializer="zeros")

    def gate(self, inputs):
        """The per-channel gate s ∈ (0, 1), [batch, channels]."""
        squeezed = keras.ops.mean(inputs, axis=(1, 2))
        hidden = keras.ops.relu(keras.ops.matmul(squeezed, self.squeeze_kernel) + self.squeeze_bias)
        return keras.ops.sigmoid(keras.ops.matmul(hidden, self.excite_kernel) + self.excite_bias)

    def call(self, inputs, training=None):
        del training
        return inputs * self.gate(inputs)[:, None, None, :]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}
