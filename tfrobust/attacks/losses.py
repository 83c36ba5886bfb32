"""Per-example attack losses on logits. Each returns a [N] tensor the attacker *maximises*."""

import tensorflow as tf

from tfrobust.errors import check_choice


def cross_entropy(logits, labels):
    """Softmax cross-entropy of each example w.r.t. its label."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def margin(logits, labels, kappa=0.0):
    """Carlini–Wagner margin max_{j≠y} z_j − z_y, capped above at ``kappa`` (κ = confidence).

    Positive exactly when the example is misclassified; the cap stops the attacker pushing further
    once the margin reaches κ (C&W's f₆).
    """
    num_classes = tf.shape(logits)[-1]
    onehot = tf.one_hot(labels, num_classes, dtype=logits.dtype)
    true_logit = tf.reduce_sum(onehot * logits, axis=-1)
    other = tf.reduce_max(logits - onehot * 1e9, axis=-1)
    value = other - true_logit
    return tf.minimum(value, kappa) if kappa else value


LOSSES = {"ce": cross_entropy, "margin": margin}


def get(name):
    """Looks up a loss by name ("ce", "margin")."""
    check_choice("loss", name, LOSSES)
    return LOSSES[name]


def objective(loss_fn, logits, labels, targeted):
    """What the attacker maximises: the loss away from the true label, or minus the loss to the target."""
    value = loss_fn(tf.cast(logits, tf.float32), labels)
    return -value if targeted else value


def is_successful(logits, labels, targeted):
    """[N] bool: the prediction left the true label (untargeted) or reached the target (targeted)."""
    predictions = tf.argmax(logits, axis=-1, output_type=labels.dtype)
    return tf.equal(predictions, labels) if targeted else tf.not_equal(predictions, labels)
