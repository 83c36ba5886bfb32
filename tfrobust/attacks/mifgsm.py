"""MI-FGSM: iterative FGSM with a momentum of L1-normalised gradients, L∞ and L2."""

import tensorflow as tf

from tfrobust.attacks.compiled_attack import CompiledAttack
from tfrobust.attacks.threat_model import expand_like
from tfrobust.errors import check_number


class MIFGSM(CompiledAttack):
    """Momentum Iterative FGSM.

    From x*₀ = x, g₀ = 0, for t = 0 … T−1 (Dong et al., Algorithm 1, eqs. 6–7)::

        g_{t+1}  = μ · g_t + ∇ₓL(x*_t, y) / ‖∇ₓL(x*_t, y)‖₁
        x*_{t+1} = Π_{ball ∩ range}( x*_t + α · sign(g_{t+1}) )            (L∞)
        x*_{t+1} = Π_{ball ∩ range}( x*_t + α · g_{t+1} / ‖g_{t+1}‖₂ )      (L2, the paper's Sec. 3.3)

    The L1 normalisation (per example, summed over all pixels and channels) makes gradients of
    different iterations comparable in scale before they are accumulated. The result is the last
    iterate, as in the paper (no best-iterate selection, no random start). With ``decay=0`` this is
    I-FGSM/BIM with step α.

    Args:
      steps: iterations T, ≥ 1.
      decay: momentum decay factor μ ≥ 0; the paper uses 1.0.
      step_size: α > 0; default ``eps / steps`` (the paper's choice: T steps reach the ball's boundary
        exactly along a fixed direction).
      loss: "ce" (default, as in the paper) or "margin", or a loss callable.
      **threat: norm, eps, clip_min, clip_max, targeted, seed (see ``Attack``).

    Cost per point: ``steps`` forward and ``steps`` backward passes.

    Reference: Dong, Liao, Pang, Su, Zhu, Hu & Li, "Boosting Adversarial Attacks with Momentum",
    CVPR 2018.
    """

    def __init__(self, *, steps=10, decay=1.0, step_size=None, loss="ce", **threat):
        super().__init__(**threat)
        self._set_iterations(steps, step_size, loss, eps_per_step=1.0)
        check_number("decay", decay, 0.0)
        self.decay = float(decay)

    def _perturb(self, model_fn, x, y, seed):
        threat = self.threat
        x_adv = x
        momentum = tf.zeros_like(x)
        for _ in tf.range(self.steps):
            _, _, grad = self._objective_and_gradient(model_fn, x_adv, y, self._loss_fn)
            l1 = tf.reduce_sum(tf.abs(tf.reshape(grad, [tf.shape(grad)[0], -1])), axis=1)
            momentum = self.decay * momentum + grad / expand_like(tf.maximum(l1, 1e-12), grad)
            x_adv = threat.ascent_step(x_adv, momentum, self.step_size, x)
        return x_adv

    def _config(self):
        return {"steps": self.steps, "decay": self.decay, "step_size": self.step_size, "loss": self.loss}
