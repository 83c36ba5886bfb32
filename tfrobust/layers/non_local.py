"""FDn: the non-local feature-denoising block of Xie et al. 2019 (used by the thesis, §3.4.3)."""

import keras
import tensorflow as tf

from tfrobust.core.group_norm import group_count
from tfrobust.errors import TfrobustError, check_choice

NORMS = ("batch", "group", "none")


@keras.saving.register_keras_serializable(package="tfrobust")
class NonLocalDenoising(keras.layers.Layer):
    """Feature denoising: ``x + norm(conv1×1(NL(x)))`` with the non-local means operation

        NL(x)_i = (1/C(x)) Σ_j f(θ(x_i), φ(x_j)) · x_j

    over all spatial positions i, j of an [N, H, W, C] feature map. "dot" product (default, the
    thesis' FDn): f(a, b) = aᵀb with C(x) = H·W; "softmax" (Gaussian): f = exp(aᵀb/√d) with C(x) = Σ_j f.
    θ and φ are 1×1 convolutions to C/2 channels (``embed=True``) or the identity.

    The output 1×1 convolution keeps the channel count; its normalisation's scale starts at zero, so the
    block starts as the identity (Xie et al.'s zero-init BatchNorm). With ``norm="none"`` the 1×1
    convolution (with bias) itself starts at zero.

    Args:
      mode: "dot" (dot product) or "softmax" (Gaussian).
      embed: 1×1 embeddings θ, φ with ⌈C/2⌉ channels (True) or none.
      norm: "batch", "group" (largest divisor of C ≤ 32 groups: per-example, as the ODE nets need) or
        "none".

    Call arguments:
      inputs: features [N, H, W, C]. training: for BatchNorm.

    Example:
      >>> denoised = NonLocalDenoising(mode="dot", norm="group")(features)

    Reference: Xie, Wu, van der Maaten, Yuille, He, "Feature Denoising for Improving Adversarial
    Robustness", CVPR 2019, §4 (non-local means, eq. 1; denoising block, Fig. 4); Yan, thesis §3.4.3
    (FDn at the head of the classifier, Table 3.4). Choices: the einsum order is picked so the
    [HW × HW] affinity matrix is never formed in "dot" mode when C < H·W (the same result, cheaper),
    as the authors' code does.
    """

    def __init__(self, mode="dot", embed=True, norm="batch", **kwargs):
        super().__init__(**kwargs)
        check_choice("mode", mode, ("dot", "softmax"))
        if not isinstance(embed, bool):
            raise TfrobustError(f"embed must be True or False, got {embed!r}")
        check_choice("norm", norm, NORMS)
        self.mode = mode
        self.embed = embed
        self.norm = norm

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise TfrobustError(f"NonLocalDenoising expects features [N, H, W, C] with known C, got {input_shape}")
        channels = int(input_shape[-1])
        if self.embed:
            width = max(1, (channels + 1) // 2)
            self.theta = keras.layers.Conv2D(width, 1, use_bias=False, dtype=self.dtype_policy, name="theta")
            self.phi = keras.layers.Conv2D(width, 1, use_bias=False, dtype=self.dtype_policy, name="phi")
            self.theta.build(input_shape)
            self.phi.build(input_shape)
        zero = self.norm == "none"
        self.conv = keras.layers.Conv2D(channels, 1, use_bias=zero,
                                        kernel_initializer="zeros" if zero else "he_normal",
                                        dtype=self.dtype_policy, name="conv")
        self.conv.build(input_shape)
        if self.norm == "batch":
            self.normalization = keras.layers.BatchNormalization(
                momentum=0.9, epsilon=1e-5, gamma_initializer="zeros", dtype=self.dtype_policy, name="norm")
        elif self.norm == "group":
            self.normalization = keras.layers.GroupNormalization(groups=group_count(channels), epsilon=1e-5,
                                                                 gamma_initializer="zeros", dtype=self.dtype_policy,
                                                                 name="norm")
        if self.norm != "none":
            self.normalization.build(input_shape)

    def call(self, inputs, training=None):
        x = inputs
        theta, phi = (self.theta(x), self.phi(x)) if self.embed else (x, x)
        height, width = tf.shape(x)[1], tf.shape(x)[2]
        positions = height * width
        flat = lambda t: tf.reshape(t, [tf.shape(t)[0], positions, t.shape[-1]])
        theta, phi, values = flat(theta), flat(phi), flat(x)
        if self.mode == "softmax":
            scale = tf.cast(tf.math.rsqrt(float(theta.shape[-1])), x.dtype)
            affinity = tf.nn.softmax(tf.matmul(theta, phi, transpose_b=True) * scale, axis=-1)
            denoised = tf.matmul(affinity, values)
        else:
            static = x.shape[1] * x.shape[2] if x.shape[1] and x.shape[2] else None
            if static is not None and theta.shape[-1] < static:
                denoised = tf.matmul(theta, tf.matmul(phi, values, transpose_a=True))  # θ (φᵀ x)
            else:
                denoised = tf.matmul(tf.matmul(theta, phi, transpose_b=True), values)  # (θ φᵀ) x
            denoised = denoised / tf.cast(positions, x.dtype)
        denoised = tf.reshape(denoised, tf.shape(x))
        y = self.conv(denoised)
        if self.norm != "none":
            y = self.normalization(y, training=training)
        return x + y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "embed": self.embed, "norm": self.norm}
