"""Reproductions of the seed papers' claims: the claim registry (``claims``), paired statistics on per-point
masks (``paired``), the verdict rule of docs/results/reproductions.md (``verdict``), the evaluation of one
trained model (``model_evaluation``), run folders (``runs``) and the result files (``results``).

Layer: above ``training`` and ``evaluation`` (it names training recipes and runs evaluations), below
``scripts``; ``trainers/reproduce.py`` is its program.
"""

from tfrobust.reproduction import claims
from tfrobust.reproduction.paired import mcnemar, paired_difference, pooled_difference
from tfrobust.reproduction.verdict import MASKED, NOT_REPRODUCED, PARTIAL, REPRODUCED, VERDICTS, pair_verdict

__all__ = ["MASKED", "NOT_REPRODUCED", "PARTIAL", "REPRODUCED", "VERDICTS", "claims", "mcnemar", "pair_verdict",
           "paired_difference", "pooled_difference"]
