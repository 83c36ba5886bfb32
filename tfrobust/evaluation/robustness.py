"""Accuracy of a model under an attack, batch by batch.

Robust accuracy counts every test point: a point misclassified on the clean input counts as broken
(the convention of RobustBench and of our seed papers unless they say otherwise), so robust accuracy
never exceeds clean accuracy. The attack is run only on points still classified correctly, and a point
counts as robust only if it is classified correctly both clean and under attack.
"""

import time

import numpy as np
import tensorflow as tf

from tfrobust.attacks.losses import logits_of


def predict_labels(predict_fn, x, batch_size=256):
    """argmax of ``predict_fn`` over ``x`` in batches (``predict_fn`` maps a NumPy batch to logits)."""
    return np.concatenate([np.argmax(np.asarray(predict_fn(x[i:i + batch_size])), axis=-1)
                           for i in range(0, len(x), batch_size)]) if len(x) else np.zeros(0, np.int64)


def robust_accuracy(attack, craft_fn, x, y, *, predict_fn=None, batch_size=256):
    """Runs ``attack`` and reports accuracy.

    Args:
      attack: an ``Attack``, or None for clean accuracy.
      craft_fn: the model the attack crafts against (``images -> logits``, TensorFlow).
      x, y: images in [0, 1] and integer labels.
      predict_fn: the model evaluated on the crafted inputs (NumPy images → logits); defaults to
        ``craft_fn``. A different ``predict_fn`` makes this a transfer attack from ``craft_fn``.
      batch_size: points per attack batch.

    Returns:
      dict with ``accuracy`` (fraction of all points), ``correct`` (bool [N] per point), ``seconds``.
    """
    if predict_fn is None:
        predict_fn = lambda batch: logits_of(craft_fn(tf.constant(batch))).numpy()  # noqa: E731
    start = time.perf_counter()
    x = np.asarray(x, np.float32)
    y = np.asarray(y).astype(np.int64)
    correct = predict_labels(predict_fn, x, batch_size) == y
    if attack is not None:
        # Attack only the points still standing: broken points stay broken.
        standing = np.flatnonzero(correct)
        for i in range(0, len(standing), batch_size):
            index = standing[i:i + batch_size]
            x_adv = np.asarray(attack(craft_fn, x[index], y[index]))
            correct[index] = predict_labels(predict_fn, x_adv, batch_size) == y[index]
    return {"accuracy": float(np.mean(correct)) if len(correct) else float("nan"),
            "correct": correct, "seconds": time.perf_counter() - start}
