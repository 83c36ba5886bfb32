"""TRADES (Zhang et al.): clean cross-entropy plus β times the KL divergence to the adversarial output."""

import tensorflow as tf

from tfrobust.attacks import losses
from tfrobust.attacks.projected_ascent import start_point
from tfrobust.errors import check_number
from tfrobust.training.methods.base import AdversarialMethod, LossRecord, ascend, cross_entropy, kl_divergence


class TRADES(AdversarialMethod):
    """Zhang et al., "Theoretically Principled Trade-off between Robustness and Accuracy", ICML 2019,
    eq. (5):

        min_θ E[ CE(f_θ(x), y) + β · max_{‖x′ − x‖ ≤ ε} KL(f_θ(x) ‖ f_θ(x′)) ],

    KL between the softmax outputs, summed over classes and averaged over the batch (the reference's
    ``KLDivLoss(size_average=False) / batch_size``). The inner maximum: start at x + 0.001·N(0, I), then
    k sign-gradient steps on KL(p(x) ‖ p(x′)) with p(x) fixed (computed once, inference mode).
    In the outer loss the gradient flows through both f(x) and f(x′), each a training-mode forward pass:
    two BatchNorm moving-statistics updates per step. The reference makes three train-mode passes
    (``model(x_natural)`` for the CE, then ``model(x_adv)`` and ``model(x_natural)`` again inside the KL) —
    the same loss and gradient, one more moving-statistics update on the clean batch.

    Args:
      eps: radius (required), > 0.
      beta: β ≥ 0 (default 6, the CIFAR-10 setting; the MNIST script uses 1). β = 0 is standard training
        (the inner maximisation still runs).
      steps: inner steps k (default 10; 40 on MNIST in the reference).
      step_size: default ε/4 (0.007 for ε = 0.031 in the reference; MNIST used 0.01 for ε = 0.3).
      random_start: "normal" (default, the reference), "uniform" or "none" ("none" has zero KL gradient
        at x: the attack cannot move).
      norm, clip_min, clip_max: see ``AdversarialMethod``. TRADES crafts without labels, so there is
        no ``label_mode``; ``attack_loss`` does not apply either (the objective is the KL).

    Reports ``ce`` (clean) and ``kl``.
    """

    name = "trades"
    components = ("ce", "kl")

    def __init__(self, *, eps=None, beta=6.0, steps=10, step_size=None, random_start="normal", norm="linf",
                 clip_min=0.0, clip_max=1.0):
        check_number("beta", beta, 0.0)
        super().__init__(eps=eps, norm=norm, steps=steps, step_size=step_size, random_start=random_start,
                         label_mode="true", attack_loss="ce", clip_min=clip_min, clip_max=clip_max,
                         default_step_size=(eps or 0.0) / 4)
        self.beta = float(beta)

    def craft(self, adv, x, labels, seed):
        del labels
        clean = tf.stop_gradient(losses.logits_of(adv.forward(x, training=False)))
        start = start_point(self.threat, x, self.random_start, seed)
        return ascend(adv, self.threat, x, start,
                      lambda outputs: kl_divergence(clean, losses.logits_of(outputs)),
                      steps=self.steps, step_size=self.step_size)

    def loss(self, adv, x, y, x_crafted, training):
        clean = losses.logits_of(adv.forward(x, y, training=training))
        adversarial = losses.logits_of(adv.forward(x_crafted, y, training=training))
        ce = cross_entropy(clean, y)
        kl = tf.reduce_mean(kl_divergence(clean, adversarial))
        return LossRecord(ce + self.beta * kl, {"ce": ce, "kl": kl}, crafted_logits=adversarial,
                          clean_logits=clean)
