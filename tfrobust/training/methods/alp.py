"""Adversarial logit pairing (Kannan, Kurakin & Goodfellow)."""

import tensorflow as tf

from tfrobust.attacks import losses
from tfrobust.errors import check_number
from tfrobust.training.methods.base import AdversarialMethod, LossRecord, cross_entropy


class ALP(AdversarialMethod):
    """Kannan, Kurakin & Goodfellow, "Adversarial Logit Pairing", 2018, eq. (3):

        L = ½·CE(f(x), y) + ½·CE(f(x′), y) + λ · (1/(N·C)) Σᵢ ‖z(xᵢ) − z(x′ᵢ)‖²₂,

    mixed clean/adversarial training plus a squared-L2 pairing of the logits z; x′ from PGD (Madry).
    As in the authors' TensorFlow code (``research/adversarial_logit_pairing/train.py``), clean and
    adversarial images go through the model as *one* concatenated training-mode batch, the
    cross-entropy is averaged over the 2N examples and the pairing is ``mean_squared_error`` (mean
    over examples and classes). Note: Engstrom et al. (2018) showed ALP's reported ImageNet robustness
    falls under stronger attacks; evaluate it with AutoAttack.

    Args:
      eps: radius (required), > 0.
      lam: λ ≥ 0, the pairing weight (default 0.5).
      steps, step_size, random_start: the PGD of ``PGDAT`` (10 steps of 2.5·ε/10, uniform start).
      norm, label_mode, attack_loss, clip_min, clip_max: see ``AdversarialMethod``.

    Reports ``ce_clean``, ``ce_adv`` and ``pairing``.
    """

    name = "alp"
    components = ("ce_clean", "ce_adv", "pairing")

    def __init__(self, *, eps=None, lam=0.5, steps=10, step_size=None, random_start="uniform", norm="linf",
                 label_mode="true", attack_loss="ce", clip_min=0.0, clip_max=1.0):
        check_number("lam", lam, 0.0)
        super().__init__(eps=eps, norm=norm, steps=steps, step_size=step_size, random_start=random_start,
                         label_mode=label_mode, attack_loss=attack_loss, clip_min=clip_min,
                         clip_max=clip_max, default_step_size=2.5 * (eps or 0.0) / max(int(steps), 1))
        self.lam = float(lam)

    def loss(self, adv, x, y, x_crafted, training):
        both = losses.logits_of(adv.forward(tf.concat([x, x_crafted], 0), tf.concat([y, y], 0),
                                            training=training))
        clean, adversarial = tf.split(tf.cast(both, tf.float32), 2)
        ce_clean, ce_adv = cross_entropy(clean, y), cross_entropy(adversarial, y)
        pairing = tf.reduce_mean(tf.square(clean - adversarial))
        total = 0.5 * (ce_clean + ce_adv) + self.lam * pairing
        return LossRecord(total, {"ce_clean": ce_clean, "ce_adv": ce_adv, "pairing": pairing},
                          crafted_logits=adversarial, clean_logits=clean)
