"""Truncated ReLU (tReLU): EVPNet eq. 11."""

import keras

from tfrobust.errors import TfrobustError, check_choice

#: Granularity of the threshold θ: one per layer ("block", the paper's default) or one per channel.
THRESHOLD_MODES = ("block", "channel")


@keras.saving.register_keras_serializable(package="tfrobust")
class TReLU(keras.layers.Layer):
    """Truncated ReLU: keeps the magnitude of large responses, zeroes small ones.

        y = |x| − θ   if |x| ≥ θ,
        y = 0         if |x| < θ          (eq. 11, the continuous form of eq. 10)

    computed as ``relu(|x| − θ)``, which equals eq. 11 for every θ (also θ < 0, where no element is
    truncated). The gradient is sign(x) w.r.t. x and −1 w.r.t. θ where |x| > θ, and 0 elsewhere.

    Args:
      mode: "block" (one learnable θ for the layer — the paper's default, §4.1) or "channel" (one θ per
        channel, the setting of the paper's CIFAR experiments, §5.1).
      threshold_initializer: initializer of θ; default uniform on [0, 1] (paper §5.1).
      threshold_constraint: optional constraint on θ (none by default; the paper does not constrain θ).
      **kwargs: base ``keras.layers.Layer`` arguments.

    Call arguments:
      inputs: a tensor [..., channels]; typically the pDoG differences d0, d1.
      training: unused.

    Returns:
      a tensor of the input's shape and dtype, ≥ 0.

    Example:
      >>> y = TReLU(mode="channel")(keras.random.normal((2, 8, 8, 4)))

    Reference: Sun, Li & Zhang, "Extreme Value Preserving Networks" (arXiv:2011.08367), §4.1, eq. 10–11,
    fig. 2(b); θ ~ U[0, 1] at initialisation (§5.1).
    Choices where the paper is silent: θ is unconstrained and has no weight decay of its own (weight
    decay, if any, is the optimizer's); a θ shared by the two pDoG differences of one EVPConv (one
    threshold per block).
    """

    def __init__(self, mode="block", *, threshold_initializer=None, threshold_constraint=None, **kwargs):
        super().__init__(**kwargs)
        check_choice("mode", mode, THRESHOLD_MODES)
        self.mode = mode
        self.threshold_initializer = keras.initializers.get(
            threshold_initializer or keras.initializers.RandomUniform(0.0, 1.0))
        self.threshold_constraint = keras.constraints.get(threshold_constraint)

    def build(self, input_shape):
        if self.mode == "channel" and input_shape[-1] is None:
            raise TfrobustError("TReLU(mode='channel') needs a known number of channels")
        shape = (input_shape[-1],) if self.mode == "channel" else ()
        self.threshold = self.add_weight(name="threshold", shape=shape,
                                         initializer=self.threshold_initializer,
                                         constraint=self.threshold_constraint)

    def call(self, inputs, training=None):
        del training
        return keras.ops.relu(keras.ops.abs(inputs) - self.threshold)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode,
                "threshold_initializer": keras.initializers.serialize(self.threshold_initializer),
                "threshold_constraint": keras.constraints.serialize(self.threshold_constraint)}
