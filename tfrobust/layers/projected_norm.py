"""Projected normalization layer (PNL): EVPNet eq. 14, fig. 2(c) — a replacement for global average pooling."""

import math

import keras

from tfrobust.errors import TfrobustError, check_number, check_positive_int

#: Floor of the squared per-channel norms: keeps sqrt's gradient finite for an all-zero channel.
SQUARED_NORM_FLOOR = 1e-12


@keras.saving.register_keras_serializable(package="tfrobust")
class ProjectedNormalization(keras.layers.Layer):
    """Projected normalization: 1×1 projection, per-channel L2 norm over positions, ℓp normalisation.

        u_i = Wᵀ x_i                          (optional learnable 1×1 projection to ``units`` channels)
        v_j = ‖ũ_j‖₂ = sqrt(Σ_i (w_jᵀ x_i)²)  (eq. 14: second-order pooling, sqrt(w_jᵀ A w_j))
        ṽ = v / ‖v‖_p                          (unit ℓp norm: removes contrast and scale)

    Args:
      units: channels of the 1×1 projection (the paper's p); None = no projection (the paper: "not
        required for a network with a 1×1 conv-layer before GAP").
      p: order of the final normalisation, > 0 (``math.inf`` allowed: max-normalisation); default 2.
      kernel_initializer: initializer of the projection W (c × units), default orthogonal (PCA-like).
      **kwargs: base ``keras.layers.Layer`` arguments.

    Call arguments:
      inputs: [batch, height, width, channels].
      training: unused.

    Returns:
      ṽ, [batch, units or channels], with ‖ṽ‖_p = 1.

    Example:
      >>> v = ProjectedNormalization(units=64)(keras.random.uniform((2, 8, 8, 32)))   # (2, 64)

    Reference: Sun, Li & Zhang, "Extreme Value Preserving Networks" (arXiv:2011.08367), §4.1 (PNL steps
    1–3, eq. 14), fig. 2(c).
    Choices where the paper is silent: the projection has no bias (a PCA-like linear map), orthogonal
    initialisation; p = 2 by default (SIFT's L2 normalisation); the squared norms are floored at 1e-12
    (finite gradients for all-zero channels) and the whole computation runs in float32 under mixed
    precision (sums over positions), returning the layer's compute dtype.
    """

    def __init__(self, units=None, *, p=2.0, kernel_initializer="orthogonal", **kwargs):
        super().__init__(**kwargs)
        if units is not None:
            check_positive_int("units", units)
        if p != float("inf"):  # the order of the l_p norm: a number > 0 or inf (the max norm)
            try:
                check_number("p", p, 0.0, low_inclusive=False)
            except TfrobustError as error:
                raise TfrobustError(f"{error} (or inf)") from None
        self.units = units
        self.p = float(p)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise TfrobustError("ProjectedNormalization needs a known number of channels")
        self.kernel = None
        if self.units is not None:
            self.kernel = self.add_weight(name="kernel", shape=(channels, self.units),
                                          initializer=self.kernel_initializer)

    def call(self, inputs, training=None):
        del training
        u = keras.ops.cast(inputs, "float32")
        if self.kernel is not None:
            u = keras.ops.matmul(u, keras.ops.cast(self.kernel, "float32"))
        squared = keras.ops.sum(keras.ops.square(u), axis=(1, 2))
        v = keras.ops.sqrt(keras.ops.maximum(squared, SQUARED_NORM_FLOOR))
        if math.isinf(self.p):
            norm = keras.ops.max(v, axis=-1, keepdims=True)
        else:
            norm = keras.ops.power(keras.ops.sum(keras.ops.power(v, self.p), axis=-1, keepdims=True),
                                   1.0 / self.p)
        return keras.ops.cast(v / norm, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units or input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "units": self.units, "p": self.p,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}
