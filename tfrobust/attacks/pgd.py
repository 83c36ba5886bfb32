"""Projected gradient descent (PGD / BIM), L∞ and L2, random start and restarts.

The steps themselves are ``projected_ascent``, the core the adversarial training methods craft with too.
"""

import tensorflow as tf

from tfrobust.attacks import losses
from tfrobust.attacks.compiled_attack import CompiledAttack
from tfrobust.attacks.projected_ascent import projected_ascent, start_point
from tfrobust.attacks.threat_model import expand_like
from tfrobust.errors import check_int


class PGD(CompiledAttack):
    """Projected gradient ascent on the loss inside the threat model's ball.

    Each of ``restarts`` runs starts at a uniform point of the ball (or at x when ``random_start`` is
    False, which is BIM), takes ``steps`` steps of size ``step_size`` along the steepest-ascent direction
    of the norm (sign for L∞, normalised gradient for L2) and projects back. A run's result is its
    *latest misclassified iterate* (random start included) if it had one — as APGD and AutoAttack
    keep it: with a fixed step an iterate can cross the boundary and step back out, and the last
    iterate alone would miss it — otherwise its last iterate. Per point, the result is the worst case
    over restarts: a successful adversarial example if any run found one, otherwise the run with the
    highest loss. Tracking costs no extra model call (each step's gradient pass yields its logits); the
    steps are ``projected_ascent``, the core the training methods craft with.

    Args:
      steps: iterations per run (PGD-N means N steps), ≥ 1.
      step_size: absolute step; default ``2.5 · eps / steps`` (Madry et al.), so the path can cross the
        ball's diameter.
      random_start: start uniformly in the ball (Madry) instead of at x (BIM, Kurakin et al.).
      restarts: independent runs, ≥ 1; they only add strength.
      loss: "ce" or "margin".
      **threat: norm, eps, clip_min, clip_max, targeted, seed (see ``Attack``).

    Reference: Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018.
    """

    def __init__(self, *, steps=10, step_size=None, random_start=True, restarts=1, loss="ce", **threat):
        super().__init__(**threat)
        self._set_iterations(steps, step_size, loss, eps_per_step=2.5)
        check_int("restarts", restarts, 1)
        self.restarts = int(restarts)
        self.random_start = bool(random_start)

    def _perturb(self, model_fn, x, y, seed):
        threat = self.threat
        best_adv = x
        best_objective = tf.fill(tf.shape(y), float("-inf"))
        best_success = tf.zeros(tf.shape(y), tf.bool)
        for restart in tf.range(self.restarts):
            start = start_point(threat, x, "uniform" if self.random_start else "none",
                                tf.random.experimental.stateless_fold_in(seed, restart))

            def gradient_fn(x_adv):
                objective, logits, grad = self._objective_and_gradient(model_fn, x_adv, y, self._loss_fn)
                return grad, losses.is_successful(logits, y, threat.targeted), objective

            x_adv, x_fooled, fooled, fooled_objective = projected_ascent(
                gradient_fn, threat, x, start, steps=self.steps, step_size=self.step_size, track_success=True)
            outputs = self._forward(model_fn, x_adv)
            logits = losses.logits_of(outputs)
            objective = losses.objective(self._loss_fn, outputs, y, threat.targeted)
            success = losses.is_successful(logits, y, threat.targeted)
            # The last iterate if it succeeded (it is the latest), else the latest successful one.
            take_fooled = ~success & fooled
            x_adv = tf.where(expand_like(take_fooled, x), x_fooled, x_adv)
            objective = tf.where(take_fooled, fooled_objective, objective)
            success = success | fooled
            # Prefer a successful run; among equals prefer the higher loss.
            better = (success & ~best_success) | ((success == best_success) & (objective > best_objective))
            best_adv = tf.where(expand_like(better, x), x_adv, best_adv)
            best_objective = tf.where(better, objective, best_objective)
            best_success = best_success | success
        return best_adv

    def _config(self):
        return {"steps": self.steps, "step_size": self.step_size, "random_start": self.random_start,
                "restarts": self.restarts, "loss": self.loss}

