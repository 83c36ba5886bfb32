"""Paired comparison of two models on the same test points, from their per-point correct masks (classifiers)
or their per-image PSNR (denoisers, ``paired_psnr_difference``).

Two models evaluated on the same N points are compared point by point: ``d_i = defense_i − baseline_i`` ∈
{−1, 0, 1}. The mean of ``d`` is the accuracy difference; its standard error is the sample standard deviation
of ``d`` over √N (the *paired* standard error, far smaller than the unpaired one when both models get the same
points right). McNemar's test looks only at the discordant points: under "no difference" each of the
``b + c`` discordant points is equally likely to favour either model, so ``b`` ~ Binomial(b + c, ½).
"""

import math

import numpy as np

from tfrobust.errors import TfrobustError


def _masks(baseline, defense):
    baseline = np.asarray(baseline)
    defense = np.asarray(defense)
    if baseline.ndim != 1 or defense.shape != baseline.shape:
        raise TfrobustError(f"paired masks must be two 1-D arrays of the same length (the same points), got shapes "
                            f"{baseline.shape} and {defense.shape}")
    if not len(baseline):
        raise TfrobustError("paired masks are empty: no points to compare")
    for name, mask in (("baseline", baseline), ("defense", defense)):
        if mask.dtype != bool and not np.isin(mask, (0, 1)).all():
            raise TfrobustError(f"the {name} mask must hold booleans (or 0/1), got values {np.unique(mask)[:5]}")
    return baseline.astype(bool), defense.astype(bool)


def binomial_two_sided_p(k, n):
    """Exact two-sided p-value of ``k`` successes in ``n`` fair trials (``scipy.stats.binomtest``; for p = ½ the
    distribution is symmetric, so this is twice the smaller tail, at most 1). ``n = 0`` gives 1."""
    from scipy import stats

    return 1.0 if n == 0 else float(stats.binomtest(int(k), int(n), 0.5).pvalue)


def mcnemar(baseline, defense):
    """McNemar's test of two models on the same points.

    Args:
      baseline, defense: per-point correct masks (bool or 0/1, same length).

    Returns:
      dict: ``n``; ``defense_only`` (b: the defense right, the baseline wrong), ``baseline_only`` (c);
      ``both`` and ``neither``; ``p_exact`` (two-sided binomial on the b + c discordant points);
      ``z`` = (b − c)/√(b + c) (0 without discordant points) and ``p_normal`` = erfc(|z|/√2), the normal
      approximation without continuity correction.
    """
    baseline, defense = _masks(baseline, defense)
    b = int(np.sum(defense & ~baseline))
    c = int(np.sum(baseline & ~defense))
    z = (b - c) / math.sqrt(b + c) if b + c else 0.0
    return {"n": int(len(baseline)), "defense_only": b, "baseline_only": c,
            "both": int(np.sum(baseline & defense)), "neither": int(np.sum(~baseline & ~defense)),
            "p_exact": binomial_two_sided_p(b, b + c), "z": z, "p_normal": math.erfc(abs(z) / math.sqrt(2.0))}


def paired_difference(baseline, defense):
    """Accuracy difference defense − baseline on the same points and its paired standard error.

    Returns:
      dict: ``baseline`` and ``defense`` accuracies, ``difference`` (their difference, fractions in [−1, 1]),
      ``se`` (sample standard deviation of the per-point differences, ddof = 1, over √N; 0 for N = 1) and the
      ``mcnemar`` dict.
    """
    baseline, defense = _masks(baseline, defense)
    d = defense.astype(np.float64) - baseline.astype(np.float64)
    n = len(d)
    se = float(np.std(d, ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    return {"baseline": float(np.mean(baseline)), "defense": float(np.mean(defense)),
            "difference": float(np.mean(d)), "se": se, "mcnemar": mcnemar(baseline, defense)}


def paired_psnr_difference(baseline, defense):
    """PSNR difference defense − baseline (dB) of two denoisers on the same noisy images, and its paired SE.

    ``d_i = PSNR_i(defense) − PSNR_i(baseline)`` on image i (the same clean image and the same noise draw for
    both models); the difference is mean(d) and its standard error sd(d, ddof = 1)/√N — the paired SE, which
    drops the image-to-image spread of PSNR both models share. This is the accuracy path's statistic with
    {−1, 0, 1} replaced by decibels; there is no McNemar test (nothing is discordant).

    Args:
      baseline, defense: per-image PSNR in dB, two 1-D arrays of the same length, finite (an infinite PSNR,
        a perfect reconstruction, has no meaningful difference: refused).

    Returns:
      dict: ``baseline`` and ``defense`` mean PSNR (dB), ``difference`` (dB), ``se`` (dB; 0 for N = 1), ``n``.
    """
    baseline = np.asarray(baseline, np.float64)
    defense = np.asarray(defense, np.float64)
    if baseline.ndim != 1 or defense.shape != baseline.shape:
        raise TfrobustError(f"paired PSNR arrays must be two 1-D arrays of the same length (the same images), got "
                            f"shapes {baseline.shape} and {defense.shape}")
    if not len(baseline):
        raise TfrobustError("paired PSNR arrays are empty: no images to compare")
    for name, values in (("baseline", baseline), ("defense", defense)):
        if not np.all(np.isfinite(values)):
            raise TfrobustError(f"the {name} PSNR values must be finite dB, got {values[~np.isfinite(values)][:3]}")
    d = defense - baseline
    n = len(d)
    se = float(np.std(d, ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    return {"baseline": float(np.mean(baseline)), "defense": float(np.mean(defense)),
            "difference": float(np.mean(d)), "se": se, "n": int(n)}


def pooled_difference(differences):
    """The seeds pooled: ``differences`` is a list of ``paired_difference`` dicts (one per seed); returns
    {"difference": mean over seeds, "se": max(√(Σ se_i²)/k, sd(Δ_i, ddof = 1)/√k), "seeds": k} — the larger
    of the point noise and the seed-to-seed spread (the latter only with k ≥ 2)."""
    if not differences:
        raise TfrobustError("pooled_difference needs at least one seed's difference")
    values = np.array([d["difference"] for d in differences], np.float64)
    k = len(values)
    point = math.sqrt(sum(d["se"] ** 2 for d in differences)) / k
    spread = float(np.std(values, ddof=1) / math.sqrt(k)) if k > 1 else 0.0
    return {"difference": float(np.mean(values)), "se": max(point, spread), "seeds": k,
            "point_se": point, "seed_se": spread}
