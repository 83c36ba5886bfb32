"""AutoAttack's automatic checks (``AUTOATTACK-SPEC.md`` §6), as plain functions on logits.

Each returns a small dict (``flagged`` plus the measured quantity) so that ``AutoAttack`` can warn, the
sanity checks can flag and the reports can print the same numbers. None of them changes an evaluation.
"""

import numpy as np
import tensorflow as tf

from tfrobust.attacks import losses

#: ``check_range_output``'s tolerance: rows in [−α, 1 + α] summing to 1 ± α look like probabilities.
PROBABILITY_TOLERANCE = 1e-5
#: ``check_randomized``: passes and the largest allowed distance between L2-normalised logit rows.
RANDOMNESS_PASSES = 5
RANDOMNESS_TOLERANCE = 1e-4
#: ``check_square_sr``: Square may remove at most this fraction of points after the white-box attacks.
SQUARE_TOLERANCE = 0.002


def looks_like_probabilities(outputs, tolerance=PROBABILITY_TOLERANCE):
    """True when every row of ``outputs`` lies in [0, 1] (± tolerance) and sums to 1 (± tolerance):
    the model returns softmax probabilities, not logits (the reference's ``check_range_output``)."""
    z = np.asarray(losses.logits_of(outputs), np.float64)
    if z.ndim != 2 or not z.size:
        return False
    return bool(z.max() < 1 + tolerance and z.min() > -tolerance
                and np.all(np.abs(z.sum(axis=1) - 1) < tolerance))


def randomness(model_fn, x, y, passes=RANDOMNESS_PASSES, tolerance=RANDOMNESS_TOLERANCE):
    """The reference's ``check_randomized``: ``passes`` forward passes on the same ``x``.

    Flags when the number of correct predictions differs between passes, or when two passes' logit rows,
    each normalised to unit L2 norm, differ by more than ``tolerance`` (normalising first keeps the
    float non-determinism of large logits, e.g. on a GPU, from being taken for a randomised model).

    Returns:
      {"flagged", "max_difference" (of normalised rows), "correct" (per pass)}.
    """
    x = tf.convert_to_tensor(x, tf.float32)
    y = np.asarray(y)
    normalised, correct = [], []
    for _ in range(passes):
        z = np.asarray(tf.cast(losses.logits_of(model_fn(x)), tf.float32).numpy(), np.float64)
        normalised.append(z / (np.linalg.norm(z, axis=1, keepdims=True) + 1e-10))
        correct.append(int(np.sum(z.argmax(axis=1) == y)))
    difference = max((float(np.max(np.linalg.norm(a - b, axis=1), initial=0.0))
                      for i, a in enumerate(normalised) for b in normalised[i + 1:]), default=0.0)
    return {"flagged": bool(difference > tolerance or len(set(correct)) > 1), "max_difference": difference,
            "correct": correct}


def square_stronger(components, tolerance=SQUARE_TOLERANCE):
    """The reference's ``check_square_sr`` on cumulative accuracies ``[(name, accuracy), …]`` that start
    with ``("clean", …)``: flags when Square lowered the accuracy left by the white-box attacks by more
    than ``tolerance`` (a fraction), a gradient-masking signature. None when Square did not run."""
    accuracy = dict(components)
    if "square" not in accuracy or len(accuracy) <= 2:
        return None
    before = min(value for name, value in components if name != "square")
    return {"flagged": bool(accuracy["square"] < before - tolerance), "before_square": before,
            "after_square": accuracy["square"]}
