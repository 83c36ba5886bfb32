"""Transfer attack: craft on a differentiable surrogate, evaluate on the target.

The target is only evaluated, never differentiated, so this runs against TFLite models, served
endpoints and any model whose gradients are masked. A transfer attack stronger than the white-box one
on the same model is a gradient-masking signature (see ``tfrobust.evaluation.sanity``).
"""

from tfrobust.attacks.base import TRANSFER, Attack


class Transfer(Attack):
    """``Transfer(attack, surrogate_fn)(target_fn, x, y)`` returns ``attack(surrogate_fn, x, y)``.

    An ``Attack`` of kind "transfer": it needs no gradients of the target, and an evaluation reports it
    as "transfer from <surrogate_name>".

    Args:
      attack: any configured attack (it crafts on the surrogate with its own threat model, which is
        also this attack's ``threat``).
      surrogate_fn: a differentiable ``images → logits`` callable (e.g. the same model's SavedModel
        ``Artifact.logits_fn``, or an independently trained model for a black-box setting).
      surrogate_name: what reports call the surrogate.

    The target passed at call time is ignored by crafting; it is accepted so a Transfer attack slots in
    wherever an attack is called. ``last_counts`` reports target queries (none) and, separately, the
    surrogate's forward and backward passes.
    """

    kind = TRANSFER

    def __init__(self, attack, surrogate_fn, surrogate_name="surrogate"):
        super().__init__(**attack.threat.get_config(), seed=getattr(attack, "seed", 0))
        self.attack = attack
        self.surrogate_fn = surrogate_fn
        self.surrogate_name = surrogate_name
        self.respects_threat_model = getattr(attack, "respects_threat_model", True)
        self.batches_itself = getattr(attack, "batches_itself", False)  # AutoAttack re-chunks survivors

    @property
    def reports_progress(self):
        return getattr(self.attack, "reports_progress", False)

    @property
    def keeps_journal(self):
        return getattr(self.attack, "keeps_journal", False)

    def set_stream(self, position):
        """The wrapped attack's stream (``Attack.set_stream``)."""
        self.attack.set_stream(position)

    def __call__(self, model_fn, x, y, **options):
        del model_fn  # crafted on the surrogate; the caller evaluates the target
        # ``options``: what the wrapped attack takes (AutoAttack's progress and journal).
        x_adv = self.attack(self.surrogate_fn, x, y, **options)
        self.last_counts = {"forward": 0, "backward": 0,
                            "surrogate_forward": self.attack.last_counts["forward"],
                            "surrogate_backward": self.attack.last_counts["backward"]}
        return x_adv

    @property
    def last_report(self):
        """The wrapped attack's per-component report (AutoAttack), if it has one."""
        return getattr(self.attack, "last_report", None)

    def get_config(self):
        return {"name": "Transfer", "surrogate": self.surrogate_name, "attack": self.attack.get_config()}
