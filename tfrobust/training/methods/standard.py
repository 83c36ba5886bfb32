"""Standard training: the cross-entropy on clean inputs, as a method (the reference point of the others)."""

from tfrobust.attacks import losses
from tfrobust.training.methods.base import LossRecord, Method, cross_entropy


class Standard(Method):
    """Empirical risk minimisation: L(θ) = E[CE(f_θ(x), y)].

    Reports ``ce``; no crafted inputs (``clean_accuracy`` is the accuracy on the training batch in
    training mode). ``trainers/train.py --method=standard`` keeps plain ``keras.Model.fit``; this
    class exists so standard training composes with ``AdversarialModel`` (auxiliary-loss hook, AWP).
    """

    name = "standard"
    components = ("ce",)
    crafted = None

    def __init__(self):
        pass

    def loss(self, adv, x, y, x_crafted, training):
        del x_crafted
        logits = losses.logits_of(adv.forward(x, y, training=training))
        ce = cross_entropy(logits, y)
        return LossRecord(ce, {"ce": ce}, clean_logits=logits)
