"""AutoAttack (Croce & Hein, ICML 2020), standard version, and a documented fast variant for CPUs.

The standard version runs APGD-CE → APGD-T → FAB-T → Square on the points each earlier attack left
standing and keeps, per point, the first adversarial example found (so the result is the per-point worst
case over the four attacks). Budgets follow the reference's ``version='standard'``
(``../shared/AUTOATTACK-SPEC.md`` §2.2):

| attack  | standard                                        | fast (CPU smoke runs)                     |
|---------|-------------------------------------------------|-------------------------------------------|
| APGD-CE | 100 iterations, 1 restart, ρ = 0.75             | 25 iterations                             |
| APGD-T  | 100 iterations, 9 target classes, 1 restart     | 25 iterations, 3 target classes           |
| FAB-T   | 100 iterations, 9 target classes, 1 restart     | skipped                                   |
| Square  | 5,000 queries, p_init = 0.8, margin loss        | 1,000 queries                             |

Departures from the reference: the attacks are TF-native re-implementations (see each attack's
docstring); the number of target classes is capped at ``num_classes − 1`` for datasets with fewer than
ten classes (the reference would fail); points are attacked in the caller's batches; the reference's
automatic checks (randomness, output range, dynamic behaviour) are reported by
``tfrobust.evaluation.sanity`` instead of as warnings here. The "fast" version is *not* AutoAttack and
must not be reported as such; it exists so CPU smoke runs finish in minutes.
"""

import time

import numpy as np
import tensorflow as tf

from tfrobust.attacks import losses
from tfrobust.attacks.apgd import APGD, APGDT
from tfrobust.attacks.base import Attack
from tfrobust.attacks.fab import FABT
from tfrobust.attacks.square import Square
from tfrobust.errors import TfrobustError, check_choice

VERSIONS = {
    "standard": [("apgd-ce", APGD, {"loss": "ce", "steps": 100, "restarts": 1}),
                 ("apgd-t", APGDT, {"steps": 100, "num_target_classes": 9, "restarts": 1}),
                 ("fab-t", FABT, {"steps": 100, "num_target_classes": 9, "restarts": 1}),
                 ("square", Square, {"queries": 5000})],
    "fast": [("apgd-ce", APGD, {"loss": "ce", "steps": 25, "restarts": 1}),
             ("apgd-t", APGDT, {"steps": 25, "num_target_classes": 3, "restarts": 1}),
             ("square", Square, {"queries": 1000})],
}


class AutoAttack(Attack):
    """``AutoAttack(norm="linf", eps=8/255, version="standard")(model_fn, x, y) -> x_adv``.

    A white-box ``Attack`` (its APGD and FAB members need the model's gradients; Square only queries it).

    Args:
      norm, eps, clip_min, clip_max, seed: the threat model (untargeted only, as in the reference).
      version: "standard" or "fast" (see the module docstring).

    After a call, ``last_report`` lists per component attack the robust accuracy of the batch after it
    ran (cumulative, as the reference prints it), its wall time and its forward/backward counts;
    ``last_counts`` sums the counts.
    """

    def __init__(self, *, norm="linf", eps=8 / 255, clip_min=0.0, clip_max=1.0, targeted=False, seed=0,
                 version="standard"):
        check_choice("version", version, VERSIONS)
        if targeted:
            raise TfrobustError("AutoAttack is untargeted (its APGD-T and FAB-T pick their own targets)")
        super().__init__(norm=norm, eps=eps, clip_min=clip_min, clip_max=clip_max, seed=seed)
        self.version = version
        self.attacks = [(name, cls(norm=norm, eps=eps, clip_min=clip_min, clip_max=clip_max, seed=seed, **kwargs))
                        for name, cls, kwargs in VERSIONS[version]]
        self.last_report = []

    def __call__(self, model_fn, x, y):
        x, y = self.validate(model_fn, x, y)
        x_adv = x.numpy().copy()
        labels = y.numpy()
        robust = self._predict(model_fn, x_adv) == labels
        self.last_report, self.last_counts = [], {"forward": len(labels), "backward": 0}
        for name, attack in self.attacks:
            index = np.flatnonzero(robust)
            start = time.perf_counter()
            if len(index):
                candidate = np.asarray(attack(model_fn, x_adv[index], labels[index]))
                broken = self._predict(model_fn, candidate) != labels[index]
                x_adv[index[broken]] = candidate[broken]
                robust[index[broken]] = False
                for key in ("forward", "backward"):
                    self.last_counts[key] += attack.last_counts.get(key, 0)
                self.last_counts["forward"] += len(index)
            self.last_report.append({"attack": name, "robust_accuracy": float(np.mean(robust)),
                                     "seconds": time.perf_counter() - start,
                                     "counts": dict(attack.last_counts) if len(index) else {}})
        return tf.constant(x_adv)

    @staticmethod
    def _predict(model_fn, x):
        return np.argmax(losses.logits_of(model_fn(tf.constant(x))).numpy(), axis=-1)

    def _config(self):
        return {"version": self.version, "attacks": [attack.get_config() for _, attack in self.attacks]}
