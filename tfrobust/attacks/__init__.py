"""Attacks: one per file, over one shared ThreatModel, called as ``attack(model_fn, x, y) -> x_adv``.

Every attack is an ``Attack`` with a ``kind``: "white-box" (``CompiledAttack``, a TensorFlow core),
"query-based" (``ScoreBasedAttack``, ``GaussianNoise``) or "transfer" (``Transfer``). Training methods
craft with the same projected-ascent core as ``PGD`` (``projected_ascent``).

``registry.make(name, ...)`` builds any of them by name; ``autoattack.AutoAttack`` composes APGD-CE,
APGD-T, FAB-T and Square. Modules with heavier dependencies are imported on first use by the registry.
"""

from tfrobust.attacks.apgd import APGD, APGDT
from tfrobust.attacks.autoattack import AutoAttack
from tfrobust.attacks.base import KINDS, Attack
from tfrobust.attacks.bpda import BPDA, bpda_model
from tfrobust.attacks.carlini_wagner import CarliniWagnerL2, CarliniWagnerLinf, MinimumNormAttack
from tfrobust.attacks.compiled_attack import CompiledAttack
from tfrobust.attacks.deepfool import DeepFool
from tfrobust.attacks.eot import EOT
from tfrobust.attacks.fab import FABT
from tfrobust.attacks.fgsm import FGSM
from tfrobust.attacks.gaussian_noise import GaussianNoise
from tfrobust.attacks.losses import AuxiliaryLoss, CWMarginLoss
from tfrobust.attacks.mifgsm import MIFGSM
from tfrobust.attacks.obsatk import ObsAtk, ZeroMeanNoise
from tfrobust.attacks.obsatk_spsa import ObsAtkSPSA
from tfrobust.attacks.pgd import PGD
from tfrobust.attacks.rfgsm import RFGSM
from tfrobust.attacks.score_based import ScoreBasedAttack
from tfrobust.attacks.spsa import SPSA
from tfrobust.attacks.square import Square
from tfrobust.attacks.threat_model import ThreatModel, per_example_norm
from tfrobust.attacks.transfer import Transfer

__all__ = ["APGD", "APGDT", "KINDS", "Attack", "AutoAttack", "AuxiliaryLoss", "BPDA", "CWMarginLoss", "CarliniWagnerL2",
           "CompiledAttack",
           "CarliniWagnerLinf", "DeepFool", "EOT", "FABT", "FGSM", "GaussianNoise", "MIFGSM", "MinimumNormAttack",
           "ObsAtk", "ObsAtkSPSA", "PGD", "RFGSM", "SPSA", "ScoreBasedAttack", "Square", "ThreatModel", "Transfer",
           "ZeroMeanNoise", "bpda_model", "per_example_norm"]
