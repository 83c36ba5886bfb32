"""MART (Wang et al.): boosted cross-entropy on adversarial examples plus a KL term weighted by how
badly the clean example is classified."""

import tensorflow as tf

from tfrobust.attacks import losses
from tfrobust.errors import check_number
from tfrobust.training.methods.base import AdversarialMethod, LossRecord, cross_entropy, kl_divergence


class MART(AdversarialMethod):
    """Wang et al., "Improving Adversarial Robustness Requires Revisiting Misclassified Examples",
    ICLR 2020, eq. (8):

        L = BCE(p(x′), y) + λ · KL(p(x) ‖ p(x′)) · (1 − p_y(x)),
        BCE(p(x′), y) = −log p_y(x′) − log(1 − max_{k≠y} p_k(x′)),

    with x′ from PGD on the cross-entropy (start x + 0.001·N(0, I), as in the reference). Both terms
    are averaged over the batch; gradients flow through p(x), p(x′) and the weight 1 − p_y(x), as in the
    reference (whose 1.0001 and 1e-12 guards inside the BCE logarithm are kept; the KL uses
    log-softmax instead of log(p + 1e-12)). Two training-mode passes.

    Args:
      eps: radius (required), > 0.
      beta: λ ≥ 0 (default 6, the paper's CIFAR-10 value; the reference calls it ``beta``).
      steps: PGD steps (default 10), step_size: default ε/4 (0.007 for ε = 8/255 in the reference).
      random_start: "normal" (default), "uniform" or "none".
      norm, label_mode, attack_loss, clip_min, clip_max: see ``AdversarialMethod``.

    Reports ``bce`` and ``kl`` (the weighted KL term, before λ).
    """

    name = "mart"
    components = ("bce", "kl")

    def __init__(self, *, eps=None, beta=6.0, steps=10, step_size=None, random_start="normal", norm="linf",
                 label_mode="true", attack_loss="ce", clip_min=0.0, clip_max=1.0):
        check_number("beta", beta, 0.0)
        super().__init__(eps=eps, norm=norm, steps=steps, step_size=step_size, random_start=random_start,
                         label_mode=label_mode, attack_loss=attack_loss, clip_min=clip_min,
                         clip_max=clip_max, default_step_size=(eps or 0.0) / 4)
        self.beta = float(beta)

    def loss(self, adv, x, y, x_crafted, training):
        clean = tf.cast(losses.logits_of(adv.forward(x, y, training=training)), tf.float32)
        adversarial = tf.cast(losses.logits_of(adv.forward(x_crafted, y, training=training)), tf.float32)
        adv_probs = tf.nn.softmax(adversarial)
        onehot = tf.one_hot(y, tf.shape(adversarial)[-1], dtype=tf.float32)
        runner_up = tf.reduce_max(adv_probs - 2.0 * onehot, axis=-1)  # max_{k≠y} p_k(x′)
        bce = cross_entropy(adversarial, y) - tf.reduce_mean(tf.math.log(1.0001 - runner_up + 1e-12))
        true_probs = tf.reduce_sum(tf.nn.softmax(clean) * onehot, axis=-1)
        kl = tf.reduce_mean(kl_divergence(clean, adversarial) * (1.0000001 - true_probs))
        return LossRecord(bce + self.beta * kl, {"bce": bce, "kl": kl}, crafted_logits=adversarial,
                          clean_logits=clean)
