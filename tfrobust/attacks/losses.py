"""Per-example attack losses. Each returns a [N] tensor the attacker *maximises*.

A loss is a callable ``loss(logits, labels) -> [N]``. A model may also return a dict of outputs (its
``"logits"`` plus auxiliary heads, e.g. CIFS probes); a loss that wants the whole dict sets the
attribute ``uses_outputs = True`` and is called as ``loss(outputs, labels)`` (see ``AuxiliaryLoss``).
"""

import tensorflow as tf

from tfrobust.core import auxiliary_loss
from tfrobust.errors import check_choice


def cross_entropy(logits, labels):
    """Softmax cross-entropy of each example w.r.t. its label."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def margin(logits, labels):
    """Carlini–Wagner margin max_{j≠y} z_j − z_y, uncapped (``CWMarginLoss`` adds the confidence cap).

    Positive exactly when the example is misclassified.
    """
    num_classes = tf.shape(logits)[-1]
    onehot = tf.one_hot(labels, num_classes, dtype=logits.dtype)
    true_logit = tf.reduce_sum(onehot * logits, axis=-1)
    other = tf.reduce_max(logits - onehot * 1e9, axis=-1)
    value = other - true_logit
    return value


class CWMarginLoss:
    """C&W's f₆ as a loss to maximise: the success margin capped at the confidence κ.

    Untargeted (labels = true classes): ``min(max_{j≠y} z_j − z_y, κ)``. Targeted (labels = targets):
    the base class negates a loss when targeted, so this returns ``max(max_{j≠t} z_j − z_t, −κ)`` and
    the attacker maximises ``min(z_t − max_{j≠t} z_j, κ)``. Either way the objective is
    ``min(success margin, κ)`` = −f₆ (Carlini & Wagner, eq. f₆), positive exactly on success. Unlike
    ``losses.margin``, the cap applies at κ = 0 too; ``kappa=inf`` is the uncapped margin.
    """

    def __init__(self, kappa=0.0, targeted=False):
        self.kappa = float(kappa)
        self.targeted = bool(targeted)

    def __call__(self, logits, labels):
        value = margin(logits, labels)
        return tf.maximum(value, -self.kappa) if self.targeted else tf.minimum(value, self.kappa)

    def get_config(self):
        return {"name": "cw_margin", "kappa": self.kappa}


LOSSES = {"ce": cross_entropy, "margin": margin}


def get(name_or_fn):
    """Looks up a loss by name ("ce", "margin", …) or passes a loss callable through."""
    if callable(name_or_fn):
        return name_or_fn
    check_choice("loss", name_or_fn, LOSSES)
    return LOSSES[name_or_fn]


def describe(loss):
    """A loss name or a loss object's config, for ``get_config`` of the attacks that use it."""
    return loss if isinstance(loss, str) else getattr(loss, "get_config", lambda: repr(loss))()


def logits_of(outputs):
    """The logits in a model's outputs: the tensor itself, or ``outputs["logits"]`` for a dict."""
    return outputs["logits"] if isinstance(outputs, dict) else outputs


#: Key of the per-pass logits [S, N, K] that ``EOT(average="loss")`` adds to its outputs.
EOT_PASSES = "eot_pass_logits"


def objective(loss_fn, outputs, labels, targeted):
    """What the attacker maximises: the loss away from the true label, or minus the loss to the target.

    For outputs of ``EOT(average="loss")`` (a dict with per-pass logits) the loss is the mean of the
    per-pass losses, so its gradient is the mean of the per-pass gradients (AutoAttack's ``eot_iter``).
    """
    if getattr(loss_fn, "uses_outputs", False):
        value = loss_fn(outputs, labels)
    elif isinstance(outputs, dict) and EOT_PASSES in outputs:
        passes = tf.unstack(tf.cast(outputs[EOT_PASSES], tf.float32))
        value = tf.reduce_mean(tf.stack([loss_fn(p, labels) for p in passes]), axis=0)
    else:
        value = loss_fn(tf.cast(logits_of(outputs), tf.float32), labels)
    return -value if targeted else value


def is_successful(logits, labels, targeted):
    """[N] bool: the prediction left the true label (untargeted) or reached the target (targeted)."""
    predictions = tf.argmax(logits, axis=-1, output_type=labels.dtype)
    return tf.equal(predictions, labels) if targeted else tf.not_equal(predictions, labels)


class AuxiliaryLoss(auxiliary_loss.AuxiliaryLoss):
    """The adaptive-loss hook: a weighted sum of a base loss over the final logits and auxiliary outputs.

    ℓ(x, y) = w_logits · L(z(x), y) + Σ_k w_k · L(a_k(x), y), where the model returns a dict with
    ``"logits"`` and auxiliary logits ``a_k`` under other keys (a key may also hold a list of logits,
    each weighted by that key's weight). Defenses whose auxiliary heads shape the prediction (CIFS probes)
    are attacked through them this way, as their own training loss does: this is the one loss object
    of ``tfrobust.core.auxiliary_loss`` (also CIFS' training ℓβ), with the base loss looked up by name.
    ``AuxiliaryLoss.beta(β, keys)`` is CIFS' ℓβ family (``beta=float("inf")``: the auxiliary outputs alone).

    Args:
      weights: {output key: weight} for the auxiliary outputs.
      base: the base loss (name or callable on logits), "ce" by default.
      logits_weight: the weight of the final logits' loss.
    """

    def __init__(self, weights, base="ce", logits_weight=1.0):
        super().__init__(weights, base, logits_weight)

    @staticmethod
    def _resolve(base):
        return get(base)

    @classmethod
    def beta(cls, beta, keys=None, base="ce"):
        return super().beta(beta, keys, base)


# -- Difference-of-logits-ratio losses (Croce & Hein 2020, used by APGD / APGD-T) -------------------
def _require_classes(logits, minimum, name):
    """Raises a one-line error (at trace time) when the logits have fewer than ``minimum`` classes."""
    from tfrobust.errors import TfrobustError

    num_classes = logits.shape[-1]
    if num_classes is not None and num_classes < minimum:
        raise TfrobustError(f"the {name} loss needs at least {minimum} classes, got {num_classes}")


def dlr(logits, labels):
    """Difference of logits ratio, to maximise (Croce & Hein, ICML 2020, eq. 4):

        DLR(z, y) = −(z_y − max_{j≠y} z_j) / (z_π1 − z_π3 + 1e−12),

    with z_π1 ≥ z_π2 ≥ z_π3 the sorted logits. Positive exactly when misclassified; invariant to shifting
    and (positively) scaling the logits. ``max_{j≠y}`` is the second-largest logit when the arg-max index
    is y and the largest otherwise (the reference compares sort indices). Needs ≥ 3 classes.
    """
    _require_classes(logits, 3, "DLR")
    top, top_index = tf.math.top_k(logits, k=3)
    labels = tf.cast(labels, top_index.dtype)
    true_logit = tf.gather(logits, labels, axis=-1, batch_dims=1)
    other = tf.where(tf.equal(top_index[:, 0], labels), top[:, 1], top[:, 0])
    return -(true_logit - other) / (top[:, 0] - top[:, 2] + 1e-12)


def dlr_targeted(logits, labels, targets=None):
    """Targeted DLR, to maximise (APGD-T):

        DLR_t(z, y) = −(z_y − z_t) / (z_π1 − ½(z_π3 + z_π4) + 1e−12),

    for the true label y and target class t. ``labels`` are the true labels [N] with ``targets`` [N]; as a
    two-argument registry loss (``LOSSES["dlr_targeted"]``) ``labels`` must stack them as an [N, 2] tensor
    of (true label, target). Needs ≥ 4 classes.
    """
    _require_classes(logits, 4, "targeted DLR")
    if targets is None:
        if labels.shape.rank != 2:
            from tfrobust.errors import TfrobustError

            raise TfrobustError("the targeted DLR loss needs target classes: use APGDT, or pass labels "
                                "as an [N, 2] tensor of (true label, target)")
        labels, targets = labels[:, 0], labels[:, 1]
    top, _ = tf.math.top_k(logits, k=4)
    true_logit = tf.gather(logits, labels, axis=-1, batch_dims=1)
    target_logit = tf.gather(logits, targets, axis=-1, batch_dims=1)
    return -(true_logit - target_logit) / (top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + 1e-12)


LOSSES["dlr"] = dlr
LOSSES["dlr_targeted"] = dlr_targeted
