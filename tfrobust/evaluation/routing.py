"""AutoAttack on a prediction-only target: each component attack runs where it can.

A TFLite file or a served model has no input gradients. Wrapping all of AutoAttack in ``Transfer``
would make even its Square component query the surrogate, so nothing would ever query the deployed
model. ``RoutedAutoAttack`` keeps AutoAttack's sequence and per-point bookkeeping (each component runs
on the points the earlier ones left standing; the first adversarial example found per point is kept)
but runs the gradient components (APGD-CE, APGD-T, FAB-T) by transfer from a differentiable surrogate
and the query-based one (Square) against the target itself. Success is always judged on the target.
"""

import time

import numpy as np

from tfrobust.attacks.transfer import Transfer


class RoutedAutoAttack:
    """``RoutedAutoAttack(autoattack, surrogate_fn, surrogate_name)(target_predict, x, y) -> x_adv``.

    Args:
      autoattack: a configured ``AutoAttack`` (its ``attacks`` list of (name, attack) is followed).
      surrogate_fn: differentiable TF ``images → logits`` callable for the gradient components.
      surrogate_name: label of the surrogate, for reports.

    Call with the target's NumPy ``predict``. ``last_counts["forward"]`` counts the images the target
    scored (Square's queries plus the per-component success checks); ``surrogate_forward`` and
    ``surrogate_backward`` the surrogate's work. ``last_report`` lists per component where it ran, the
    robust accuracy after it, its time and counts. ``routes`` maps component → "transfer" or "target".
    """

    needs_gradients = False

    def __init__(self, autoattack, surrogate_fn, surrogate_name="surrogate"):
        self.autoattack = autoattack
        self.surrogate_name = surrogate_name
        self.threat = autoattack.threat
        self.components = []
        for name, attack in autoattack.attacks:
            if getattr(attack, "needs_gradients", True):
                self.components.append((name, Transfer(attack, surrogate_fn, surrogate_name), "transfer"))
            else:
                self.components.append((name, attack, "target"))
        self.routes = {name: route for name, _, route in self.components}
        self.last_report, self.last_counts = [], {"forward": 0, "backward": 0}

    def set_stream(self, position):
        """Every component draws the streams of its call number ``position`` (``Attack.set_stream``)."""
        for _, attack, _ in self.components:
            attack.set_stream(position)

    def describe(self):
        """The report's mode text: which components ran where."""
        transferred = [name for name, route in self.routes.items() if route == "transfer"]
        on_target = [name for name, route in self.routes.items() if route == "target"]
        parts = []
        if transferred:
            parts.append(f"transfer from {self.surrogate_name} ({', '.join(transferred)})")
        if on_target:
            parts.append(f"query-based on the target ({', '.join(on_target)})")
        return "; ".join(parts)

    def __call__(self, target_predict, x, y):
        x_adv = np.array(x, np.float32, copy=True)
        labels = np.asarray(y).astype(np.int64)
        robust = np.argmax(np.asarray(target_predict(x_adv)), axis=-1) == labels
        counts = {"forward": len(labels), "backward": 0, "surrogate_forward": 0, "surrogate_backward": 0}
        self.last_report = []
        for name, attack, route in self.components:
            index = np.flatnonzero(robust)
            start = time.perf_counter()
            if len(index):
                candidate = np.asarray(attack(target_predict, x_adv[index], labels[index]))
                broken = np.argmax(np.asarray(target_predict(candidate)), axis=-1) != labels[index]
                x_adv[index[broken]] = candidate[broken]
                robust[index[broken]] = False
                counts["forward"] += len(index)
                for key, value in attack.last_counts.items():
                    counts[key] = counts.get(key, 0) + int(value)
            self.last_report.append({"attack": name, "route": route, "robust_accuracy": float(np.mean(robust)),
                                     "seconds": time.perf_counter() - start,
                                     "counts": dict(attack.last_counts) if len(index) else {}})
        self.last_counts = counts
        return x_adv

    def get_config(self):
        return {**self.autoattack.get_config(), "routes": dict(self.routes), "surrogate": self.surrogate_name}
