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

The same rule reads a PSNR claim (denoisers; "how the rule reads for a PSNR claim" in
docs/results/reproductions.md) through a ``Reading``: differences in dB from ``paired.paired_psnr_difference``,
"AutoAttack" = the strongest ObsAtk run (``obsatk_strong``: more steps and restarts than the paper's, per-image
worst case), "weak" = the paper's ObsAtk setting (``obsatk_paper``), no adaptive row; ``ACCURACY`` is the default
and leaves the accuracy claims exactly as they were.
"""

import dataclasses

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
#: The PSNR claims' attacks: the paper's ObsAtk setting (the rule's "weak") and the strongest ObsAtk run
#: (the rule's "AutoAttack").
OBSATK_PAPER = "obsatk_paper"
OBSATK_STRONG = "obsatk_strong"


@dataclasses.dataclass(frozen=True)
class Reading:
    """How the rule's words map onto a claim's measurements.

    Attributes:
      weak: the attacks of the rule's "gain exists under a weak attack".
      strong: the attack in the place of the standard AutoAttack (required in every seed).
      extra_strong: further strong attacks where measured (the adaptive worst case).
      strong_name: how the reasons name ``strong``.
      unit, scale: the unit of the reasons' numbers and the factor from a difference to it (100 → "pt").
    """

    weak: tuple
    strong: str
    extra_strong: tuple
    strong_name: str
    unit: str
    scale: float


ACCURACY = Reading(weak=WEAK_ATTACKS, strong=AUTOATTACK, extra_strong=(ADAPTIVE,), strong_name="AutoAttack", unit="pt",
                   scale=100.0)
PSNR = Reading(weak=(OBSATK_PAPER,), strong=OBSATK_STRONG, extra_strong=(), strong_name="strongest ObsAtk", unit="dB",
               scale=1.0)


def needs_second_seed(autoattack_difference):
    """Whether seed 0's AutoAttack difference (a ``paired_difference`` dict) is within 3 SE of zero (|Δ| ≤ 3·SE:
    a zero difference with zero SE, e.g. both models at 0 %, also asks for a second seed)."""
    return abs(autoattack_difference["difference"]) <= SECOND_SEED_SE * autoattack_difference["se"]


def _check_seed(index, seed, reading):
    differences = seed.get("differences")
    if not isinstance(differences, dict) or reading.strong not in differences:
        raise TfrobustError(f"seed entry {index} needs differences[{reading.strong!r}] (the {reading.strong_name}'s "
                            f"paired difference), got keys {sorted(differences or {})}")


def pair_verdict(paper_difference, seeds, reading=ACCURACY):
    """The verdict of one baseline/defense pair.

    Args:
      paper_difference: the paper's defense − baseline (fraction, non-zero: its sign is the claim's direction;
        dB for a PSNR claim).
      seeds: one entry per seed, the first seed (normally 0) first: {"differences": {attack:
        ``paired_difference`` dict} with "autoattack" required and "fgsm", "pgd-20", "adaptive" where measured,
        "defense_flags": [names of the sanity checks flagged on the defense model], "seed": its number (optional,
        0 by default; used in the reasons)}. With ``reading=PSNR``: ``paired_psnr_difference`` dicts,
        "obsatk_strong" required and "obsatk_paper" where measured.
      reading: ``ACCURACY`` (default) or ``PSNR``.

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
        _check_seed(index, seed, reading)
    r = reading
    strong0 = seeds[0]["differences"][r.strong]
    second = needs_second_seed(strong0)
    if second and len(seeds) < 2:
        provisional = _decide(paper_difference, seeds[:1], r)
        return {"verdict": PARTIAL, "reasons": [
            f"seed {seeds[0].get('seed', 0)}'s {r.strong_name} difference "
            f"{r.scale * strong0['difference']:+.2f} {r.unit} is "
            f"within {SECOND_SEED_SE:g} SE ({r.scale * strong0['se']:.2f} {r.unit}) of zero: a "
            "second seed is required"], "needs_second_seed": True, "seeds": 1, "pooled": provisional["pooled"],
            "provisional": provisional["verdict"]}
    decided = _decide(paper_difference, seeds, r)  # extra seeds, even when not required, are pooled too
    return {**decided, "needs_second_seed": second, "seeds": len(seeds), "provisional": None}


def _decide(paper_difference, seeds, r):
    sign = 1.0 if paper_difference > 0 else -1.0
    attacks = [a for a in (*r.weak, r.strong, *r.extra_strong) if all(a in s["differences"] for s in seeds)]
    pooled = {a: pooled_difference([s["differences"][a] for s in seeds]) for a in attacks}
    reasons = []
    flags = sorted({flag for s in seeds for flag in s.get("defense_flags", [])})
    if flags:
        reasons.append(f"sanity flag(s) on the defense: {', '.join(flags)}")
        return {"verdict": MASKED, "reasons": reasons, "pooled": pooled}
    gains = {a: sign * pooled[a]["difference"] for a in r.weak if a in pooled
             and sign * pooled[a]["difference"] > SIGNIFICANT_SE * pooled[a]["se"]}
    strong = {a: sign * pooled[a]["difference"] for a in (r.strong, *r.extra_strong) if a in pooled}
    aa = pooled[r.strong]
    if gains:
        weak_attack = max(gains, key=gains.get)
        strong_attack = min(strong, key=strong.get)
        if strong[strong_attack] < 0.5 * gains[weak_attack]:
            reasons.append(f"the gain under {weak_attack} ({r.scale * gains[weak_attack]:+.2f} {r.unit} in the paper's "
                           f"direction) shrinks to {r.scale * strong[strong_attack]:+.2f} {r.unit} under "
                           f"{strong_attack}: more than half of it is lost")
            return {"verdict": MASKED, "reasons": reasons, "pooled": pooled}
    size_ok = sign * aa["difference"] >= 0.5 * abs(paper_difference)
    significant = sign * aa["difference"] > SIGNIFICANT_SE * aa["se"]
    if significant:
        spread = f"beyond {SIGNIFICANT_SE:g} SE"
    elif -sign * aa["difference"] > SIGNIFICANT_SE * aa["se"]:
        spread = f"beyond {SIGNIFICANT_SE:g} SE the other way"
    else:
        spread = f"not beyond {SIGNIFICANT_SE:g} SE in its direction"
    reasons.append(f"{r.strong_name} difference {r.scale * aa['difference']:+.2f} ± {r.scale * aa['se']:.2f} {r.unit} "
                   f"(SE) vs the paper's {r.scale * paper_difference:+.2f} {r.unit}: "
                   f"{'at least' if size_ok else 'below'} half the paper's size in its direction, {spread}")
    return {"verdict": REPRODUCED if size_ok and significant else NOT_REPRODUCED, "reasons": reasons, "pooled": pooled}
