"""Attacks by name, for suites and command lines: ``make("apgd-ce", norm="linf", eps=0.1)``.

Each entry names the module, the class and the defaults that make the name mean what the literature
means by it (``pgd`` is PGD-20 with random start, CE loss; ``bim`` is PGD without random start; …).
Modules are imported on first use, so a suite only pays for the attacks it runs.
"""

import importlib

from tfrobust.errors import check_choice

ATTACKS = {
    "fgsm": ("fgsm", "FGSM", {}),
    "rfgsm": ("rfgsm", "RFGSM", {}),
    "pgd": ("pgd", "PGD", {"steps": 20}),
    "pgd-margin": ("pgd", "PGD", {"steps": 20, "loss": "margin"}),
    "bim": ("pgd", "PGD", {"steps": 20, "random_start": False}),
    "mifgsm": ("mifgsm", "MIFGSM", {}),
    "cw-linf": ("carlini_wagner", "CarliniWagnerLinf", {"steps": 30}),  # PGD-30 on the C&W loss (TRADES, MART)
    "cw-l2": ("carlini_wagner", "CarliniWagnerL2", {}),
    "deepfool": ("deepfool", "DeepFool", {}),
    "apgd-ce": ("apgd", "APGD", {"loss": "ce"}),
    "apgd-dlr": ("apgd", "APGD", {"loss": "dlr"}),
    "apgd-t": ("apgd", "APGDT", {}),
    "fab-t": ("fab", "FABT", {}),
    "square": ("square", "Square", {}),
    "spsa": ("spsa", "SPSA", {}),
    "noise": ("gaussian_noise", "GaussianNoise", {}),
    "autoattack": ("autoattack", "AutoAttack", {"version": "standard"}),
    "autoattack-fast": ("autoattack", "AutoAttack", {"version": "fast"}),
}


def names():
    return sorted(ATTACKS)


def attack_class(name):
    """The class registered as ``name`` (its module imported now)."""
    check_choice("attack", name, names())
    module, cls, _ = ATTACKS[name]
    return getattr(importlib.import_module(f"tfrobust.attacks.{module}"), cls)


def make(name, *, norm="linf", eps=0.3, seed=0, **overrides):
    """Builds the attack registered as ``name`` under the given threat model; ``overrides`` replace
    the registered defaults (e.g. ``make("pgd", eps=0.1, steps=50)``)."""
    return attack_class(name)(norm=norm, eps=eps, seed=seed, **{**ATTACKS[name][2], **overrides})
