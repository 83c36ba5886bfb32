"""Training methods: small objects turning ``(model, x, y)`` into a loss, used by ``AdversarialModel``.

``make_method(name, **params)`` builds one by name and validates its parameters at construction
(one-line ``TfrobustError``); ``names()`` lists them; ``options(name)`` gives their defaults.

| name     | method (paper)                                    | components              | main defaults          |
|----------|---------------------------------------------------|-------------------------|------------------------|
| standard | cross-entropy on clean inputs                     | ce                      | —                      |
| gaussian | Gaussian-noise augmentation (TisODE thesis)       | ce                      | σ ∈ {50,75,100}/255, p=½ |
| fgsm_rs  | "fast" FGSM, random start (Wong et al. 2020)      | ce                      | α = 1.25ε              |
| pgd_at   | PGD adversarial training (Madry et al. 2018)      | ce                      | k=10, α = 2.5ε/k       |
| free     | free adversarial training (Shafahi et al. 2019)   | ce                      | m=4 replays, α = ε     |
| trades   | TRADES (Zhang et al. 2019)                        | ce, kl                  | β=6, k=10, α = ε/4     |
| mart     | MART (Wang et al. 2020)                           | bce, kl                 | β=6, k=10, α = ε/4     |
| alp      | adversarial logit pairing (Kannan et al. 2018)    | ce_clean, ce_adv, pairing | λ=0.5, PGD as pgd_at |
| fat      | friendly adversarial training (Zhang et al. 2020) | ce                      | τ=0, k=10, α=ε/4, ω=1e-3 |
| awp      | adversarial weight perturbation (Wu et al. 2020)  | the base method's       | γ=1e-2 (trades 5e-3)   |
| at_id    | PGD-AT + implicit denoising (Liu & JaJa 2019)     | ce, denoise             | λ=0.01, "features"     |

``HAT`` (hybrid adversarial training of denoisers, Yan thesis eq. 2.3; α=1, one-step ObsAtk-5/255) lives here too but
trains only through ``tfrobust.training.DenoisingModel``, so it is not in the classifier registry.

Every adversarial method needs ``eps`` and takes ``norm``, ``steps``/``step_size`` (where they apply),
``random_start`` and, where it crafts with labels, ``label_mode`` ("true" | "predicted").

New methods: subclass ``Method`` (or ``AdversarialMethod``) and ``register(name, cls)``.
"""

from tfrobust.core.registry import Registry, check_options, keyword_options
from tfrobust.errors import TfrobustError, check_choice
from tfrobust.training.methods.alp import ALP
from tfrobust.training.methods.awp import AWP
from tfrobust.training.methods.base import AdversarialMethod, LossRecord, Method
from tfrobust.training.methods.fat import FAT
from tfrobust.training.methods.free import FreeAT
from tfrobust.training.methods.hat import HAT
from tfrobust.training.methods.implicit_denoising import ATID
from tfrobust.training.methods.mart import MART
from tfrobust.training.methods.noise import GaussianNoise
from tfrobust.training.methods.pgd_at import FGSMRS, PGDAT
from tfrobust.training.methods.standard import Standard
from tfrobust.training.methods.trades import TRADES

_METHODS = Registry("method")


def register(name, cls, *, overwrite=False):
    """Registers method class ``cls`` (constructed with keyword arguments) under ``name``."""
    return _METHODS.register(name, cls, overwrite=overwrite)


def names():
    """The registered method names, in registration order (standard first)."""
    return list(_METHODS)


def options(name):
    """``{parameter: default}`` of method ``name`` (``eps`` defaults to None: required)."""
    check_choice("method", name, names())
    return keyword_options(_METHODS[name].__init__, keyword_only=True)


def make_method(name, **params):
    """Builds training method ``name`` with ``params``; unknown names or parameters and out-of-range
    values raise a one-line ``TfrobustError``.

    Example:
      >>> make_method("trades", eps=0.1, beta=6.0)
      TRADES(eps=0.1, beta=6.0, steps=10, step_size=0.025, ...)
    """
    if isinstance(name, Method):
        if params:
            raise TfrobustError("pass parameters to the method's constructor, not with a method object")
        return name
    check_choice("method", name, names())
    cls = _METHODS[name]
    check_options("method", name, cls.__init__, params, keyword_only=True, noun="parameter")
    return cls(**params)


# HAT trains denoisers, not classifiers: it is not in this registry (DenoisingModel builds it by name).
for _cls in (Standard, GaussianNoise, FGSMRS, PGDAT, FreeAT, TRADES, MART, ALP, FAT, AWP, ATID):
    register(_cls.name, _cls)

__all__ = ["ALP", "ATID", "AWP", "AdversarialMethod", "FAT", "FGSMRS", "FreeAT", "GaussianNoise", "HAT", "LossRecord",
           "MART", "Method", "PGDAT", "Standard", "TRADES", "make_method", "names", "options", "register"]
