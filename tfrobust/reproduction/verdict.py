"""The verdict rule of docs/results/reproductions.md, as a function of paired differences.

Written before any run; this module implements exactly that text (keep the two in step):

1. **masked** — a sanity flag fires on the defense, or the gain exists under a weak attack (FGSM or PGD-20:
   s·Δ > 2·SE) but under AutoAttack or the adaptive worst case it is less than half the larger existing weak
   gain (s·Δ_strong < ½·s·Δ_weak, Δ_strong = the smaller of s·Δ_AA and s·Δ_adaptive);
2. **reproduced** — s·Δ_AA ≥ ½·|Δ_paper| and s·Δ_AA > 2·SE(Δ_AA);
3. **not reproduced** — otherwise.

s is the sign of the paper's difference Δ_paper (defense − baseline). Where seed 0's AutoAttack difference lies
within 3 standard errors of zero a second seed is required; the seeds are then pooled (``paired.pooled_difference``)
and a pair is masked if any seed's defense raised a sanity flag. A pair missing a required seed is "partial".
All differences are fractions (0.05 = 5 percentage points).
"""

from tfrobust.errors import TfrobustError
from tfrobust.reproduction.paired import pooled_difference

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
MASKED = "masked"
PARTIAL = "partial"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, MASKED, PARTIAL)

#: The attacks the rule reads: the weak ones, AutoAttack, and the adaptive worst case (optional).
WEAK_ATTACKS = ("fgsm", "pgd-20")
AUTOATTACK = "autoattack"
ADAPTIVE = "adaptive"
#: Multiples of the standard error in the rule.
SIGNIFICANT_SE = 2.0
SECOND_SEED_SE = 3.0


def needs_second_seed(autoattack_difference):
    """Whether seed 0's AutoAttack difference (a ``paired_difference`` dict) is within 3 SE of zero (|Δ| ≤ 3·SE:
    a zero difference with zero SE, e.g. both models at 0 %, also asks for a second seed)."""
    return abs(autoattack_difference["difference"]) <= SECOND_SEED_SE * autoattack_difference["se"]


def _check_seed(index, seed):
    differences = seed.get("differences")
    if not isinstance(differences, dict) or AUTOATTACK not in differences:
        raise TfrobustError(f"seed entry {index} needs differences[{AUTOATTACK!r}] (the standard AutoAttack's paired "
                            f"difference), got keys {sorted(differences or {})}")


def pair_verdict(paper_difference, seeds):
    """The verdict of one baseline/defense pair.

    Args:
      paper_difference: the paper's defense − baseline (fraction, non-zero: its sign is the claim's direction).
      seeds: one entry per seed, seed 0 first: {"differences": {attack: ``paired_difference`` dict} with
        "autoattack" required and "fgsm", "pgd-20", "adaptive" where measured, "defense_flags": [names of the
        sanity checks flagged on the defense model]}.

    Returns:
      dict: ``verdict`` (one of ``VERDICTS``), ``reasons`` (sentences), ``needs_second_seed``, ``seeds`` (how
      many were used), ``pooled`` ({attack: pooled_difference}) and ``provisional`` (the verdict seed 0 alone
      would give, when a second seed is missing).
    """
    if not paper_difference:
        raise TfrobustError("the paper's difference must be non-zero: its sign is the direction being tested")
    if not seeds:
        return {"verdict": PARTIAL, "reasons": ["no seed evaluated yet"], "needs_second_seed": None, "seeds": 0,
                "pooled": {}, "provisional": None}
    for index, seed in enumerate(seeds):
        _check_seed(index, seed)
    second = needs_second_seed(seeds[0]["differences"][AUTOATTACK])
    if second and len(seeds) < 2:
        provisional = _decide(paper_difference, seeds[:1])
        return {"verdict": PARTIAL, "reasons": [
            f"seed 0's AutoAttack difference {100 * seeds[0]['differences'][AUTOATTACK]['difference']:+.2f} pt is "
            f"within {SECOND_SEED_SE:g} SE ({100 * seeds[0]['differences'][AUTOATTACK]['se']:.2f} pt) of zero: a "
            "second seed is required"], "needs_second_seed": True, "seeds": 1, "pooled": provisional["pooled"],
            "provisional": provisional["verdict"]}
    decided = _decide(paper_difference, seeds)  # extra seeds, even when not required, are pooled too
    return {**decided, "needs_second_seed": second, "seeds": len(seeds), "provisional": None}


def _decide(paper_difference, seeds):
    sign = 1.0 if paper_difference > 0 else -1.0
    attacks = [a for a in (*WEAK_ATTACKS, AUTOATTACK, ADAPTIVE) if all(a in s["differences"] for s in seeds)]
    pooled = {a: pooled_difference([s["differences"][a] for s in seeds]) for a in attacks}
    reasons = []
    flags = sorted({flag for s in seeds for flag in s.get("defense_flags", [])})
    if flags:
        reasons.append(f"sanity flag(s) on the defense: {', '.join(flags)}")
        return {"verdict": MASKED, "reasons": reasons, "pooled": pooled}
    gains = {a: sign * pooled[a]["difference"] for a in WEAK_ATTACKS if a in pooled
             and sign * pooled[a]["difference"] > SIGNIFICANT_SE * pooled[a]["se"]}
    strong = {a: sign * pooled[a]["difference"] for a in (AUTOATTACK, ADAPTIVE) if a in pooled}
    aa = pooled[AUTOATTACK]
    if gains:
        weak_attack = max(gains, key=gains.get)
        strong_attack = min(strong, key=strong.get)
        if strong[strong_attack] < 0.5 * gains[weak_attack]:
            reasons.append(f"the gain under {weak_attack} ({100 * gains[weak_attack]:+.2f} pt in the paper's "
                           f"direction) shrinks to {100 * strong[strong_attack]:+.2f} pt under {strong_attack}: "
                           "more than half of it is lost")
            return {"verdict": MASKED, "reasons": reasons, "pooled": pooled}
    size_ok = sign * aa["difference"] >= 0.5 * abs(paper_difference)
    significant = sign * aa["difference"] > SIGNIFICANT_SE * aa["se"]
    reasons.append(f"AutoAttack difference {100 * aa['difference']:+.2f} ± {100 * aa['se']:.2f} pt (SE) vs the paper's "
                   f"{100 * paper_difference:+.2f} pt: "
                   f"{'at least' if size_ok else 'below'} half the paper's size in its direction, "
                   f"{'beyond' if significant else 'within'} {SIGNIFICANT_SE:g} SE")
    return {"verdict": REPRODUCED if size_ok and significant else NOT_REPRODUCED, "reasons": reasons, "pooled": pooled}
