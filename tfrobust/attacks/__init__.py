"""Attacks: one per file, over one shared ThreatModel, called as ``attack(model_fn, x, y) -> x_adv``."""

from tfrobust.attacks.base import Attack
from tfrobust.attacks.fgsm import FGSM
from tfrobust.attacks.pgd import PGD
from tfrobust.attacks.threat_model import ThreatModel, per_example_norm

__all__ = ["Attack", "FGSM", "PGD", "ThreatModel", "per_example_norm"]
