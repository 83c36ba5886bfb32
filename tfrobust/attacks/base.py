"""The interface every attack implements: ``attack(model_fn, x, y) -> x_adv``.

An attack is a configured object. Calling it validates the inputs once (eagerly, one clear error per
problem), then runs the attack's compiled core. Subclasses implement ``_perturb(model_fn, x, y, seed)``
with TensorFlow ops; it is wrapped in one ``tf.function`` with ``reduce_retracing=True`` so a new batch
size generalises the trace instead of adding one per batch. The ``model_fn`` is part of the trace key:
each distinct model is traced once.
"""

import numpy as np
import tensorflow as tf

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
        return self._compiled(model_fn, x, y, seed)

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
        raise NotImplementedError

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
        logits = model_fn(x[:1])
        if logits.shape.rank != 2 or logits.shape[0] != 1:
            raise TfrobustError(
                f"model_fn must return [N, num_classes] logits, got shape {logits.shape} for 1 image")
        num_classes = logits.shape[1]
        y_np = y.numpy()
        if y_np.size and (y_np.min() < 0 or y_np.max() >= num_classes):
            raise TfrobustError(
                f"labels must be in [0, {num_classes}), found [{y_np.min()}, {y_np.max()}]")
        return x, y
