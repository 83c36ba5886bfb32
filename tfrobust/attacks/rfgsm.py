"""R+FGSM: FGSM from a random sign step, L∞ (the paper) and its L2 analogue."""

import tensorflow as tf

from tfrobust.attacks import losses
from tfrobust.attacks.compiled_attack import CompiledAttack
from tfrobust.errors import check_number


class RFGSM(CompiledAttack):
    """FGSM taken from a random point of the ball instead of from x.

    L∞ (Tramèr et al., eq. of R+FGSM in Sec. 4.1)::

        x' = x + α · sign(N(0, I))
        x_adv = clip_{[clip_min, clip_max]}( x' + (ε − α) · sign(∇_{x'} L(x', y)) )

    The random step escapes the sharp curvature of the loss at the data point ("gradient masking"),
    which makes single-step FGSM weak against adversarially trained models; the two steps together
    stay in the ε-ball (|α| + |ε − α| = ε).

    L2 analogue (our extension, the paper is L∞ only): the random step is α·z/‖z‖₂ with z ~ N(0, I)
    (a uniformly random direction) and the gradient step (ε − α)·∇/‖∇‖₂; by the triangle inequality
    the result is in the L2 ball of radius ε. Both steps are followed by a clip into the range, which
    can only shrink each coordinate of the perturbation, so the ball constraint still holds.

    For a targeted attack the gradient step descends the loss to the target.

    Args:
      alpha: size of the random step, in [0, eps]; default ``eps / 2`` (the paper's choice).
        ``alpha=0`` is FGSM.
      loss: "ce" (default, as in the paper) or "margin" (C&W margin), or a loss callable.
      **threat: norm, eps, clip_min, clip_max, targeted, seed (see ``Attack``). The random step is
        drawn from the call's stateless seed, so a freshly built attack with the same seed repeats.

    Cost per point: 1 forward and 1 backward pass.

    Reference: Tramèr, Kurakin, Papernot, Goodfellow, Boneh & McDaniel, "Ensemble Adversarial
    Training: Attacks and Defenses", ICLR 2018.
    """

    def __init__(self, *, alpha=None, loss="ce", **threat):
        super().__init__(**threat)
        eps = self.threat.eps
        if alpha is None:
            alpha = eps / 2
        check_number("alpha", alpha, 0.0, eps)
        self.alpha = float(alpha)
        self.loss = losses.describe(loss)
        self._loss_fn = losses.get(loss)

    def _perturb(self, model_fn, x, y, seed):
        threat = self.threat
        noise = tf.random.stateless_normal(tf.shape(x), seed, dtype=x.dtype)
        x_random = tf.clip_by_value(x + self.alpha * threat.steepest_ascent(noise),
                                    threat.clip_min, threat.clip_max)
        _, _, grad = self._objective_and_gradient(model_fn, x_random, y, self._loss_fn)
        step = (threat.eps - self.alpha) * threat.steepest_ascent(grad)
        # The projection is a no-op up to round-off (see the class docstring); it guarantees the ball.
        return threat.project(x_random + step, x)

    def _config(self):
        return {"alpha": self.alpha, "loss": self.loss}
