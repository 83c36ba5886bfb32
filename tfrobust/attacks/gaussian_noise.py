"""Gaussian noise: the random-corruption baseline (not an ε-bounded attack).

The accuracy-per-σ sweep over it is ``tfrobust.evaluation.robustness.noise_sweep``.
"""

import numpy as np
import tensorflow as tf

from tfrobust.attacks import losses
from tfrobust.attacks.base import QUERY_BASED
from tfrobust.attacks.compiled_attack import CompiledAttack
from tfrobust.attacks.threat_model import expand_like
from tfrobust.errors import check_int, check_number


class GaussianNoise(CompiledAttack):
    """Adds i.i.d. Gaussian noise: x' = clip(x + σ · n), n ~ N(0, I).

    Not an adversarial attack and not ε-bounded: the noise is isotropic whatever the threat model's
    norm, and ‖δ‖ grows like σ·√d. It measures robustness to random corruption, a sanity baseline for
    the adversarial numbers (a defense that resists PGD but not noise of comparable size is suspect).

    ``eps`` is used as σ when ``sigma`` is not given, so the noise can sit in an ε-sweep like the other
    attacks; an explicit ``sigma`` takes precedence and ``eps`` is then ignored. ``norm`` is ignored.

    With ``samples > 1`` the model is evaluated on every noisy copy and, per point, the worst copy is
    returned: the one with the largest success margin (``max_{j≠y} z_j − z_y``, or ``z_t − max_{j≠t} z_j``
    when targeted), so the point survives only if all copies are classified correctly. With
    ``samples == 1`` the model is not evaluated at all.

    Args:
      sigma: noise standard deviation ≥ 0, in the units of the image range; default: ``eps``.
      samples: noisy copies per point, ≥ 1.
      **threat: eps (σ when ``sigma`` is None), clip_min, clip_max, targeted, seed (see ``Attack``).
        The noise comes from the call's stateless seed: a freshly built attack with the same seed
        returns the same noise on the same inputs.

    Cost per point: no gradients; ``samples`` forward passes if ``samples > 1``, else none.
    """

    kind = QUERY_BASED
    respects_threat_model = False  # σ·√d is not an ε-ball: reported apart from the worst case

    def __init__(self, *, sigma=None, samples=1, **threat):
        super().__init__(**threat)
        if sigma is None:
            sigma = self.threat.eps
        check_number("sigma", sigma, 0.0)
        check_int("samples", samples, 1)
        self.sigma = float(sigma)
        self.samples = int(samples)

    def _noisy(self, x, seed):
        noise = tf.random.stateless_normal(tf.shape(x), seed, dtype=x.dtype)
        return tf.clip_by_value(x + self.sigma * noise, self.threat.clip_min, self.threat.clip_max)

    def _perturb(self, model_fn, x, y, seed):
        if self.samples == 1:
            return self._noisy(x, seed)
        best = x
        best_margin = tf.fill(tf.shape(y), -np.inf)
        for sample in tf.range(self.samples):
            x_noisy = self._noisy(x, tf.random.experimental.stateless_fold_in(seed, sample))
            logits = tf.cast(losses.logits_of(self._forward(model_fn, x_noisy)), tf.float32)
            margin = losses.margin(logits, y)
            margin = -margin if self.threat.targeted else margin
            better = margin > best_margin
            best = tf.where(expand_like(better, x), x_noisy, best)
            best_margin = tf.where(better, margin, best_margin)
        return best

    def _config(self):
        return {"sigma": self.sigma, "samples": self.samples}

