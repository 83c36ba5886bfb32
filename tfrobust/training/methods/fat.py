"""Friendly adversarial training (Zhang et al.): PGD stopped early, τ steps after misclassification."""

import tensorflow as tf

from tfrobust.attacks import losses
from tfrobust.attacks.projected_ascent import start_point
from tfrobust.attacks.threat_model import expand_like
from tfrobust.errors import check_int
from tfrobust.training.methods.base import AdversarialMethod, LossRecord, cross_entropy, input_gradient_and_outputs


class FAT(AdversarialMethod):
    """Zhang et al., "Attacks Which Do Not Kill Training Make Adversarial Learning Stronger", ICML 2020,
    Algorithm 1 (PGD-K-τ): the minimisation of CE(f(x̃), y) over *friendly* adversarial data x̃, found by
    PGD that stops for each example τ steps after it first becomes misclassified:

        for k = 1 … K:  if f(x̃) ≠ y: (stop if τᵢ = 0, else τᵢ ← τᵢ − 1);
                        x̃ ← Π(x̃ + α · sign(∇ CE(f(x̃), y)))   for the examples still running.

    The check happens before each step, as in the reference ``earlystop``; start x + 0.001·N(0, I).

    Args:
      eps: radius (required), > 0.
      tau: τ ≥ 0 extra steps after misclassification (default 0; the paper also raises τ during
        training — 0, 1, 2 … — which here means training stages with different ``tau``).
      steps: K (default 10), step_size: default ε/4 (0.007 for ε = 0.031 in the reference).
      random_start: "normal" (default), "uniform" or "none".
      norm, label_mode, attack_loss, clip_min, clip_max: see ``AdversarialMethod``.

    Reports ``ce`` on the friendly adversarial batch.
    """

    name = "fat"
    components = ("ce",)

    def __init__(self, *, eps=None, tau=0, steps=10, step_size=None, random_start="normal", norm="linf",
                 label_mode="true", attack_loss="ce", clip_min=0.0, clip_max=1.0):
        check_int("tau", tau, 0)
        super().__init__(eps=eps, norm=norm, steps=steps, step_size=step_size, random_start=random_start,
                         label_mode=label_mode, attack_loss=attack_loss, clip_min=clip_min,
                         clip_max=clip_max, default_step_size=(eps or 0.0) / 4)
        self.tau = int(tau)

    def craft(self, adv, x, labels, seed):
        threat = self.threat
        start = start_point(threat, x, self.random_start, seed)
        n = tf.shape(x)[:1]

        def body(i, x_adv, budget, stopped):
            grad, outputs = input_gradient_and_outputs(adv, x_adv, lambda out: self.objective(out, labels))
            wrong = tf.not_equal(tf.argmax(losses.logits_of(outputs), -1, output_type=labels.dtype), labels)
            stopped = stopped | (wrong & tf.equal(budget, 0))
            budget = tf.where(wrong & ~stopped, budget - 1, budget)
            stepped = threat.ascent_step(x_adv, grad, self.step_size, x)
            x_adv = tf.where(expand_like(stopped, x), x_adv, stepped)
            return i + 1, tf.stop_gradient(x_adv), budget, stopped

        _, x_adv, _, _ = tf.while_loop(
            lambda i, *_: i < self.steps, body,
            (tf.constant(0), start, tf.fill(n, self.tau), tf.zeros(n, tf.bool)),
            maximum_iterations=self.steps)
        return tf.ensure_shape(x_adv, x.shape)

    def loss(self, adv, x, y, x_crafted, training):
        del x
        logits = losses.logits_of(adv.forward(x_crafted, y, training=training))
        ce = cross_entropy(logits, y)
        return LossRecord(ce, {"ce": ce}, crafted_logits=logits)
