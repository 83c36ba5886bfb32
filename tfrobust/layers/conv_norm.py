"""ConvNorm: a convolution whose every output channel is preconditioned to a tight frame (Liu et al. 2021)."""

import math

import keras
import numpy as np
import tensorflow as tf

from tfrobust.errors import TfrobustError, check_choice, check_int, check_number, check_positive_int
from tfrobust.layers.reconfigure import with_layer_options

#: How inference applies the frozen preconditioner: "fft" (rfft2d → × V → irfft2d) or "spatial" (the
#: same circular convolution as a depthwise convolution with the full H×W kernel on a wrap-padded map:
#: builtin TFLite ops only).
INFERENCE_FORMS = ("fft", "spatial")
PADDINGS = ("same", "valid")


def cosine_rampdown(step, length):
    """0.5 · (cos(π · min(step, length) / length) + 1): 1 at step 0, 0 from ``length`` on."""
    step = tf.minimum(tf.cast(step, tf.float32), float(length))
    return 0.5 * (tf.cos(math.pi * step / float(length)) + 1.0)


@keras.saving.register_keras_serializable(package="tfrobust")
class ConvNorm2D(keras.layers.Layer):
    """Convolutional normalisation: a convolution, a per-output-channel preconditioner that makes each
    channel's operator a tight frame, then a learned depthwise affine step.

    For output channel k with kernels a_k1 … a_kC (C input channels), ConvNorm replaces
    z_k = Σ_j a_kj * z_j by P_k z_k with (report §3, eq. 1–2)

        P_k = (Σ_j C_akj C_akjᵀ)^(−1/2) = F* diag(V_k) F,    V_k = (Σ_j |â_kj|²)^(−1/2),

    so Q_k = P_k A_k satisfies Q_k Q_kᵀ = I (a tight frame, ‖Q_k‖ = 1; Proposition 3.1 bounds the
    layer's spectral norm by sqrt(#channels)). As in the authors' code the convolution is computed
    *full* (padding k − 1, stride 1, size N = H + k − 1: a circular convolution of the zero-padded
    input is then exact), V is applied in the Fourier domain on that N×M grid, and the result is cropped
    back to the requested padding and subsampled by the stride. V is computed from the kernel without
    gradient. Training uses the current kernel's V and updates a running estimate
    V̄ ← m·V + (1 − m)·V̄ with m = max(cosine ramp-down over ``rampdown_steps`` updates,
    ``min_momentum``) (or a constant ``momentum``); inference uses V̄. Then comes the affine step, a
    depthwise k×k convolution with bias.

    Because V lives on the N×M grid, the layer is resolution-specific: it is built for one input size.

    Args:
      filters: output channels.
      kernel_size: odd k ≥ 1 (1×1 kernels: V is the per-channel scalar (Σ_j w_kj²)^(−1/2)).
      strides: stride ≥ 1, applied by subsampling the preconditioned full output.
      padding: "same" (output ⌈H / s⌉) or "valid" (⌈(H − k + 1) / s⌉).
      affine: apply the learned depthwise k×k convolution with bias after the preconditioner.
      batch_norm: a BatchNormalization (momentum 0.9, ε 1e-5) after the affine step (the reference
        layer's default; in tfrobust builders use ``conv="convnorm"`` with ``norm="batch"`` instead).
      momentum: None (cosine ramp-down, the reference) or a constant update factor in (0, 1].
      rampdown_steps: length of the cosine ramp-down in training batches (40 000 in the reference).
      min_momentum: floor of the ramped-down update factor (0.01 in the reference).
      epsilon: added to Σ_j |â_kj|² before the inverse square root (guards zero frequencies).
      inference_form: "fft" or "spatial" (exact builtin-op form for TFLite; see ``with_inference_form``).
      kernel_initializer: initializer of the convolution kernel (He normal).
      **kwargs: base ``keras.layers.Layer`` arguments.

    Call arguments:
      inputs: [batch, H, W, in_channels] with H, W fixed at build time.
      training: True computes V from the current kernel and updates the running estimate; False/None
        uses the running estimate.

    Returns:
      [batch, H′, W′, filters].

    Example:
      >>> layer = ConvNorm2D(16, 3, strides=2)
      >>> y = layer(keras.random.uniform((2, 8, 8, 3)), training=True)   # (2, 4, 4, 16)

    Reference: O'Hanlon, "Adversarial Robustness of Convolutional Networks" (NeurIPS 2021 report), §3,
    eq. 1–2 and Proposition 3.1, presenting Liu et al., "Convolutional Normalization: Improving Deep
    Convolutional Network Robustness and Training" (NeurIPS 2021); details from the authors' code
    (shengliu66/ConvNorm, ``PreConv``): full convolution, detached V, cosine ramp-down 40 000 / floor
    0.01, depthwise affine step with bias.
    Choices where they are silent: the running estimate starts at the V of the initial kernel (the
    reference starts at zero, so its inference output is zero until the first training batch); stride-s
    outputs sample positions 0, s, 2s, … of the "same" map (PyTorch's convention; TensorFlow's "same"
    stride-2 convolution samples 1, 3, …); odd kernels only (no symmetric "same" crop for even k); no
    convolution bias (the affine step has one); the affine kernel is initialised like PyTorch's Conv2d
    (uniform ±1/sqrt(k²)), its bias at zero; V is computed in float32 whatever the compute dtype.
    """

    def __init__(self, filters, kernel_size=3, *, strides=1, padding="same", affine=True, batch_norm=False,
                 momentum=None, rampdown_steps=40000, min_momentum=0.01, epsilon=1e-8, inference_form="fft",
                 kernel_initializer="he_normal", **kwargs):
        super().__init__(**kwargs)
        check_positive_int("filters", filters)
        check_int("kernel_size", kernel_size)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise TfrobustError(f"kernel_size must be an odd positive integer (1, 3, 5, …), got {kernel_size!r}")
        check_positive_int("strides", strides)
        check_choice("padding", padding, PADDINGS)
        check_choice("inference_form", inference_form, INFERENCE_FORMS)
        if momentum is not None:
            check_number("momentum", momentum, 0.0, 1.0, low_inclusive=False)
        check_positive_int("rampdown_steps", rampdown_steps)
        check_number("min_momentum", min_momentum, 0.0, 1.0)
        check_number("epsilon", epsilon, 0.0)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.padding = padding
        self.affine = bool(affine)
        self.batch_norm = bool(batch_norm)
        self.momentum = None if momentum is None else float(momentum)
        self.rampdown_steps = rampdown_steps
        self.min_momentum = float(min_momentum)
        self.epsilon = float(epsilon)
        self.inference_form = inference_form
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.norm = (keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, dtype=self.dtype_policy,
                                                     name="batch_norm") if batch_norm else None)

    # -- shapes ---------------------------------------------------------------------------------------
    @property
    def _crop_start(self):
        """Index of the first kept row/column of the full (N = H + k − 1) output."""
        pad = (self.kernel_size - 1) // 2 if self.padding == "same" else 0
        return self.kernel_size - 1 - pad

    def _output_size(self, size):
        full = size + self.kernel_size - 1
        cropped = full - 2 * self._crop_start
        return -(-cropped // self.strides)

    def compute_output_shape(self, input_shape):
        height, width = input_shape[1], input_shape[2]
        return (input_shape[0], None if height is None else self._output_size(height),
                None if width is None else self._output_size(width), self.filters)

    def build(self, input_shape):
        height, width, channels = input_shape[1], input_shape[2], input_shape[3]
        if height is None or width is None or channels is None:
            raise TfrobustError(f"ConvNorm2D needs a fixed feature-map size (H, W, C), got {tuple(input_shape)}: "
                                "its preconditioner lives on the H×W frequency grid")
        if self._output_size(height) < 1 or self._output_size(width) < 1:
            raise TfrobustError(f"ConvNorm2D: input {height}×{width} is smaller than the {self.kernel_size}×"
                                f"{self.kernel_size} kernel with padding='valid'")
        k = self.kernel_size
        self.full_size = (height + k - 1, width + k - 1)
        # Not autocast: V is computed from the float32 kernel; the convolution casts explicitly.
        self.kernel = self.add_weight(name="kernel", shape=(k, k, channels, self.filters),
                                      initializer=self.kernel_initializer, autocast=False)
        if k == 1:
            v_shape = (self.filters,)
        else:
            v_shape = (self.filters, self.full_size[0], self.full_size[1] // 2 + 1)
        initial_v = self.preconditioner()
        self.running_v = self.add_weight(name="running_v", shape=v_shape, dtype="float32", trainable=False,
                                         autocast=False, initializer=lambda shape, dtype=None: initial_v)
        self.spatial_kernel = None
        if k > 1:
            initial_spatial = self._spatial_kernel(initial_v)
            self.spatial_kernel = self.add_weight(
                name="spatial_kernel", shape=(*self.full_size, self.filters, 1), dtype="float32",
                trainable=False, autocast=False, initializer=lambda shape, dtype=None: initial_spatial)
        self.num_updates = self.add_weight(name="num_updates", shape=(), dtype="float32", trainable=False,
                                           autocast=False, initializer="zeros")
        if self.affine:
            bound = 1.0 / k  # PyTorch's Conv2d default for a depthwise k×k kernel: U(±1/sqrt(k²))
            self.affine_kernel = self.add_weight(
                name="affine_kernel", shape=(k, k, self.filters, 1),
                initializer=keras.initializers.RandomUniform(-bound, bound))
            self.affine_bias = self.add_weight(name="affine_bias", shape=(self.filters,), initializer="zeros")
        if self.norm is not None:
            self.norm.build(self.compute_output_shape(input_shape))

    # -- the preconditioner ---------------------------------------------------------------------------
    def preconditioner(self, kernel=None):
        """V for ``kernel`` (default: the layer's current kernel), float32, without gradient:
        [filters] for 1×1 kernels, else [filters, N, M // 2 + 1] on the rfft2d grid of the full output."""
        kernel = tf.stop_gradient(tf.cast(tf.convert_to_tensor(self.kernel if kernel is None else kernel),
                                          tf.float32))
        if self.kernel_size == 1:
            return tf.math.rsqrt(tf.reduce_sum(tf.square(kernel), axis=(0, 1, 2)) + self.epsilon)
        # [k, k, C_in, C_out] → [C_out, C_in, k, k], zero-padded to N×M (position is irrelevant: only |â|²).
        n, m = self.full_size
        kernel = tf.transpose(kernel, [3, 2, 0, 1])
        spectrum = tf.signal.rfft2d(kernel, fft_length=[n, m])
        power = tf.reduce_sum(tf.square(tf.math.real(spectrum)) + tf.square(tf.math.imag(spectrum)), axis=1)
        return tf.math.rsqrt(power + self.epsilon)

    def _spatial_kernel(self, v):
        """The circular-convolution kernel v = irfft2d(V), flipped for cross-correlation, as a depthwise
        kernel [N, M, filters, 1]."""
        spatial = tf.signal.irfft2d(tf.cast(v, tf.complex64), fft_length=list(self.full_size))  # [Co, N, M]
        spatial = tf.reverse(spatial, axis=[1, 2])
        return tf.transpose(spatial, [1, 2, 0])[..., None]

    def _update_running_estimate(self, v):
        step = self.num_updates + 1.0
        if self.momentum is None:
            factor = tf.maximum(cosine_rampdown(step, self.rampdown_steps), self.min_momentum)
        else:
            factor = tf.constant(self.momentum, tf.float32)
        running = factor * v + (1.0 - factor) * self.running_v
        self.running_v.assign(running)
        if self.spatial_kernel is not None:
            self.spatial_kernel.assign(self._spatial_kernel(running))
        self.num_updates.assign(step)

    def reset_running_estimate(self):
        """Sets the running estimate to the V of the current kernel (e.g. after assigning kernels by hand)."""
        v = self.preconditioner()
        self.running_v.assign(v)
        if self.spatial_kernel is not None:
            self.spatial_kernel.assign(self._spatial_kernel(v))
        self.num_updates.assign(0.0)

    # -- forward --------------------------------------------------------------------------------------
    def _full_convolution(self, inputs):
        pad = self.kernel_size - 1
        padded = keras.ops.pad(inputs, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
        kernel = keras.ops.cast(self.kernel, self.compute_dtype)
        return keras.ops.conv(padded, kernel, strides=1, padding="valid")

    def _crop(self, full):
        start, s = self._crop_start, self.strides
        n, m = self.full_size
        return full[:, start:n - start:s, start:m - start:s, :]

    def _apply_fft(self, full, v):
        spectrum = tf.signal.rfft2d(tf.transpose(tf.cast(full, tf.float32), [0, 3, 1, 2]))
        # V carries no gradient (detached, as in the reference). Stopping it after the cast also keeps TensorFlow
        # from differentiating a complex→float cast back to the running estimate whenever a tf.function of the
        # model is called under a tape (its backward then covers every captured variable): a warning per layer
        # and a gradient nobody uses.
        out = tf.signal.irfft2d(spectrum * tf.stop_gradient(tf.cast(v, tf.complex64)),
                                fft_length=list(self.full_size))
        return self._crop(tf.cast(tf.transpose(out, [0, 2, 3, 1]), self.compute_dtype))

    def _apply_spatial(self, full):
        """y[i] = Σ_u v[u] · c[(i − u) mod N] at the kept positions i = start + s·t: a VALID depthwise
        cross-correlation of the flipped v over the wrap-padded map concat(c[1:], c)."""
        start, s = self._crop_start, self.strides
        n, m = self.full_size
        rows, cols = self._output_size(n - self.kernel_size + 1), self._output_size(m - self.kernel_size + 1)
        wrapped = keras.ops.concatenate([full[:, 1:], full], axis=1)
        wrapped = keras.ops.concatenate([wrapped[:, :, 1:], wrapped], axis=2)
        wrapped = wrapped[:, start:start + (rows - 1) * s + n, start:start + (cols - 1) * s + m, :]
        kernel = keras.ops.cast(self.spatial_kernel, self.compute_dtype)
        return keras.ops.depthwise_conv(wrapped, kernel, strides=s, padding="valid")

    def call(self, inputs, training=None):
        full = self._full_convolution(inputs)
        if training:
            v = self.preconditioner()
            self._update_running_estimate(v)
        else:
            v = self.running_v
        if self.kernel_size == 1:
            out = self._crop(full * keras.ops.cast(v, self.compute_dtype))
        elif not training and self.inference_form == "spatial":
            out = self._apply_spatial(full)
        else:
            out = self._apply_fft(full, v)
        if self.affine:
            out = keras.ops.depthwise_conv(out, self.affine_kernel, strides=1, padding="same") + self.affine_bias
        if self.norm is not None:
            out = self.norm(out, training=training)
        return out

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding, "affine": self.affine,
                "batch_norm": self.batch_norm, "momentum": self.momentum, "rampdown_steps": self.rampdown_steps,
                "min_momentum": self.min_momentum, "epsilon": self.epsilon, "inference_form": self.inference_form,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


def with_inference_form(model, form="spatial"):
    """A copy of functional/sequential ``model`` (same weights) whose ConvNorm2D layers use ``form``.

    ``"spatial"`` gives a graph of builtin TFLite ops (pad, conv, slices, concatenation, depthwise
    convolution) that equals the FFT form up to float rounding, for any batch size: export it with
    ``tfrobust.export`` to get a TFLite model of a ConvNorm network.
    """
    check_choice("inference_form", form, INFERENCE_FORMS)
    return with_layer_options(model, ConvNorm2D, {"inference_form": form})


def operator_matrix(kernel, size, v=None):
    """Dense matrices of the circular operators, for checks on small sizes (NumPy, float64).

    Args:
      kernel: [k, k, C_in, C_out] cross-correlation kernel (the layer's ``kernel``).
      size: (N, M), the circular grid (``layer.full_size``).
      v: optional [C_out, N, M // 2 + 1] preconditioner on the rfft grid; when given, each output block
        is multiplied by the circulant P_k = F* diag(V_k) F.

    Returns:
      [C_out, N·M, C_in·N·M]: row block k is A_k (or Q_k = P_k A_k with ``v``), mapping the flattened
      input channels (channel-major) to output channel k, as circular cross-correlations on N×M.
    """
    kernel = np.asarray(kernel, np.float64)
    k_h, k_w, c_in, c_out = kernel.shape
    n, m = size
    eye = np.eye(n * m).reshape(n * m, n, m)
    matrix = np.zeros((c_out, n * m, c_in * n * m))
    for o in range(c_out):
        for j in range(c_in):
            block = np.zeros((n * m, n * m))
            for u in range(k_h):
                for w in range(k_w):
                    # y[i] += kernel[u, w] · x[i + u, j + w] (circular)
                    block += kernel[u, w, j, o] * np.roll(eye, (-u, -w), axis=(1, 2)).reshape(n * m, n * m).T
            matrix[o, :, j * n * m:(j + 1) * n * m] = block
    if v is not None:
        full_v = np.fft.irfft2(np.asarray(v, np.float64), s=(n, m))  # spatial kernels [C_out, N, M]
        for o in range(c_out):
            # circulant of v_o: (P x)[i] = Σ_u v_o[u] x[i − u]
            circulant = np.stack([np.roll(full_v[o], (a, b), axis=(0, 1)).reshape(-1)
                                  for a in range(n) for b in range(m)], axis=1)
            matrix[o] = circulant @ matrix[o]
    return matrix
