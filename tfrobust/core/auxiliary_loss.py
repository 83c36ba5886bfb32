"""One auxiliary-output loss, shared by training (CIFS' ℓβ, thesis eq. 4.3) and the adaptive attacks.

It lives in ``core`` because both sides need it and neither may import the other: layers (CIFS) are
below attacks, and attacks import neither layers nor training (docs/ARCHITECTURE.md).
``tfrobust.attacks.losses.AuxiliaryLoss`` is this class with base losses looked up by name
("ce", "margin", "dlr" …); ``tfrobust.layers.cifs.beta_loss`` is ``AuxiliaryLoss.beta``.
"""

import math
import numbers

import tensorflow as tf

from tfrobust.errors import TfrobustError


def cross_entropy(logits, labels):
    """Softmax cross-entropy [N] of float32 ``logits`` w.r.t. integer ``labels`` (any int dtype, any shape
    holding N values)."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(tf.reshape(labels, [-1]), tf.int64), logits=tf.cast(logits, tf.float32))


def check_beta(beta, *, allow_inf=True):
    """β of ℓβ: a number ≥ 0 (bools rejected), ``inf`` allowed only where the probe term alone makes
    sense (attacks, the loss itself), not as a training weight."""
    valid = (not isinstance(beta, bool) and isinstance(beta, numbers.Real) and beta >= 0
             and (allow_inf or math.isfinite(beta)))
    if not valid:
        allowed = "a number >= 0 or inf" if allow_inf else "a finite number >= 0"
        raise TfrobustError(f"beta must be {allowed}, got {beta!r}")


class AuxiliaryLoss:
    """A weighted sum of a base loss over the final logits and auxiliary outputs, per example [N].

    ℓ(x, y) = w_logits · L(z(x), y) + Σ_k w_k · L(a_k(x), y), where the model returns a dict with
    ``"logits"`` and auxiliary logits ``a_k`` under other keys (a key may also hold a list of logits,
    each weighted by that key's weight). Defenses whose auxiliary heads shape the prediction (CIFS probes)
    are trained with it and attacked through it.

    Args:
      weights: {output key: weight} for the auxiliary outputs.
      base: the base loss, a callable ``base(logits, labels) -> [N]`` (default: cross-entropy).
      logits_weight: the weight of the final logits' loss.
    """

    #: Losses with this attribute are called with the model's whole output dict (see attacks.losses).
    uses_outputs = True

    def __init__(self, weights, base=cross_entropy, logits_weight=1.0):
        self.weights = None if weights is None else dict(weights)
        self.base = base
        self.logits_weight = float(logits_weight)
        self._base_fn = self._resolve(base)
        self._beta = None

    @staticmethod
    def _resolve(base):
        if not callable(base):
            raise TfrobustError(f"base loss must be callable, got {base!r}")
        return base

    @classmethod
    def beta(cls, beta, keys=None, base=cross_entropy):
        """CIFS' ℓβ family (eq. 4.3): weight 1/(1+β) on the final logits and β/(L(1+β)) on each of the L
        auxiliary outputs; ``beta=inf`` keeps the auxiliary outputs alone (weights 1/L). ``keys``: the
        auxiliary output keys; None = every key of the outputs but "logits", read at each call."""
        check_beta(beta)
        beta = float(beta)
        keys = None if keys is None else list(keys)
        logits_weight = 0.0 if math.isinf(beta) else 1.0 / (1.0 + beta)
        loss = cls(None if keys is None else cls._beta_weights(beta, keys), base, logits_weight)
        loss._beta = beta
        return loss

    @staticmethod
    def _beta_weights(beta, keys):
        if not keys:
            return {}
        share = 1.0 if math.isinf(beta) else beta / (1.0 + beta)
        return {key: share / len(keys) for key in keys}

    def __call__(self, outputs, labels):
        weights = self.weights
        if weights is None:  # ℓβ over whatever auxiliary outputs this model returns
            weights = self._beta_weights(self._beta, [key for key in outputs if key != "logits"])
        total = self.logits_weight * self._base_fn(tf.cast(outputs["logits"], tf.float32), labels)
        for key, weight in weights.items():
            heads = outputs[key] if isinstance(outputs[key], (list, tuple)) else [outputs[key]]
            for head in heads:
                total += weight * self._base_fn(tf.cast(head, tf.float32), labels)
        return total

    def get_config(self):
        base = self.base if isinstance(self.base, str) else getattr(self.base, "__name__", repr(self.base))
        config = {"weights": self.weights, "base": base, "logits_weight": self.logits_weight}
        if self._beta is not None:
            config["beta"] = self._beta
        return config
