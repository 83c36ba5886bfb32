"""PGD adversarial training (Madry et al.) and its one-step "fast" form FGSM-RS (Wong et al.)."""

from tfrobust.attacks import losses
from tfrobust.training.methods.base import AdversarialMethod, LossRecord, cross_entropy


class PGDAT(AdversarialMethod):
    """Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018, eq. (2.1):

        min_θ E[ max_{‖δ‖ ≤ ε} CE(f_θ(x + δ), y) ],

    the inner maximum approximated by PGD-k from a uniform random start in the ball.

    Args:
      eps: radius (required), > 0.
      steps: PGD iterations k (default 10).
      step_size: default 2.5·ε/k (Madry's rule, so the path can cross the ball; = 2/255 for ε = 8/255,
        k = 10, the CIFAR-10 setting of the seeds; MNIST uses k = 40, step 0.01 for ε = 0.3).
      random_start: "uniform" (default, Madry), "normal" or "none" (BIM).
      norm, label_mode, attack_loss, clip_min, clip_max: see ``AdversarialMethod``.

    Reports ``ce`` (on the adversarial batch, training mode). Cost per step: k + 1 forward-backward
    passes (plus one forward for ``clean_accuracy``).
    """

    name = "pgd_at"
    components = ("ce",)

    def __init__(self, *, eps=None, steps=10, step_size=None, random_start="uniform", norm="linf",
                 label_mode="true", attack_loss="ce", clip_min=0.0, clip_max=1.0):
        super().__init__(eps=eps, norm=norm, steps=steps, step_size=step_size, random_start=random_start,
                         label_mode=label_mode, attack_loss=attack_loss, clip_min=clip_min,
                         clip_max=clip_max, default_step_size=2.5 * (eps or 0.0) / max(int(steps), 1))

    def loss(self, adv, x, y, x_crafted, training):
        del x
        logits = losses.logits_of(adv.forward(x_crafted, y, training=training))
        ce = cross_entropy(logits, y)
        return LossRecord(ce, {"ce": ce}, crafted_logits=logits)


class FGSMRS(PGDAT):
    """FGSM with a random start, "fast" adversarial training: Wong, Rice & Kolter, "Fast is better than
    free: Revisiting adversarial training", ICLR 2020, Algorithm 3:

        δ ~ U(−ε, ε);  δ ← Π_ε(δ + α · sign(∇_δ CE(f(x + δ), y)));  θ ← θ − η ∇_θ CE(f(x + δ), y),

    with α = 1.25·ε (their default; α ≥ 2ε leads to catastrophic overfitting). Pair it with the
    one-cycle learning-rate schedule (``make_schedule("one_cycle", …)``) as the paper does.

    Args:
      eps: radius (required), > 0.
      step_size: α, default 1.25·ε.
      random_start: "uniform" (default); "none" gives plain FGSM training (Goodfellow et al. 2015).
      norm, label_mode, attack_loss, clip_min, clip_max: see ``AdversarialMethod``.

    Crafting is ``AdversarialMethod.craft`` with one step. Reports ``ce``. Cost: 2 forward-backward passes
    per step.
    """

    name = "fgsm_rs"

    def __init__(self, *, eps=None, step_size=None, random_start="uniform", norm="linf",
                 label_mode="true", attack_loss="ce", clip_min=0.0, clip_max=1.0):
        AdversarialMethod.__init__(self, eps=eps, norm=norm, steps=1, step_size=step_size,
                                   random_start=random_start, label_mode=label_mode,
                                   attack_loss=attack_loss, clip_min=clip_min, clip_max=clip_max,
                                   default_step_size=1.25 * (eps or 0.0))
