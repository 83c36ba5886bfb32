"""AutoAttack's automatic checks (``AUTOATTACK-SPEC.md`` §6), as plain functions on logits.

Each returns a small dict (``flagged`` plus the measured quantity) so that ``AutoAttack`` can warn, the
sanity checks can flag and the reports can print the same numbers. None of them changes an evaluation.
"""

import numpy as np
import tensorflow as tf

from tfrobust.attacks import losses
from tfrobust.errors import TfrobustError

#: ``check_range_output``'s tolerance: rows in [−α, 1 + α] summing to 1 ± α look like probabilities.
PROBABILITY_TOLERANCE = 1e-5
#: ``check_randomized``: passes and the largest allowed distance between L2-normalised logit rows.
RANDOMNESS_PASSES = 5
RANDOMNESS_TOLERANCE = 1e-4
#: ``check_square_sr``: Square may remove at most this fraction of points after the white-box attacks.
SQUARE_TOLERANCE = 0.002
#: Relative slack on ε for returned points (AUTOATTACK-SPEC §7.7).
EPS_TOLERANCE = 1e-6


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


def verify_points(attack, x_adv, x):
    """(valid bool [n], reasons [n] str) for points ``x_adv`` returned by ``attack`` for ``x``.

    Valid means finite, inside the attack's [clip_min, clip_max] and, if the attack declares
    ``respects_threat_model``, ‖x_adv − x‖ ≤ ε·(1 + 1e-6) + r in its norm, where r is the float32
    rounding of one step of the image range (ulp(max |clip|), times √d for L2): x + δ − x in float32 is δ
    only up to that rounding, which for ε = 8/255 is larger than ε·1e-6. An attack without a
    ``threat`` is checked for finiteness only.
    """
    x_adv = np.asarray(x_adv)
    x = np.asarray(x, np.float32)
    if x_adv.shape != x.shape:
        raise TfrobustError(f"attack returned shape {x_adv.shape} for inputs of shape {x.shape}")
    n = len(x)
    flat = x_adv.reshape(n, -1).astype(np.float64)
    reasons = np.full(n, "", dtype=object)
    finite = np.all(np.isfinite(flat), axis=1)
    reasons[~finite] = "non-finite values"
    threat = getattr(attack, "threat", None)
    if threat is None or not n:
        return finite, reasons
    ulp = float(np.spacing(np.float32(max(abs(threat.clip_min), abs(threat.clip_max)))))
    low = np.min(np.where(np.isfinite(flat), flat, 0.0), axis=1, initial=np.inf)
    high = np.max(np.where(np.isfinite(flat), flat, 0.0), axis=1, initial=-np.inf)
    in_range = (low >= threat.clip_min - ulp) & (high <= threat.clip_max + ulp)
    reasons[finite & ~in_range] = f"outside [{threat.clip_min:g}, {threat.clip_max:g}]"
    valid = finite & in_range
    if getattr(attack, "respects_threat_model", True):
        delta = np.where(np.isfinite(flat), flat, 0.0) - x.reshape(n, -1).astype(np.float64)
        if threat.norm == "linf":
            size, slack = np.max(np.abs(delta), axis=1, initial=0.0), ulp
        else:
            size, slack = np.sqrt(np.sum(delta * delta, axis=1)), ulp * np.sqrt(delta.shape[1])
        in_ball = size <= threat.eps * (1 + EPS_TOLERANCE) + slack
        for i in np.flatnonzero(valid & ~in_ball):
            reasons[i] = f"‖x_adv − x‖_{threat.norm[1:]} = {size[i]:.9g} > ε = {threat.eps:.9g}"
        valid &= in_ball
    return valid, reasons
