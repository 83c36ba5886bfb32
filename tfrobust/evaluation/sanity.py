"""Gradient-masking sanity checks (Carlini et al. 2019, "On Evaluating Adversarial Robustness", §5;
Athalye et al. 2018). Each check returns a flag with a one-sentence explanation; a flagged model's
robust accuracy is an upper bound that a better attack may well lower.

The checks run on a small subset (``sanity_size`` points) and measure:
  * accuracy-vs-ε curve of PGD (monotone? reaching ~0 when ε is unbounded?),
  * accuracy-vs-iterations curve of PGD (converged?),
  * FGSM vs PGD (is iterating stronger?), white-box vs prediction-only/transfer attacks,
  * the share of zero or non-finite input gradients, and whether repeated predictions on the first batch
    differ (AutoAttack's randomness check: 5 passes, L2-normalised logits, 1e-4, so float non-determinism
    of large logits is not taken for randomness; its detail says how many points its counts are out of),
  * whether the outputs look like probabilities instead of logits, and, given a suite with AutoAttack,
    whether its Square component broke more than 0.2 pt after the white-box components.
"""

import numpy as np
import tensorflow as tf

from tfrobust.attacks import FGSM, PGD, checks
from tfrobust.attacks.eot import logits_std
from tfrobust.attacks.losses import logits_of
from tfrobust.evaluation.robustness import robust_accuracy
from tfrobust.evaluation.target import as_target

EPS_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)
STEPS = (1, 2, 5, 10, 20, 50)
#: Accuracy differences up to this are noise on a few hundred points.
TOLERANCE = 0.01


def beyond_tolerance(difference, tolerance=TOLERANCE):
    """``difference > tolerance`` for accuracy differences, exact at the boundary: on 100 points 0.23 − 0.22 is
    0.010000000000000009 in floating point, and one point must not count as more than one point."""
    return difference > tolerance + 1e-9

EXPLANATIONS = {
    "iterative_not_stronger": "An iterative attack should beat a single step; if PGD does not, its gradient "
                              "steps are not finding the loss's ascent directions (masked or shattered gradients).",
    "black_box_stronger": "An attack that uses only predictions (or another model's gradients) beat the white-box "
                          "attacks, so the model's own gradients are misleading the white-box attacks.",
    "unbounded_not_zero": "With an unbounded budget every input can be turned into any other, so accuracy must reach "
                          "about 0; if it does not, the attack is failing, not the model resisting.",
    "not_monotone": "Accuracy must not rise when the budget ε grows (a larger ball contains the smaller one); "
                    "a rise means the attack's optimisation is unreliable.",
    "not_converged": "Accuracy still dropped with more attack iterations, so the reported number has not converged; "
                     "run more steps or restarts.",
    "zero_gradients": "Many inputs have zero or non-finite input gradients, the signature of a non-differentiable "
                      "or saturated step that blinds gradient attacks (attack through "
                      "tfrobust.attacks.bpda_model / BPDA, or use gradient-free or transfer attacks).",
    "stochastic": "The model's outputs change between identical calls; attack it with EOT (averaged gradients) "
                  "and report the expected accuracy.",
    "probability_outputs": "The model returns probabilities (rows in [0, 1] summing to 1), not logits; losses on "
                           "probabilities saturate and weaken gradient attacks. Evaluate the pre-softmax logits.",
    "square_stronger": "AutoAttack's Square, which uses only predictions, broke points that APGD-CE, APGD-T and "
                       "FAB-T could not: the gradients mislead the white-box attacks (use BPDA, EOT or an adaptive "
                       "attack).",
}


def _flag(name, flagged, detail):
    return {"check": name, "flagged": bool(flagged), "detail": detail, "explanation": EXPLANATIONS[name]}


def curves(model, x, y, *, norm, eps, seed=0, steps=20, batch_size=250, eps_factors=EPS_FACTORS,
           step_counts=STEPS):
    """PGD accuracy vs ε (0, ``eps_factors`` × eps, then unbounded) and vs iterations (at eps)."""
    target = as_target(model)
    unbounded = 1.0 if norm == "linf" else float(np.sqrt(np.prod(np.shape(x)[1:])))
    clean = robust_accuracy(None, target.logits_fn, x, y, predict_fn=target.predict, batch_size=batch_size)
    by_eps = [{"eps": 0.0, "accuracy": clean["accuracy"]}]
    for value in [eps * f for f in eps_factors] + [unbounded]:
        # Larger budgets get proportionally more room: step 2.5·ε/steps as usual.
        attack = PGD(norm=norm, eps=value, steps=steps, seed=seed)
        by_eps.append({"eps": value, "accuracy": robust_accuracy(attack, target.logits_fn, x, y,
                                                                 predict_fn=target.predict,
                                                                 batch_size=batch_size)["accuracy"]})
    by_steps = []
    for count in step_counts:
        attack = PGD(norm=norm, eps=eps, steps=count, seed=seed)
        by_steps.append({"steps": count, "accuracy": robust_accuracy(attack, target.logits_fn, x, y,
                                                                     predict_fn=target.predict,
                                                                     batch_size=batch_size)["accuracy"]})
    return {"accuracy_vs_eps": by_eps, "accuracy_vs_steps": by_steps, "unbounded_eps": unbounded}


def gradient_health(model, x, y, batch_size=250):
    """Share of points whose cross-entropy input gradient is all zero, and share with non-finite values."""
    target = as_target(model)
    zero = nonfinite = 0
    for i in range(0, len(x), batch_size):
        images = tf.constant(x[i:i + batch_size], tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(images)
            logits = tf.cast(logits_of(target.logits_fn(images)), tf.float32)
            loss = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.constant(y[i:i + batch_size]), logits)
        grad = tape.gradient(loss, images, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        flat = tf.reshape(grad, [tf.shape(grad)[0], -1]).numpy()
        finite = np.all(np.isfinite(flat), axis=1)
        nonfinite += int(np.sum(~finite))
        zero += int(np.sum(finite & np.all(flat == 0, axis=1)))
    return {"zero": zero / max(len(x), 1), "nonfinite": nonfinite / max(len(x), 1)}


def sanity_checks(model, x, y, *, norm, eps, suite_result=None, seed=0, steps=20, batch_size=250):
    """Runs every check on ``(x, y)`` (keep it small: a few hundred points).

    Args:
      model: a differentiable model (keras.Model, Artifact with gradients, callable or Target).
      suite_result: optional ``run_suite`` output on the same model; its prediction-only and transfer
        rows are compared with its white-box rows for the black-box check.

    Returns:
      {"flags": [ {check, flagged, detail, explanation} ... ], "curves": {...}, "gradients": {...},
       "fgsm": acc, "pgd": acc, "logits_std": float,
       "randomness": {flagged, max_difference, correct}}
    """
    target = as_target(model)
    x = np.asarray(x, np.float32)
    y = np.asarray(y).astype(np.int64)
    fgsm = robust_accuracy(FGSM(norm=norm, eps=eps, seed=seed), target.logits_fn, x, y,
                           predict_fn=target.predict, batch_size=batch_size)["accuracy"]
    measured = curves(target, x, y, norm=norm, eps=eps, seed=seed, steps=steps, batch_size=batch_size)
    at_eps = next(p["accuracy"] for p in measured["accuracy_vs_eps"] if p["eps"] == eps)
    by_eps = [p["accuracy"] for p in measured["accuracy_vs_eps"]]
    by_steps = [p["accuracy"] for p in measured["accuracy_vs_steps"]]
    health = gradient_health(target, x, y, batch_size)
    first_x, first_y = x[:batch_size], y[:batch_size]  # the per-pass checks look at the first batch
    spread = logits_std(target.logits_fn, tf.constant(first_x))
    randomness = checks.randomness(target.logits_fn, first_x, first_y)
    probabilities = checks.looks_like_probabilities(target.logits_fn(tf.constant(first_x)))

    flags = [
        _flag("iterative_not_stronger", fgsm > 0.02 and at_eps > fgsm - TOLERANCE / 2,
              f"FGSM {100 * fgsm:.1f}% vs PGD-{steps} {100 * at_eps:.1f}%"),
        _flag("unbounded_not_zero", by_eps[-1] > 0.02,
              f"PGD at unbounded ε={measured['unbounded_eps']:.3g}: {100 * by_eps[-1]:.1f}%"),
        _flag("not_monotone", any(beyond_tolerance(b - a) for a, b in zip(by_eps, by_eps[1:])),
              "PGD accuracy vs ε: " + ", ".join(f"{p['eps']:.3g}→{100 * p['accuracy']:.1f}%"
                                                for p in measured["accuracy_vs_eps"])),
        _flag("not_converged", beyond_tolerance(by_steps[-2] - by_steps[-1]),
              "PGD accuracy vs steps: " + ", ".join(f"{p['steps']}→{100 * p['accuracy']:.1f}%"
                                                    for p in measured["accuracy_vs_steps"])),
        _flag("zero_gradients", health["zero"] + health["nonfinite"] > 0.05,
              f"zero gradients {100 * health['zero']:.1f}%, non-finite {100 * health['nonfinite']:.1f}%"),
        _flag("stochastic", randomness["flagged"],
              f"largest distance between normalised logits over {checks.RANDOMNESS_PASSES} passes "
              f"{randomness['max_difference']:.3g}; correct per pass {randomness['correct']} of the first "
              f"{len(first_x)} points"),
        _flag("probability_outputs", probabilities,
              "every output row lies in [0, 1] and sums to 1" if probabilities else "outputs are logits"),
    ]
    # Compared within one suite run (same points); without a suite, nothing to compare.
    rows = (suite_result or {}).get("rows", [])
    white = [r["accuracy"] for r in rows if r["mode"] == "white-box"]
    # Only ε-bounded rows: Gaussian noise is not held to ε and may beat PGD without any masking.
    black = [r for r in rows if r["mode"] != "white-box" and r.get("bounded", True)]
    if white and black:
        stronger = [r for r in black if beyond_tolerance(min(white) - r["accuracy"])]
        detail = (("; ".join(f"{r['attack']} {100 * r['accuracy']:.1f}%" for r in stronger) or "no black-box "
                   "attack") + f" below the best white-box {100 * min(white):.1f}%")
    else:
        stronger, detail = [], "not checked: the suite needs both white-box and black-box attacks"
    flags.insert(1, _flag("black_box_stronger", bool(stronger), detail))
    for row in rows:
        square = checks.square_stronger([("clean", (suite_result or {}).get("clean", 1.0))] + [
            (c["attack"], c["robust_accuracy"]) for c in row.get("components", [])])
        if square is not None:
            flags.append(_flag("square_stronger", square["flagged"],
                               f"{row['attack']}: {100 * square['before_square']:.2f}% before Square, "
                               f"{100 * square['after_square']:.2f}% after"))
    return {"flags": flags, "curves": measured, "gradients": health, "fgsm": fgsm, "pgd": at_eps,
            "logits_std": spread, "randomness": randomness}
