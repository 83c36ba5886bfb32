"""HAT: hybrid adversarial training of image denoisers (Yan, thesis §2.4.1, eq. 2.3)."""

import tensorflow as tf

from tfrobust.attacks.obsatk import EPS_UNITS, budget_of, obsatk_delta
from tfrobust.errors import TfrobustError, check_choice, check_int, check_number
from tfrobust.training.methods.base import LossRecord, Method, input_gradient


class HAT(Method):
    """Hybrid adversarial training, eq. 2.3:

        L(θ) = ½ · ( 1/(1+α) · ‖f(y) − x‖² + α/(1+α) · ‖f(y) − f(y′)‖² ),   y′ = y + ObsAtk(y),

    with (y, x) a noisy observation and its clean image. α = 0 is normal training (the same loss
    function; the attack is then skipped because its term has weight 0 and no f(y′) is computed).

    Choices: ‖·‖² is averaged over pixels (divided by m = H·W·C) and over the batch, so the loss (and a
    learning rate) does not depend on the patch size — a constant factor of the thesis' sum. y′ is
    crafted by ``tfrobust.attacks.obsatk.obsatk_delta`` (the core of ``ObsAtk``) in inference mode
    (BatchNorm moving statistics), from δ = 0, against the ground truth x, then clipped into the range;
    the update runs f(y) and f(y′) in training mode and differentiates through both, as TRADES does.

    Args:
      alpha: α ≥ 0 (1 in thesis §2.4.2, 2 in §2.4.3).
      eps: ObsAtk's budget > 0 (``eps_unit="per_pixel"``: ε = eps·√m; the thesis trains with 5/255).
      eps_unit: "per_pixel" or "absolute".
      steps: ObsAtk iterations ≥ 1 (the thesis trains with one-step Atk-5/255).
      step_size: fraction of the budget per step (default 2.5/steps, see ``ObsAtk``).
      clip_min, clip_max: the valid range of observations.

    Only ``DenoisingModel`` trains with it (its batches are (noisy, clean) image pairs). Reports
    ``reconstruction`` (‖f(y) − x‖²/m) and ``consistency`` (‖f(y) − f(y′)‖²/m).
    """

    name = "hat"
    components = ("reconstruction", "consistency")
    crafted = "adv"

    def __init__(self, *, alpha=1.0, eps=5 / 255, eps_unit="per_pixel", steps=1, step_size=None,
                 clip_min=0.0, clip_max=1.0):
        check_number("alpha", alpha, 0.0)
        check_number("eps", eps, 0.0, low_inclusive=False)
        check_choice("eps_unit", eps_unit, EPS_UNITS)
        check_int("steps", steps, 1)
        if step_size is None:
            step_size = 2.5 / steps
        check_number("step_size", step_size, 0.0, low_inclusive=False)
        if not clip_min < clip_max:
            raise TfrobustError(f"clip_min must be < clip_max, got {clip_min} and {clip_max}")
        self.alpha = float(alpha)
        self.eps = float(eps)
        self.eps_unit = eps_unit
        self.steps = int(steps)
        self.step_size = float(step_size)
        self.clip_min = float(clip_min)
        self.clip_max = float(clip_max)

    def build(self, adv):
        from tfrobust.training.denoising import DenoisingModel  # pylint: disable=import-outside-toplevel
        if not isinstance(adv, DenoisingModel):
            raise TfrobustError("method 'hat' trains denoisers: wrap the model in "
                                "tfrobust.training.DenoisingModel (or use trainers/train_denoiser.py)")

    def craft(self, adv, x, labels, seed):
        """y′ = clip(y + δ) with δ from ObsAtk; ``x`` holds the observations, ``labels`` the clean images."""
        del seed
        if self.alpha == 0:
            return x
        clean = labels

        def squared_error(restored):
            return tf.reduce_sum(tf.square(tf.cast(restored, tf.float32) - clean), axis=[1, 2, 3])

        budget = budget_of(self.eps, self.eps_unit, tf.shape(x))
        delta = obsatk_delta(lambda y_adv: input_gradient(adv, y_adv, squared_error), x, budget,
                             steps=self.steps, step_size=self.step_size)
        return tf.clip_by_value(x + delta, self.clip_min, self.clip_max)

    def loss(self, adv, x, y, x_crafted, training):
        restored = tf.cast(adv.forward(x, training=training), tf.float32)
        reconstruction = tf.reduce_mean(tf.square(restored - y))
        if self.alpha == 0:
            return LossRecord(0.5 * reconstruction, {"reconstruction": reconstruction}, clean_logits=restored)
        restored_adv = tf.cast(adv.forward(x_crafted, training=training), tf.float32)
        consistency = tf.reduce_mean(tf.square(restored - restored_adv))
        total = 0.5 * (reconstruction + self.alpha * consistency) / (1.0 + self.alpha)
        return LossRecord(total, {"reconstruction": reconstruction, "consistency": consistency},
                          crafted_logits=restored_adv, clean_logits=restored)
