"""EVPConv: extreme-value-preserving convolution (EVPNet eq. 6–15), a drop-in for a k×k convolution."""

import keras

from tfrobust.errors import check_positive_int
from tfrobust.layers.pdog import PDoG, check_kernel_size
from tfrobust.layers.squeeze_excite import SqueezeExcite
from tfrobust.layers.trelu import TReLU


@keras.saving.register_keras_serializable(package="tfrobust")
class EVPConv(keras.layers.Layer):
    """Extreme value preserving convolution: a k×k convolution followed by pDoG, tReLU, SE and a maxout.

        f0 = conv_k×k(x)                                   (the convolution EVPConv replaces)
        d0, d1 = pDoG(f0)                                   (eq. 6–7, shared depthwise k×k kernel)
        z0, z1 = tReLU(d0), tReLU(d1)                       (eq. 13; |d0|, |d1| without tReLU, eq. 12)
        (s0, s1) = SE(concat(z0, z1)),  o = max(s0, s1)     (eq. 15)

    Same output channels and resolution as ``Conv2D(filters, kernel_size, strides, padding="same")``, so
    it replaces any k×k (k > 1) convolution.

    Args:
      filters: output channels.
      kernel_size: k ≥ 2, used for the convolution and the pDoG kernel.
      strides: stride of the convolution (pDoG runs at the output resolution, stride 1).
      use_trelu: tReLU on d0, d1 (eq. 13); False gives the "+pDoG, no tReLU" ablation (|d|, eq. 12).
      trelu_mode: "block" (one θ, default) or "channel"; see ``TReLU``.
      se_reduction: reduction ratio of the SE module over the 2·filters concatenated channels.
      use_bias: bias in the convolution (off by default: a normalisation usually follows).
      kernel_initializer: initializer of the convolution kernel (He normal, like ``CONVS["standard"]``).
      **kwargs: base ``keras.layers.Layer`` arguments.

    Call arguments:
      inputs: [batch, height, width, in_channels].
      training: unused (no layer inside behaves differently in training).

    Returns:
      o, [batch, ceil(height / strides), ceil(width / strides), filters], ≥ 0.

    Example:
      >>> o = EVPConv(16, 3, strides=2)(keras.random.uniform((2, 8, 8, 3)))   # (2, 4, 4, 16)

    Reference: Sun, Li & Zhang, "Extreme Value Preserving Networks" (arXiv:2011.08367), §4.2, eq. 6–15,
    fig. 2(a); ablation switches of Table 1.
    Choices where the paper is silent: the k×k convolution is kept (the paper counts only w, θ and the
    SE parameters as EVPConv's overhead, so the convolution producing f0 stays) and carries the stride
    with "same" padding; one tReLU (one θ) is shared by d0 and d1; SE reduction 16 over the
    concatenation, at least one hidden unit.
    """

    def __init__(self, filters, kernel_size=3, *, strides=1, use_trelu=True, trelu_mode="block",
                 se_reduction=16, use_bias=False, kernel_initializer="he_normal", **kwargs):
        super().__init__(**kwargs)
        check_positive_int("filters", filters)
        check_positive_int("strides", strides)
        self.filters = filters
        self.kernel_size = check_kernel_size("kernel_size", kernel_size, 2)
        self.strides = strides
        self.use_trelu = bool(use_trelu)
        self.trelu_mode = trelu_mode
        self.se_reduction = se_reduction
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.conv = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same",
                                        use_bias=use_bias, kernel_initializer=self.kernel_initializer,
                                        dtype=self.dtype_policy, name="conv")
        self.pdog = PDoG(kernel_size, dtype=self.dtype_policy, name="pdog")
        self.trelu = (TReLU(trelu_mode, dtype=self.dtype_policy, name="trelu") if use_trelu else None)
        self.squeeze_excite = SqueezeExcite(se_reduction, dtype=self.dtype_policy, name="squeeze_excite")

    def build(self, input_shape):
        self.conv.build(input_shape)
        feature_shape = self.conv.compute_output_shape(input_shape)
        self.pdog.build(feature_shape)
        if self.trelu is not None:
            self.trelu.build(feature_shape)
        self.squeeze_excite.build((*feature_shape[:-1], 2 * self.filters))

    def call(self, inputs, training=None):
        del training
        f0 = self.conv(inputs)
        d0, d1 = self.pdog(f0)
        if self.trelu is not None:
            z0, z1 = self.trelu(d0), self.trelu(d1)
        else:
            z0, z1 = keras.ops.abs(d0), keras.ops.abs(d1)
        s = self.squeeze_excite(keras.ops.concatenate([z0, z1], axis=-1))
        return keras.ops.maximum(s[..., :self.filters], s[..., self.filters:])

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "use_trelu": self.use_trelu, "trelu_mode": self.trelu_mode,
                "se_reduction": self.se_reduction, "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}
