"""Training: precision, schedules, optimizers and callbacks for ``keras.Model.fit``.

Adversarial training (``AdversarialModel`` with PGD-AT, TRADES, …) builds on these pieces.
"""

from tfrobust.training.recipe import (OPTIMIZERS, PRECISIONS, SCHEDULES, make_callbacks, make_optimizer,
                                     make_schedule, set_precision)

__all__ = ["OPTIMIZERS", "PRECISIONS", "SCHEDULES", "make_callbacks", "make_optimizer", "make_schedule",
           "set_precision"]
