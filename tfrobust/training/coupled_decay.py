"""Coupled weight decay (L2 added to the gradient) for Keras' SGD and Adam, as PyTorch's ``weight_decay``.

Keras' ``weight_decay=`` is *decoupled*: ``w ← w − η·λ·w`` beside the optimizer's step. The reference
code of every seed is PyTorch, whose ``SGD(…, weight_decay=λ)`` / ``Adam(…, weight_decay=λ)`` add
``λ·w`` to the gradient *before* momentum (or Adam's moments):

    g ← ∇L + λ·w;   buf ← μ·buf + g;   w ← w − η·buf        (PyTorch SGD, dampening 0, no Nesterov)

With momentum 0.9 the coupled decay acts through the momentum buffer, about 1/(1 − μ) = 10× the
decoupled decay of the same λ; under Adam the coupled term is normalised by the second moment, while
decoupled 5e-4 at η = 1e-3 shrinks weights by 5e-7 per step — next to nothing. So a recipe that copies
a PyTorch λ must use these classes (``make_optimizer(…, weight_decay_mode="coupled")``).

Known difference (SGD): Keras keeps η inside its velocity (``m ← μm − ηg; w ← w + m``), PyTorch outside
(``w ← w − η·buf``). The two agree exactly at a constant learning rate (tested); when η changes, the
Keras update carries the old rate in ``m`` for about 1/(1 − μ) steps. Small under smooth schedules.

The term is added in ``update_step``, i.e. per variable after gradients were unscaled (mixed
float16), clipped and all-reduced across replicas — the same place PyTorch adds it (after
``loss.backward()``, inside ``step()``). Like the references (``model.parameters()``), every trainable
variable is decayed: kernels, biases and normalisation parameters.
"""

import keras

from tfrobust.errors import check_number


class _CoupledDecay:
    """Mixin: adds ``l2 · w`` to each variable's gradient before the optimizer's own update."""

    def _init_l2(self, l2):
        check_number("l2", l2, 0.0)
        self.l2 = float(l2)

    def update_step(self, gradient, variable, learning_rate):
        if self.l2:
            gradient = keras.ops.add(gradient, keras.ops.multiply(keras.ops.cast(self.l2, variable.dtype),
                                                                  variable))
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "l2": self.l2}


@keras.saving.register_keras_serializable(package="tfrobust")
class SGDWithL2(_CoupledDecay, keras.optimizers.SGD):
    """``keras.optimizers.SGD`` with PyTorch-style coupled weight decay ``l2`` (see the module docstring).

    Args:
      learning_rate, momentum, nesterov, **kwargs: as ``keras.optimizers.SGD`` (``use_ema`` … too).
      l2: λ ≥ 0, added as ``λ·w`` to the gradient before momentum.
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, l2=0.0, name="SGDWithL2", **kwargs):
        super().__init__(learning_rate=learning_rate, momentum=momentum, nesterov=nesterov, name=name, **kwargs)
        self._init_l2(l2)


@keras.saving.register_keras_serializable(package="tfrobust")
class AdamWithL2(_CoupledDecay, keras.optimizers.Adam):
    """``keras.optimizers.Adam`` with PyTorch-style coupled weight decay ``l2`` (``torch.optim.Adam``'s
    ``weight_decay``: λ·w enters the moments), the TisODE reference's optimizer.

    Args:
      learning_rate, beta_1, beta_2, epsilon, **kwargs: as ``keras.optimizers.Adam``.
      l2: λ ≥ 0, added as ``λ·w`` to the gradient before the moment updates.
    """

    def __init__(self, learning_rate=0.001, l2=0.0, name="AdamWithL2", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self._init_l2(l2)


__all__ = ["AdamWithL2", "SGDWithL2"]
