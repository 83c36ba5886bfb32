"""Auto-PGD (APGD-CE / APGD-DLR) and its targeted-DLR variant APGD-T, L∞ and L2.

Reference: F. Croce and M. Hein, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks", ICML 2020 (arXiv:2003.01690), as implemented in ``fra31/auto-attack``
(``autoattack/autopgd_base.py``); the behaviour below follows ``/work/shared/AUTOATTACK-SPEC.md`` §3.

One run (``steps`` = N iterations) on a batch:

* random start on the sphere of the ball (L∞: ``x + ε·u/‖u‖∞`` with u ~ U[−1, 1)^d; L2: ``x + ε·u/‖u‖₂``
  with u ~ N(0, I)), clipped to the range, then one gradient evaluation there;
* step size η = 2ε per example; iteration i:
  ``z = P(x⁽ⁱ⁾ + η·s(g))`` and ``x⁽ⁱ⁺¹⁾ = P(x⁽ⁱ⁾ + a·(z − x⁽ⁱ⁾) + (1 − a)·(x⁽ⁱ⁾ − x⁽ⁱ⁻¹⁾))`` with momentum
  a = 1 at i = 0 and 0.75 afterwards, s(g) = sign(g) (L∞) or g/(‖g‖₂ + 1e−12) (L2), and P the
  reference's projection (L∞: clip to the ball then to the range; L2: radial rescale onto the ball then
  clip to the range — not the exact projection onto the intersection, but always inside it);
* checkpoints after ``apgd_checkpoints(N)`` iterations (22, 41, 57, 70, 80, 87, 93, 99 for N = 100: the
  interval starts at ⌊0.22N⌋ and shrinks by ⌊0.03N⌋ down to ⌊0.06N⌋). At a checkpoint of interval k an
  example halves its step and restarts from its best point (iterate and gradient) when
  (1) the loss increased in at most ρ·k of the last k steps, or (2) its step was not halved at the
  previous checkpoint and its best loss has not improved since. As in the reference the increase count
  reads a zero-initialised loss history with wrap-around, so the first interval compares its first loss
  with 0 rather than with the loss at the random start;
* bookkeeping per example: the best-loss point (strictly larger loss), and the *latest* misclassified
  iterate.

Where we follow / depart from the reference code:

* Same as the reference: no early stopping inside a run (every attacked point runs all N iterations);
  only points correctly classified on the clean input are attacked, and every further restart (or, for
  APGD-T, target) attacks only the points still robust, starting again from a fresh random start with
  η = 2ε; a point misclassified at any iterate (including the random start) counts as fooled.
* Returned points: fooled points get the latest misclassified iterate of the run that fooled them (as in
  the reference); clean-misclassified points are returned unchanged. **Departure:** a point never fooled
  gets its highest-loss point over all its runs instead of the clean input (the reference's
  ``perturb`` returns x there; its ``best_loss=True`` mode returns the highest-loss point). Both are
  classified correctly, so robust accuracy is the same; the highest-loss point is the more useful output
  (e.g. for adversarial training).
* Cost: the clean logits are computed once per call (the reference re-evaluates them for APGD-T before
  each target; the values are identical for a deterministic model).
* Randomness: stateless streams from the attack's seed, folded per run; the random start of a point
  depends on which points are still being attacked (as in the reference, whose random draws depend on
  the batch). EOT (``eot_iter`` > 1) is not inside APGD: wrap a randomised model in
  ``EOT(model_fn, 20, average="loss")`` (what ``AutoAttack(version="rand")`` does). The L1 variant is not
  implemented.
* The reference's ``check_zero_gradients``: ``last_zero_gradients`` is the number of points whose gradient
  at the random start of some run is all zero (checked for every loss, not only DLR ones). A point counts
  once however many runs (restarts, APGD-T's targets) see it: the reference warns per run, which with
  nine targets would report one masked point nine times.
* The gradient of each example is that of its own loss (the reference differentiates the batch sum,
  which is the same thing).

Budget per point (``last_counts``): forward passes ≤ 1 + R·(N + 1) and backward passes ≤ R·(N + 1) for
APGD with R restarts; forward ≤ 1 + T·R·(N + 1) and backward ≤ T·R·(N + 1) for APGD-T with T target
classes. The bound is reached by a point still robust at the end; a fooled point stops costing after the
run that fooled it, and a clean-misclassified point costs the one clean forward pass.
"""

import warnings

import numpy as np
import tensorflow as tf

from tfrobust.attacks import losses
from tfrobust.attacks.compiled_attack import CompiledAttack
from tfrobust.attacks.threat_model import expand_like, per_example_norm
from tfrobust.errors import TfrobustError, check_int, check_number

#: Momentum weight a of the reference (a = 1 at the first step).
MOMENTUM = 0.75
#: Initial step size in units of ε (2 for L∞ and for L2 in the reference).
INITIAL_STEP = 2.0


def apgd_checkpoints(steps):
    """The reference's checkpoint schedule: [(i, k)] with i the 0-based iteration after which the step
    size is checked and k the length of the interval that ends there.

    For ``steps=100``: i = 21, 40, 56, 69, 79, 86, 92, 98 with k = 22, 19, 16, 13, 10, 7, 6, 6.
    """
    k = max(int(0.22 * steps), 1)
    size_decr = max(int(0.03 * steps), 1)
    k_min = max(int(0.06 * steps), 1)
    schedule, counter = [], 0
    for i in range(steps):
        counter += 1
        if counter == k:
            schedule.append((i, k))
            counter = 0
            k = max(k - size_decr, k_min)
    return schedule


def check_num_classes(name, model_fn, x, minimum, num_target_classes=None):
    """Eager checks before tracing (one clear error instead of a staging error): the model has at least
    ``minimum`` classes; warns when ``num_target_classes`` exceeds num_classes − 1 (it is capped)."""
    num_classes = losses.logits_of(model_fn(x[:1])).shape[-1]
    if num_classes is None:
        return
    if num_classes < minimum:
        raise TfrobustError(f"{name} needs a model with at least {minimum} classes, got {num_classes}")
    if num_target_classes is not None and num_target_classes > num_classes - 1:
        warnings.warn(f"{name}: num_target_classes={num_target_classes} but the model has {num_classes} "
                      f"classes; using {num_classes - 1} target classes", stacklevel=4)


class _APGDCore(CompiledAttack):
    """The APGD run shared by APGD and APGD-T (see the module docstring)."""

    def __init__(self, *, steps, restarts, rho, **threat):
        super().__init__(**threat)
        check_int("steps", steps, 1)
        check_int("restarts", restarts, 1)
        check_number("rho", rho, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        self.steps = int(steps)
        self.restarts = int(restarts)
        self.rho = float(rho)
        # check_k[i] = interval length if a checkpoint ends at iteration i, else 0.
        check_k = np.zeros(self.steps, np.int32)
        for i, k in apgd_checkpoints(self.steps):
            check_k[i] = k
        self._check_k = check_k
        # Per point of the last call: an all-zero gradient at the start of some run.
        self._zero_gradient_points = tf.Variable(tf.zeros([0], tf.bool), shape=tf.TensorShape([None]),
                                                 trainable=False)

    @property
    def last_zero_gradients(self):
        """Points of the last call whose loss gradient at the random start of some run was all zero."""
        return int(tf.reduce_sum(tf.cast(self._zero_gradient_points, tf.int64)).numpy())

    # -- the projection of the reference ------------------------------------------------------------
    def _project(self, v, x):
        threat = self.threat
        if threat.norm == "linf":
            v = tf.minimum(tf.maximum(v, x - threat.eps), x + threat.eps)
        else:
            delta = v - x
            norm = per_example_norm(delta, "l2")
            delta = delta * expand_like(tf.minimum(threat.eps, norm) / (norm + 1e-12), delta)
            v = x + delta
        return tf.clip_by_value(v, threat.clip_min, threat.clip_max)

    def _direction(self, grad):
        if self.threat.norm == "linf":
            return tf.sign(grad)
        return grad / expand_like(per_example_norm(grad, "l2") + 1e-12, grad)

    def _random_start(self, x, seed):
        threat = self.threat
        if threat.norm == "linf":
            u = tf.random.stateless_uniform(tf.shape(x), seed, -1.0, 1.0, dtype=x.dtype)
            u = u / expand_like(per_example_norm(u, "linf") + 1e-12, u)
        else:
            u = tf.random.stateless_normal(tf.shape(x), seed, dtype=x.dtype)
            u = u / expand_like(per_example_norm(u, "l2") + 1e-12, u)
        return tf.clip_by_value(x + threat.eps * u, threat.clip_min, threat.clip_max)

    # -- one run -------------------------------------------------------------------------------------
    def _single_run(self, model_fn, x, y, loss_fn, seed):
        """One APGD run on every point of (x, y). Returns (x_best, robust, loss_best, x_fooled, zero_gradient):
        the highest-loss point, whether every iterate was classified correctly (untargeted threat) / missed
        the target (targeted threat), its loss, the latest successful iterate, and whether the gradient at
        the random start was all zero."""
        targeted = self.threat.targeted
        steps = self.steps
        check_k = tf.constant(self._check_k)
        rho = tf.constant(self.rho, tf.float64)

        x0 = self._random_start(x, seed)
        loss0, logits0, grad0 = self._objective_and_gradient(model_fn, x0, y, loss_fn)
        robust0 = ~losses.is_successful(logits0, y, targeted)
        zero_gradient = tf.reduce_all(tf.reshape(grad0, [tf.shape(grad0)[0], -1]) == 0, axis=1)
        n = tf.shape(x)[0]
        step0 = tf.fill([n], INITIAL_STEP * self.threat.eps)
        history0 = tf.zeros(tf.stack([steps, n]), loss0.dtype)

        def body(i, x_adv, x_prev, grad, x_best, grad_best, loss_best, robust, x_fooled, step,
                 history, reduced_last, loss_best_last):
            momentum_term = x_adv - x_prev
            x_prev = x_adv
            a = tf.where(tf.equal(i, 0), 1.0, MOMENTUM)
            z = self._project(x_adv + expand_like(step, x_adv) * self._direction(grad), x)
            x_new = self._project(x_adv + a * (z - x_adv) + (1.0 - a) * momentum_term, x)

            loss, logits, grad_new = self._objective_and_gradient(model_fn, x_new, y, loss_fn)
            fooled_now = losses.is_successful(logits, y, targeted)
            robust = robust & ~fooled_now
            x_fooled = tf.where(expand_like(fooled_now, x_new), x_new, x_fooled)

            history = tf.tensor_scatter_nd_update(history, [[i]], loss[tf.newaxis])
            improved = loss > loss_best
            x_best = tf.where(expand_like(improved, x_new), x_new, x_best)
            grad_best = tf.where(expand_like(improved, x_new), grad_new, grad_best)
            loss_best = tf.where(improved, loss, loss_best)

            # Checkpoint (k > 0 only at the scheduled iterations): count the loss increases over the
            # last k steps, reading the zero-initialised history with wrap-around like the reference.
            k = check_k[i]
            at_check = k > 0
            offsets = tf.range(k)
            current = tf.gather(history, tf.math.floormod(i - offsets, steps))
            previous = tf.gather(history, tf.math.floormod(i - offsets - 1, steps))
            increases = tf.reduce_sum(tf.cast(current > previous, tf.float64), axis=0)
            oscillating = increases <= rho * tf.cast(k, tf.float64)
            stalled = ~reduced_last & (loss_best_last >= loss_best)
            reduce = at_check & (oscillating | stalled)
            step = tf.where(reduce, step / 2.0, step)
            x_next = tf.where(expand_like(reduce, x_new), x_best, x_new)
            grad_next = tf.where(expand_like(reduce, x_new), grad_best, grad_new)
            reduced_last = tf.where(at_check, reduce, reduced_last)
            loss_best_last = tf.where(at_check, loss_best, loss_best_last)
            return (i + 1, x_next, x_prev, grad_next, x_best, grad_best, loss_best, robust, x_fooled,
                    step, history, reduced_last, loss_best_last)

        state = (tf.constant(0), x0, x0, grad0, x0, grad0, loss0, robust0, x0, step0, history0,
                 tf.ones([n], tf.bool), loss0)
        state = tf.while_loop(lambda i, *_: i < steps, body, state)
        _, _, _, _, x_best, _, loss_best, robust, x_fooled, _, _, _, _ = state
        return x_best, robust, loss_best, x_fooled, zero_gradient

    def _run_on_robust(self, model_fn, x, y, loss_for, state, seed):
        """Runs ``_single_run`` on the points still robust in ``state = (adv, robust, best_loss)`` and
        merges its results. ``loss_for(index)`` builds the loss for those points."""
        adv, robust, best_loss = state
        index = tf.where(robust)[:, 0]

        def run():
            x_sub, y_sub = tf.gather(x, index), tf.gather(y, index)
            x_best, still, loss_best, x_fooled, zero_gradient = self._single_run(
                model_fn, x_sub, y_sub, loss_for(index), seed)
            rows = index[:, tf.newaxis]
            self._zero_gradient_points.assign(tf.tensor_scatter_nd_update(
                self._zero_gradient_points, rows, tf.gather(self._zero_gradient_points, index) | zero_gradient))
            previous_loss = tf.gather(best_loss, index)
            take = ~still | (loss_best > previous_loss)
            candidate = tf.where(expand_like(still, x_best), x_best, x_fooled)
            points = tf.where(expand_like(take, candidate), candidate, tf.gather(adv, index))
            return (tf.tensor_scatter_nd_update(adv, rows, points),
                    tf.tensor_scatter_nd_update(robust, rows, still),
                    tf.tensor_scatter_nd_update(best_loss, rows, tf.maximum(loss_best, previous_loss)))

        return tf.cond(tf.size(index) > 0, run, lambda: (adv, robust, best_loss))

    def _clean_state(self, model_fn, x, y):
        """(logits, (adv, robust, best_loss)) on the clean batch: only correctly classified points (points
        not yet at their target, when targeted) are attacked."""
        self._zero_gradient_points.assign(tf.zeros(tf.shape(y), tf.bool))
        logits = tf.cast(losses.logits_of(self._forward(model_fn, x)), tf.float32)
        robust = ~losses.is_successful(logits, y, self.threat.targeted)
        return logits, (x, robust, tf.fill(tf.shape(y), float("-inf")))


class APGD(_APGDCore):
    """Auto-PGD with cross-entropy (APGD-CE, AutoAttack's first attack) or DLR (APGD-DLR) loss.

    A step-size-free PGD: momentum, a step size halved per example at checkpoints when progress stalls,
    restarts from the best point (module docstring). Untargeted by default (labels are the true labels,
    success = misclassification); with ``targeted=True`` the labels are targets, the objective is minus
    the loss towards them and success means reaching them.

    Args:
      loss: "ce" (APGD-CE), "dlr" (APGD-DLR; needs ≥ 3 classes), "margin", or a loss callable
        ``loss(logits, labels) -> [N]`` to maximise. The targeted DLR loss belongs to ``APGDT``.
      steps: iterations N per run, ≥ 1 (100 in AutoAttack).
      restarts: runs with fresh random starts, ≥ 1; each attacks only the points still robust (1 in
        AutoAttack's standard version, 5 in "plus").
      rho: ρ ∈ (0, 1), the fraction of loss increases below which the step is halved (0.75).
      **threat: norm ("linf" | "l2"), eps, clip_min, clip_max, targeted, seed (see ``Attack``).

    Budget per point: ≤ 1 + restarts·(steps + 1) forward and ≤ restarts·(steps + 1) backward passes.

    Reference: Croce & Hein, ICML 2020; ``fra31/auto-attack`` ``APGDAttack`` (see the module docstring
    for where we follow and depart from it).
    """

    def __init__(self, *, loss="ce", steps=100, restarts=1, rho=0.75, **threat):
        super().__init__(steps=steps, restarts=restarts, rho=rho, **threat)
        if isinstance(loss, str) and loss == "dlr_targeted":
            raise TfrobustError("loss 'dlr_targeted' needs target classes: use APGDT")
        self._loss_fn = losses.get(loss)
        self.loss = losses.describe(loss)

    def _perturb(self, model_fn, x, y, seed):
        _, state = self._clean_state(model_fn, x, y)

        def body(restart, *state):
            return (restart + 1,) + self._run_on_robust(
                model_fn, x, y, lambda index: self._loss_fn, state,
                tf.random.experimental.stateless_fold_in(seed, restart))

        return tf.while_loop(lambda restart, *_: restart < self.restarts, body, (tf.constant(0),) + state)[1]

    def validate(self, model_fn, x, y):
        x, y = super().validate(model_fn, x, y)
        if self.loss == "dlr":
            check_num_classes("APGD with the DLR loss", model_fn, x, 3)
        return x, y

    def _config(self):
        return {"loss": self.loss, "steps": self.steps, "restarts": self.restarts, "rho": self.rho}


class APGDT(_APGDCore):
    """APGD-T: APGD on the targeted DLR loss against each of the top-k non-true classes in turn
    (AutoAttack's second attack).

    **Targeted by construction, untargeted threat:** the labels are the *true* labels and success means
    any misclassification (not necessarily the target), exactly as in AutoAttack; ``targeted=True`` is
    rejected. For target j = 2, …, k + 1, the target of a point is the class of its j-th largest clean
    logit (its 2nd, 3rd, … most likely class), and a full run of ``steps`` iterations with loss
    −(z_y − z_t)/(z_π1 − ½(z_π3 + z_π4) + 1e−12) attacks the points still robust (``restarts`` runs per
    target, each from a fresh random start with η = 2ε).

    Args:
      steps: iterations N per run, ≥ 1 (100).
      num_target_classes: k ≥ 1 (9 in AutoAttack). Capped at num_classes − 1 (with a warning) for models
        with fewer classes. The targeted DLR loss needs ≥ 4 classes.
      restarts: runs per target class, ≥ 1 (1 in AutoAttack).
      rho: ρ ∈ (0, 1) (0.75).
      **threat: norm ("linf" | "l2"), eps, clip_min, clip_max, seed (see ``Attack``); targeted must be
        False.

    Budget per point: ≤ 1 + k·restarts·(steps + 1) forward and ≤ k·restarts·(steps + 1) backward passes.

    Reference: Croce & Hein, ICML 2020; ``fra31/auto-attack`` ``APGDAttack_targeted`` (module docstring).
    """

    def __init__(self, *, steps=100, num_target_classes=9, restarts=1, rho=0.75, **threat):
        super().__init__(steps=steps, restarts=restarts, rho=rho, **threat)
        check_int("num_target_classes", num_target_classes, 1)
        if self.threat.targeted:
            raise TfrobustError("APGDT is targeted by construction (top-k non-true classes of each "
                                "point): pass the true labels with targeted=False")
        self.num_target_classes = int(num_target_classes)

    def _perturb(self, model_fn, x, y, seed):
        clean_logits, state = self._clean_state(model_fn, x, y)
        ranked, num_targets = ranked_targets(clean_logits, self.num_target_classes)

        def body(run, *state):
            # Runs are ordered target-major: (target 2, restart 0), (target 2, restart 1), …
            targets_all = ranked[:, run // self.restarts + 1]

            def loss_for(index):
                targets = tf.gather(targets_all, index)
                return lambda logits, labels: losses.dlr_targeted(logits, labels, targets)

            return (run + 1,) + self._run_on_robust(model_fn, x, y, loss_for, state,
                                                     tf.random.experimental.stateless_fold_in(seed, run))

        total = num_targets * self.restarts
        return tf.while_loop(lambda run, *_: run < total, body, (tf.constant(0),) + state)[1]

    def validate(self, model_fn, x, y):
        x, y = super().validate(model_fn, x, y)
        check_num_classes("APGDT (targeted DLR loss)", model_fn, x, 4, self.num_target_classes)
        return x, y

    def _config(self):
        return {"steps": self.steps, "num_target_classes": self.num_target_classes,
                "restarts": self.restarts, "rho": self.rho}


def ranked_targets(clean_logits, num_target_classes):
    """(classes sorted by decreasing clean logit [N, C], number of targets min(k, C − 1)) for the
    targeted-by-construction attacks; column j is the (j+1)-th most likely class."""
    ranked = tf.argsort(clean_logits, axis=1, direction="DESCENDING", stable=True)
    num_targets = tf.minimum(num_target_classes, tf.shape(clean_logits)[1] - 1)
    return ranked, num_targets
