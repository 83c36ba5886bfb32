"""The interface every attack implements: ``attack(model_fn, x, y) -> x_adv``.

``model_fn`` maps float32 images to ``[N, num_classes]`` logits, or to a dict holding ``"logits"``
plus auxiliary outputs (used by ``losses.AuxiliaryLoss``). An attack is a configured object. Calling it validates the inputs once (eagerly, one clear error per
problem), then runs the attack's compiled core. Subclasses implement ``_perturb(model_fn, x, y, seed)``
with TensorFlow ops; it is wrapped in one ``tf.function`` with ``reduce_retracing=True`` so a new batch
size generalises the trace instead of adding one per batch. The ``model_fn`` is part of the trace key:
each distinct model is traced once.
"""

import numpy as np
import tensorflow as tf

from tfrobust.attacks import losses
from tfrobust.attacks.threat_model import ThreatModel
from tfrobust.errors import TfrobustError, check_range

# Tolerance for "inside the valid range" when validating user inputs.
RANGE_TOLERANCE = 1e-6


class Attack:
    """Base class.

    Args:
      norm, eps, clip_min, clip_max, targeted: the ThreatModel (see ``threat_model.py``).
      seed: integer seed of the stateless random streams (random starts); two attacks with the same
        configuration and seed return the same result on the same inputs.
    """

    #: Whether the attack needs input gradients of ``model_fn`` (False for score/decision-based ones).
    needs_gradients = True

    def __init__(self, *, norm="linf", eps=0.3, clip_min=0.0, clip_max=1.0, targeted=False, seed=0):
        self.threat = ThreatModel(norm=norm, eps=float(eps), clip_min=float(clip_min),
                                  clip_max=float(clip_max), targeted=bool(targeted))
        check_range("seed", seed, 0)
        self.seed = int(seed)
        self._calls = 0
        self._compiled = tf.function(self._perturb, reduce_retracing=True)
        # Per-example model evaluations of the last call, counted inside the compiled graph.
        self._forward_count = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._backward_count = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.last_counts = {"forward": 0, "backward": 0}

    # -- public -----------------------------------------------------------------------------------
    def __call__(self, model_fn, x, y):
        """Returns adversarial examples for the batch ``(x, y)`` as a float32 tensor shaped like ``x``.

        Args:
          model_fn: callable mapping a float32 image batch to ``[N, num_classes]`` logits.
          x: images, float, NHWC (any rank ≥ 2 with a batch axis), inside the threat model's range.
          y: integer labels [N] (true labels, or target labels if ``targeted``).
        """
        x, y = self._validate(model_fn, x, y)
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

    def get_config(self):
        """Every constructor argument, for reports and re-creation."""
        config = {"name": type(self).__name__, **self.threat.get_config(), "seed": self.seed}
        config.update(self._config())
        return config

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

    def _config(self):
        return {}

    # -- validation -------------------------------------------------------------------------------
    def _validate(self, model_fn, x, y):
        x = tf.convert_to_tensor(x)
        if not x.dtype.is_floating:
            raise TfrobustError(f"images must be floating point in [{self.threat.clip_min}, "
                                f"{self.threat.clip_max}], got dtype {x.dtype.name}")
        x = tf.cast(x, tf.float32)
        if x.shape.rank is None or x.shape.rank < 2:
            raise TfrobustError(f"images must have a batch axis, got shape {x.shape}")
        x_np = x.numpy()
        if not np.all(np.isfinite(x_np)):
            raise TfrobustError("images contain NaN or infinite values")
        low, high = float(x_np.min(initial=0.0)), float(x_np.max(initial=0.0))
        if low < self.threat.clip_min - RANGE_TOLERANCE or high > self.threat.clip_max + RANGE_TOLERANCE:
            raise TfrobustError(
                f"images must lie in [{self.threat.clip_min}, {self.threat.clip_max}], found values in "
                f"[{low:.4g}, {high:.4g}] (normalisation belongs inside the model)")
        y = tf.convert_to_tensor(y)
        if not y.dtype.is_integer:
            raise TfrobustError(f"labels must be integers, got dtype {y.dtype.name}")
        y = tf.cast(tf.reshape(y, [-1]), tf.int64)
        if y.shape[0] != x.shape[0]:
            raise TfrobustError(f"got {x.shape[0]} images but {y.shape[0]} labels")
        outputs = model_fn(x[:1])
        if isinstance(outputs, dict) and "logits" not in outputs:
            raise TfrobustError(f"model_fn returned a dict without 'logits' (keys: {sorted(outputs)})")
        logits = tf.convert_to_tensor(losses.logits_of(outputs))
        if logits.shape.rank != 2 or logits.shape[0] != 1:
            raise TfrobustError(
                f"model_fn must return [N, num_classes] logits, got shape {logits.shape} for 1 image")
        num_classes = logits.shape[1]
        y_np = y.numpy()
        if y_np.size and (y_np.min() < 0 or y_np.max() >= num_classes):
            raise TfrobustError(
                f"labels must be in [0, {num_classes}), found [{y_np.min()}, {y_np.max()}]")
        return x, y
