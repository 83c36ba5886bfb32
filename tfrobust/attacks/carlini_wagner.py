"""Carlini–Wagner attacks: C&W-L2 (minimum-norm, tanh box, Adam, binary search over c) and C&W-L∞
(PGD on the C&W margin loss with confidence κ), plus the ``MinimumNormAttack`` contract shared with
DeepFool.

Minimum-norm attacks search for the *smallest* perturbation that changes the decision, which the
threat model's ε does not constrain. Two ways to read their result:

* ``attack(model_fn, x, y)`` (the ``Attack`` contract): per point, the adversarial example if its norm
  is ≤ eps, otherwise the original x — so robust accuracy at ε is computed exactly as for the
  ε-bounded attacks. ``eps=float("inf")`` returns every adversarial example found.
* ``attack.minimal(model_fn, x, y) -> (x_adv, norms)``: the unconstrained result and its per-point
  norm (in the threat model's norm); ``norms`` is ``inf`` (and ``x_adv`` is x) where the attack failed,
  and 0 where x is already adversarial. Robust accuracy at any ε is then ``mean(norms > ε)`` over
  correctly classified points, for a whole ε-sweep from one run.
"""

import math

import tensorflow as tf

from tfrobust.attacks import losses
from tfrobust.attacks.compiled_attack import CompiledAttack
from tfrobust.attacks.pgd import PGD
from tfrobust.attacks.threat_model import expand_like, per_example_norm
from tfrobust.errors import TfrobustError, check_int, check_number

# Adam's constants, as in the reference implementation (TensorFlow 1's AdamOptimizer defaults).
_ADAM_BETA1, _ADAM_BETA2, _ADAM_EPSILON = 0.9, 0.999, 1e-8
# Carlini's code starts from arctanh of the image scaled by this factor, so arctanh stays finite at
# the range's ends.
_TANH_SHRINK = 0.999999
_NO_UPPER_BOUND = 1e10


class MinimumNormAttack(CompiledAttack):
    """An attack that finds the smallest adversarial perturbation it can (see the module docstring).

    Subclasses implement ``_minimal(model_fn, x, y, seed) -> (x_adv, norms)`` in TensorFlow ops, with
    ``x_adv = x`` and ``norms = inf`` where they fail. ``_perturb`` keeps the points whose norm is ≤ eps.
    """

    def __init__(self, **threat):
        super().__init__(**threat)
        self._compiled_minimal = tf.function(self._minimal, reduce_retracing=True)

    def minimal(self, model_fn, x, y):
        """The unconstrained minimum-norm result: ``(x_adv, norms)``, float32 [N, ...] and [N].

        ``norms`` is measured in the threat model's norm; ``inf`` marks a failure (``x_adv`` is then
        x), 0 a point that is already adversarial. Counts go to ``last_counts`` as for a call.
        """
        x, y = self.validate(model_fn, x, y)
        seed = tf.constant([self.seed, self._calls], tf.int64)
        self._calls += 1
        self._forward_count.assign(0)
        self._backward_count.assign(0)
        x_adv, norms = self._compiled_minimal(model_fn, x, y, seed)
        self.last_counts = {"forward": int(self._forward_count.numpy()),
                            "backward": int(self._backward_count.numpy())}
        return x_adv, norms

    def _minimal(self, model_fn, x, y, seed):
        raise NotImplementedError

    def _perturb(self, model_fn, x, y, seed):
        x_adv, norms = self._minimal(model_fn, x, y, seed)
        return tf.where(expand_like(norms <= self.threat.eps, x), x_adv, x)


def success_margin(logits, labels, targeted):
    """[N] how far past the decision boundary: ``max_{j≠y} z_j − z_y`` (untargeted) or
    ``z_t − max_{j≠t} z_j`` (targeted); > 0 exactly when the attack succeeded."""
    value = losses.margin(logits, labels)
    return -value if targeted else value


class CarliniWagnerL2(MinimumNormAttack):
    """Carlini & Wagner's L2 attack (minimum-norm).

    Per point, minimise over w (Carlini & Wagner, Sec. V-A, with the tanh change of variables of
    Sec. V "Box constraints" mapped onto [clip_min, clip_max])::

        x'(w) = clip_min + (clip_max − clip_min) · (tanh(w) + 1) / 2
        ‖x'(w) − x‖₂² + c · f(x'(w)),    f(x') = max(z_y − max_{j≠y} z_j, −κ)       (untargeted)
                                         f(x') = max(max_{j≠t} z_j − z_t, −κ)       (targeted)

    with Adam (β = 0.9, 0.999; reset for each c) for ``max_iterations`` steps, and a per-point binary
    search over c for ``binary_search_steps`` rounds: c starts at ``initial_const``; after a round in
    which the point succeeded c ← (lo + hi)/2 with hi ← c, otherwise lo ← c and c ← 10·c until an upper
    bound is known, then bisection. The result per point is the smallest-L2 iterate that succeeded
    with confidence (success margin > κ) over all rounds and iterations.

    Choices the paper leaves open, following the authors' reference code (nn_robust_attacks):
      * w₀ = arctanh(0.999999 · (2(x − clip_min)/(clip_max − clip_min) − 1)), so the start is x up to
        ~1e-6 of the range;
      * the iterate is scored before its Adam update (as the reference does), so each iteration costs
        exactly one forward and one backward pass;
      * ``abort_early``: every ``max_iterations // 10`` iterations, stop the round when the batch's
        total loss has not decreased by 0.01 % (batch-wide, as in the reference);
      * with ``binary_search_steps >= 10`` the last round uses c = the upper bound (reference "repeat").
      * budget: our defaults (``max_iterations=1000``, abort-early checks every 100 iterations, 9
        binary-search rounds) are the settings of the C&W paper's experiments and of most robustness
        papers' "C&W-L2" rows; the reference code's own defaults are ``MAX_ITERATIONS = 10000`` with an
        abort-early check every 1,000 iterations (and 10 search rounds) — pass
        ``max_iterations=10000, binary_search_steps=10`` to match them (10× the cost per round; the
        abort-early interval follows as ``max_iterations // 10`` = 1,000).

    Args:
      confidence: κ ≥ 0; a success needs the margin past the boundary to exceed κ.
      learning_rate: Adam's step in w-space, > 0.
      binary_search_steps: rounds of the search over c, ≥ 1.
      max_iterations: Adam steps per round, ≥ 1.
      initial_const: the first c, > 0.
      abort_early: stop a round early when the loss stalls (see above).
      **threat: norm (must be "l2", the default here), eps, clip_min, clip_max, targeted, seed. ``eps``
        only decides which results ``attack(...)`` keeps (see ``MinimumNormAttack``); ``minimal(...)``
        returns the unconstrained result.

    Cost per point: one forward and one backward pass per Adam iteration, so at most
    ``binary_search_steps × max_iterations`` of each (fewer with ``abort_early``; ``last_counts`` has
    the exact figure).

    Reference: Carlini & Wagner, "Towards Evaluating the Robustness of Neural Networks", IEEE S&P 2017.
    """

    def __init__(self, *, confidence=0.0, learning_rate=0.01, binary_search_steps=9, max_iterations=1000,
                 initial_const=1e-3, abort_early=True, **threat):
        threat.setdefault("norm", "l2")
        super().__init__(**threat)
        if self.threat.norm != "l2":
            raise TfrobustError(f"CarliniWagnerL2 minimises the L2 norm; got "
                                f"norm={self.threat.norm!r} (use CarliniWagnerLinf for L∞)")
        check_number("confidence", confidence, 0.0)
        check_number("learning_rate", learning_rate, 0.0, low_inclusive=False)
        check_int("binary_search_steps", binary_search_steps, 1)
        check_int("max_iterations", max_iterations, 1)
        check_number("initial_const", initial_const, 0.0, low_inclusive=False)
        self.confidence = float(confidence)
        self.learning_rate = float(learning_rate)
        self.binary_search_steps = int(binary_search_steps)
        self.max_iterations = int(max_iterations)
        self.initial_const = float(initial_const)
        self.abort_early = bool(abort_early)
        self._loss_fn = losses.CWMarginLoss(self.confidence, self.threat.targeted)

    def _minimal(self, model_fn, x, y, seed):
        threat = self.threat
        half_range = (threat.clip_max - threat.clip_min) / 2
        middle = (threat.clip_max + threat.clip_min) / 2
        w_start = tf.atanh(tf.clip_by_value((x - middle) / half_range, -1.0, 1.0) * _TANH_SHRINK)
        kappa = self.confidence
        check_every = max(self.max_iterations // 10, 1)
        batch = tf.shape(y)[0]

        const = tf.fill([batch], self.initial_const)
        lower = tf.zeros([batch])
        upper = tf.fill([batch], _NO_UPPER_BOUND)
        best_l2 = tf.fill([batch], math.inf)
        best_adv = x
        for round_ in tf.range(self.binary_search_steps):
            if self.binary_search_steps >= 10:
                const = tf.where(round_ == self.binary_search_steps - 1, upper, const)
            w = w_start
            m = tf.zeros_like(x)
            v = tf.zeros_like(x)
            round_success = tf.zeros([batch], tf.bool)
            previous = tf.constant(math.inf)
            for iteration in tf.range(self.max_iterations):
                tanh_w = tf.tanh(w)
                x_new = tf.clip_by_value(middle + half_range * tanh_w, threat.clip_min, threat.clip_max)
                objective, logits, grad = self._objective_and_gradient(model_fn, x_new, y,
                                                                       self._loss_fn)
                delta = x_new - x
                l2 = per_example_norm(delta, "l2")
                # Track the smallest successful iterate (scored before its update, as the reference).
                success = success_margin(logits, y, threat.targeted) > kappa
                improved = success & (l2 < best_l2)
                best_l2 = tf.where(improved, l2, best_l2)
                best_adv = tf.where(expand_like(improved, x), x_new, best_adv)
                round_success = round_success | success
                if self.abort_early:
                    # f = κ − objective ≥ 0, so the loss is ‖δ‖² + c·f as in the reference.
                    total = tf.reduce_sum(tf.square(l2) + const * (kappa - objective))
                    checkpoint = tf.equal(iteration % check_every, 0)
                    if tf.logical_and(checkpoint, total > previous * 0.9999):
                        break
                    previous = tf.where(checkpoint, total, previous)
                # ∇_w of ‖δ‖² + c·f: (2δ − c·∇objective) · dx'/dw.
                grad_w = ((2.0 * delta - expand_like(const, x) * grad)
                          * (1.0 - tf.square(tanh_w)) * half_range)
                step = tf.cast(iteration + 1, tf.float32)
                m = _ADAM_BETA1 * m + (1.0 - _ADAM_BETA1) * grad_w
                v = _ADAM_BETA2 * v + (1.0 - _ADAM_BETA2) * tf.square(grad_w)
                rate = (self.learning_rate * tf.sqrt(1.0 - _ADAM_BETA2 ** step)
                        / (1.0 - _ADAM_BETA1 ** step))
                w = w - rate * m / (tf.sqrt(v) + _ADAM_EPSILON)
            # Binary search on c, per point.
            upper = tf.where(round_success, tf.minimum(upper, const), upper)
            lower = tf.where(round_success, lower, tf.maximum(lower, const))
            const = tf.where(round_success | (upper < _NO_UPPER_BOUND / 10), (lower + upper) / 2,
                             const * 10)
        found = tf.math.is_finite(best_l2)
        norms = tf.where(found, per_example_norm(best_adv - x, "l2"), math.inf)
        return tf.where(expand_like(found, x), best_adv, x), norms

    def _config(self):
        return {"confidence": self.confidence, "learning_rate": self.learning_rate,
                "binary_search_steps": self.binary_search_steps, "max_iterations": self.max_iterations,
                "initial_const": self.initial_const, "abort_early": self.abort_early}


class CarliniWagnerLinf(PGD):
    """"C&W-L∞" as the robustness literature runs it: PGD (L∞) on the C&W margin loss with confidence κ.

    Maximises ``min(max_{j≠y} z_j − z_y, κ)`` (targeted: ``min(z_t − max_{j≠t} z_j, κ)``) inside the
    ε-ball with PGD's steps, random start and restarts (``PGD`` is reused as is; only the loss differs).
    The cap stops pushing a point once its margin exceeds κ. Carlini & Wagner's own L∞ attack (an
    iterated, τ-shrinking penalty method) is not implemented: under a fixed ε this PGD form is the
    standard and stronger evaluation (Madry et al.'s CIFAR-10 challenge, TRADES, MART, FAT).

    Args:
      steps, step_size, random_start, restarts: as ``PGD`` (default 10 steps of 2.5·ε/steps, random
        start, one run).
      kappa: the confidence κ ≥ 0 (``inf`` allowed: the uncapped margin); default 50, the value of
        Madry et al.'s challenge code and its followers, where the cap practically never binds.
      **threat: norm (must be "linf"), eps, clip_min, clip_max, targeted, seed (see ``Attack``).

    Cost per point: as PGD, ``restarts × (steps + 1)`` forward and ``restarts × steps`` backward.

    References: Carlini & Wagner, "Towards Evaluating the Robustness of Neural Networks", S&P 2017
    (the loss f₆); Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks",
    ICLR 2018 (PGD).
    """

    def __init__(self, *, steps=10, step_size=None, kappa=50.0, random_start=True, restarts=1, **threat):
        check_number("kappa", kappa, 0.0)
        super().__init__(steps=steps, step_size=step_size, random_start=random_start, restarts=restarts,
                         loss=losses.CWMarginLoss(kappa, threat.get("targeted", False)), **threat)
        if self.threat.norm != "linf":
            raise TfrobustError(f"CarliniWagnerLinf is an L∞ attack; got norm={self.threat.norm!r} "
                                f"(use CarliniWagnerL2, or PGD(loss='margin') for L2)")
        self.kappa = float(kappa)

    def _config(self):
        return {**super()._config(), "kappa": self.kappa}
