"""The interface every attack implements: ``attack(model_fn, x, y) -> x_adv``, and what kind of attack it is.

``model_fn`` maps float32 images to ``[N, num_classes]`` logits, or to a dict holding ``"logits"``
plus auxiliary outputs (used by ``losses.AuxiliaryLoss``). An attack is a configured object with a threat
model, a seed, a ``kind`` and, after a call, ``last_counts`` (per-example model evaluations). Calling it
validates the inputs once, eagerly, with one clear error per problem (``validate``, public so composite
attacks can check a batch once before handing it to their members).

The ``kind`` says what the attack uses of the model, and so how an evaluation must run and report it:

| kind          | uses                                     | base                              |
|---------------|------------------------------------------|-----------------------------------|
| "white-box"   | the model's input gradients              | ``CompiledAttack`` (TF core)      |
| "query-based" | the model's outputs only (predictions)   | ``ScoreBasedAttack`` (NumPy loop), ``GaussianNoise`` |
| "transfer"    | another model's gradients; the target is only evaluated | ``Transfer``       |

``needs_gradients`` (whether the target itself must be differentiable) follows from the kind.
"""

import numpy as np
import tensorflow as tf

from tfrobust.attacks import losses
from tfrobust.attacks.threat_model import ThreatModel
from tfrobust.errors import TfrobustError, check_choice, check_int, check_number

# Tolerance for "inside the valid range" when validating user inputs.
RANGE_TOLERANCE = 1e-6

WHITE_BOX = "white-box"
QUERY_BASED = "query-based"
TRANSFER = "transfer"
KINDS = (WHITE_BOX, QUERY_BASED, TRANSFER)


class Attack:
    """Base class of every attack.

    Subclasses set the class attribute ``kind`` (one of ``KINDS``) and implement ``__call__``; attacks
    written in TensorFlow ops subclass ``CompiledAttack`` instead, which implements ``__call__``.

    Args:
      norm, eps, clip_min, clip_max, targeted: the ThreatModel (see ``threat_model.py``).
      seed: integer seed ≥ 0 of the random streams (random starts); two attacks with the same
        configuration and seed return the same result on the same inputs.
    """

    #: What the attack uses of the model (see the module docstring).
    kind = WHITE_BOX
    #: Whether the attack needs input gradients of the target ``model_fn``; set from ``kind``.
    needs_gradients = True
    #: Whether every returned point lies in the threat model's ε-ball (False for e.g. Gaussian noise);
    #: only such attacks enter a suite's worst case, and only their points are checked against ε.
    respects_threat_model = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        check_choice("attack kind", cls.kind, KINDS)
        cls.needs_gradients = cls.kind == WHITE_BOX

    def __init__(self, *, norm="linf", eps=0.3, clip_min=0.0, clip_max=1.0, targeted=False, seed=0):
        # Checked before the float() below, which would turn eps=True into 1.0.
        check_number("eps", eps, 0.0, finite=False)
        check_number("clip_min", clip_min)
        check_number("clip_max", clip_max)
        self.threat = ThreatModel(norm=norm, eps=float(eps), clip_min=float(clip_min),
                                  clip_max=float(clip_max), targeted=bool(targeted))
        check_int("seed", seed, 0)
        self.seed = int(seed)
        self._calls = 0
        self.last_counts = {"forward": 0, "backward": 0}

    def __call__(self, model_fn, x, y):
        """Returns adversarial examples for the batch ``(x, y)`` as a float32 tensor shaped like ``x``.

        Args:
          model_fn: callable mapping a float32 image batch to ``[N, num_classes]`` logits.
          x: images, float, NHWC (any rank ≥ 2 with a batch axis), inside the threat model's range.
          y: integer labels [N] (true labels, or target labels if ``targeted``).
        """
        raise NotImplementedError

    def set_stream(self, position):
        """Makes the next call draw the random streams of call number ``position`` (0, 1, … by default).

        Each call's randomness is a pure function of (``seed``, call number), and calls count up from 0.
        A caller that names the position itself (the evaluation engine passes the batch number) makes a
        batch's result independent of what ran before it, so a resumed or sharded evaluation redoes a
        batch exactly as an uninterrupted one did."""
        check_int("position", position, 0)
        self._calls = int(position)

    def get_config(self):
        """Every constructor argument, for reports and re-creation."""
        config = {"name": type(self).__name__, **self.threat.get_config(), "seed": self.seed}
        config.update(self._config())
        return config

    def _config(self):
        return {}

    def validate(self, model_fn, x, y):
        """``(x, y)`` as float32 / int64 tensors, or one ``TfrobustError`` naming the problem: dtypes,
        shapes, NaNs, images outside the valid range, labels outside the model's classes (found with one
        call of ``model_fn`` on the first image). Subclasses add their own checks (number of classes)."""
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
