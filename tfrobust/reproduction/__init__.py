"""Reproductions of the seed papers' claims: the claim registry (``claims``), paired statistics on per-point
masks (``paired``), the verdict rule of docs/results/reproductions.md (``verdict``), the evaluation of one
trained model (``model_evaluation``), run folders (``runs``) and the result files (``results``). PSNR claims
(denoisers) use per-image PSNR (``paired.paired_psnr_difference``), the rule's PSNR reading (``verdict.PSNR``)
and ``denoiser_evaluation`` (Gaussian noise, the paper's ObsAtk, the strongest ObsAtk).

Layer: above ``training`` and ``evaluation`` (it names training recipes and runs evaluations), below
``scripts``; ``trainers/reproduce.py`` is its program.
"""

from tfrobust.reproduction import claims
from tfrobust.reproduction.paired import mcnemar, paired_difference, paired_psnr_difference, pooled_difference
from tfrobust.reproduction.verdict import MASKED, NOT_REPRODUCED, PARTIAL, REPRODUCED, VERDICTS, pair_verdict

__all__ = ["MASKED", "NOT_REPRODUCED", "PARTIAL", "REPRODUCED", "VERDICTS", "claims", "mcnemar", "pair_verdict",
           "paired_difference", "paired_psnr_difference", "pooled_difference"]
