"""The base of attacks written in TensorFlow ops: one compiled core, counted model evaluations.

Calling the attack validates the inputs (``Attack.validate``), then runs ``_perturb(model_fn, x, y, seed)``
wrapped in one ``tf.function`` with ``reduce_retracing=True``, so a new batch size generalises the trace
instead of adding one per batch. The ``model_fn`` is part of the trace key: each distinct model is traced
once. Model evaluations go through ``_forward`` / ``_objective_and_gradient``, which count them inside
the graph, so ``last_counts`` is exact.
"""

import tensorflow as tf

from tfrobust.attacks import losses
from tfrobust.attacks.base import Attack
from tfrobust.errors import check_int, check_number


class CompiledAttack(Attack):
    """An attack whose core is TensorFlow ops in one ``tf.function`` (white-box unless it says otherwise).

    Args:
      **threat: norm, eps, clip_min, clip_max, targeted, seed (see ``Attack``).
    """

    def __init__(self, **threat):
        super().__init__(**threat)
        self._compiled = tf.function(self._perturb, reduce_retracing=True)
        # Per-example model evaluations of the last call, counted inside the compiled graph.
        self._forward_count = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._backward_count = tf.Variable(0, dtype=tf.int64, trainable=False)

    # -- public ------------------------------------------------------------------------------------
    def __call__(self, model_fn, x, y):
        """Returns adversarial examples for the batch ``(x, y)`` (see ``Attack.__call__``)."""
        x, y = self.validate(model_fn, x, y)
        # A fresh stream per call (so successive batches get different random starts), reproducible
        # for a freshly constructed attack with the same seed.
        seed = tf.constant([self.seed, self._calls], tf.int64)
        self._calls += 1
        self._forward_count.assign(0)
        self._backward_count.assign(0)
        x_adv = self._compiled(model_fn, x, y, seed)
        self.last_counts = {"forward": int(self._forward_count.numpy()),
                            "backward": int(self._backward_count.numpy())}
        return x_adv

    @property
    def trace_count(self):
        """How many times the compiled core was traced (a test guards against retracing per batch)."""
        return self._compiled.experimental_get_tracing_count()

    # -- for subclasses ---------------------------------------------------------------------------
    def _perturb(self, model_fn, x, y, seed):
        """The attack itself, in TensorFlow ops (it runs inside ``tf.function``). Evaluate the model only
        through ``_forward`` / ``_objective_and_gradient`` so that ``last_counts`` is exact."""
        raise NotImplementedError

    def _forward(self, model_fn, x):
        """``model_fn(x)`` (logits or a dict of outputs), counted as len(x) forward passes."""
        self._forward_count.assign_add(tf.cast(tf.shape(x)[0], tf.int64))
        return model_fn(x)

    def _set_iterations(self, steps, step_size, loss, *, eps_per_step):
        """The fixed-step iterative attacks' shared arguments (PGD, MI-FGSM): ``steps`` ≥ 1, an absolute
        ``step_size`` > 0 or, when None, ``eps_per_step · ε / steps``, and a named loss."""
        check_int("steps", steps, 1)
        if step_size is not None:
            check_number("step_size", step_size, 0.0, low_inclusive=False)
        self.steps = int(steps)
        self.step_size = float(step_size) if step_size is not None else eps_per_step * self.threat.eps / self.steps
        self.loss = losses.describe(loss)
        self._loss_fn = losses.get(loss)

    def _objective_and_gradient(self, model_fn, x, y, loss_fn):
        """(objective [N], logits, ∇ₓ objective) at ``x``, counted as one forward and one backward pass
        per example. The objective is the loss away from ``y`` or, targeted, minus the loss to ``y``."""
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = self._forward(model_fn, x)
            objective = losses.objective(loss_fn, outputs, y, self.threat.targeted)
        self._backward_count.assign_add(tf.cast(tf.shape(x)[0], tf.int64))
        # A model whose output ignores x has zero (not None) gradient: the sanity checks count those.
        grad = tape.gradient(objective, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return objective, tf.cast(losses.logits_of(outputs), tf.float32), grad
