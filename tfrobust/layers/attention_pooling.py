"""Nonlinear attention pooling of local features guided by a global feature (Liu & JaJa, §3.2, eq. 3–5)."""

import keras

from tfrobust.errors import TfrobustError, check_positive_int


@keras.saving.register_keras_serializable(package="tfrobust")
class AttentionPooling(keras.layers.Layer):
    """Attention-weighted sum of local features, with weights from a small ReLU network that scores
    each local feature against the global feature.

        c_n = f([l_n; g])                      (eq. 3: f a one-hidden-layer ReLU MLP, [·;·] concatenation)
        w_n = exp(c_n) / Σ_m exp(c_m)          (eq. 4: softmax over the N spatial positions)
        h   = Σ_n w_n l_n                      (eq. 5)

    Several layers' ``h`` are concatenated to replace the global descriptor (see
    ``tfrobust.models.attention``); that concatenation is the G(x) of the implicit-denoising loss (§3.3).

    Args:
      hidden_units: units of the MLP's hidden layer (64 in the paper's CIFAR-10 model, §4.2.1).
      kernel_initializer: initializer of the MLP kernels.
      **kwargs: base ``keras.layers.Layer`` arguments.

    Call arguments:
      inputs: ``[local, global]``: local features [batch, H, W, C] and the global feature [batch, D].
      training: unused.
      return_attention_scores: also return the attention map w, [batch, H, W] (≥ 0, sums to 1).

    Returns:
      h, [batch, C] (and w when ``return_attention_scores``).

    Example:
      >>> local, g = keras.random.uniform((2, 8, 8, 32)), keras.random.uniform((2, 256))
      >>> h, w = AttentionPooling(64)([local, g], return_attention_scores=True)   # (2, 32), (2, 8, 8)

    Reference: Liu & JaJa, "Feature Prioritization and Regularization Improve Standard Accuracy and
    Adversarial Robustness" (IJCAI 2019; arXiv:1810.02424), §3.2, eq. 3–5; the global/local terminology
    and the pooling scheme follow Jetley et al., "Learn to Pay Attention" (ICLR 2018).
    Choices where the paper is silent: the MLP has a bias in its hidden layer and none on the score (a
    constant shift cancels in the softmax); Glorot-uniform kernels; the softmax runs in float32 under
    mixed precision.
    """

    def __init__(self, hidden_units=64, *, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        check_positive_int("hidden_units", hidden_units)
        self.hidden_units = hidden_units
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    @staticmethod
    def _split_shapes(input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2 \
                or not all(isinstance(s, (list, tuple)) for s in input_shape):
            raise TfrobustError("AttentionPooling takes [local features (B, H, W, C), global feature (B, D)]")
        local_shape, global_shape = input_shape
        if len(local_shape) != 4 or len(global_shape) != 2:
            raise TfrobustError(f"AttentionPooling takes local features of rank 4 and a global feature of rank 2, "
                                f"got shapes {tuple(local_shape)} and {tuple(global_shape)}")
        return tuple(local_shape), tuple(global_shape)

    def build(self, input_shape):
        local_shape, global_shape = self._split_shapes(input_shape)
        channels, global_dim = local_shape[-1], global_shape[-1]
        if channels is None or global_dim is None:
            raise TfrobustError("AttentionPooling needs known feature dimensions")
        self.hidden_kernel = self.add_weight(name="hidden_kernel", shape=(channels + global_dim, self.hidden_units),
                                             initializer=self.kernel_initializer)
        self.hidden_bias = self.add_weight(name="hidden_bias", shape=(self.hidden_units,), initializer="zeros")
        self.score_kernel = self.add_weight(name="score_kernel", shape=(self.hidden_units, 1),
                                            initializer=self.kernel_initializer)

    def scores(self, local, global_feature):
        """Compatibility scores c_n, [batch, H, W] (eq. 3)."""
        channels = local.shape[-1]
        # f([l; g]) = relu(l·W_l + g·W_g + b): the concatenation, without materialising g at every position.
        hidden = (keras.ops.matmul(local, self.hidden_kernel[:channels])
                  + keras.ops.matmul(global_feature, self.hidden_kernel[channels:])[:, None, None, :]
                  + self.hidden_bias)
        return keras.ops.matmul(keras.ops.relu(hidden), self.score_kernel)[..., 0]

    def call(self, inputs, training=None, return_attention_scores=False):
        del training
        local, global_feature = inputs
        scores = keras.ops.cast(self.scores(local, global_feature), "float32")
        shape = keras.ops.shape(scores)
        flat = keras.ops.reshape(scores, (shape[0], -1))
        weights = keras.ops.reshape(keras.ops.softmax(flat, axis=-1), shape)
        pooled = keras.ops.sum(keras.ops.cast(weights, local.dtype)[..., None] * local, axis=(1, 2))
        if return_attention_scores:
            return pooled, weights
        return pooled

    def compute_output_shape(self, input_shape):
        local_shape, _ = self._split_shapes(input_shape)
        return (local_shape[0], local_shape[-1])

    def compute_output_spec(self, inputs, training=None, return_attention_scores=False):
        local = inputs[0]
        pooled = keras.KerasTensor((local.shape[0], local.shape[-1]), dtype=self.compute_dtype)
        if return_attention_scores:
            return pooled, keras.KerasTensor(tuple(local.shape[:3]), dtype="float32")
        return pooled

    def get_config(self):
        return {**super().get_config(), "hidden_units": self.hidden_units,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}
