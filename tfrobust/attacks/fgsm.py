"""FGSM (L∞) and its L2 form FGM: one step of size ε along the steepest-ascent direction."""


from tfrobust.attacks import losses
from tfrobust.attacks.compiled_attack import CompiledAttack


class FGSM(CompiledAttack):
    """Fast Gradient Sign Method.

    x' = clip(x + ε · sign(∇ₓ L(x, y))) for L∞; x' = clip(x + ε · ∇ₓL / ‖∇ₓL‖₂) for L2.
    For a targeted attack the step descends the loss to the target.

    Args:
      loss: "ce" (default, as in the paper) or "margin" (C&W margin).
      **threat: norm, eps, clip_min, clip_max, targeted, seed (see ``Attack``).

    Reference: Goodfellow, Shlens & Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR 2015.
    """

    def __init__(self, *, loss="ce", **threat):
        super().__init__(**threat)
        self.loss = losses.describe(loss)
        self._loss_fn = losses.get(loss)

    def _perturb(self, model_fn, x, y, seed):
        _, _, grad = self._objective_and_gradient(model_fn, x, y, self._loss_fn)
        return self.threat.ascent_step(x, grad, self.threat.eps, x)

    def _config(self):
        return {"loss": self.loss}
