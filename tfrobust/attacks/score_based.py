"""The shared base of score-based (prediction-only) attacks: Square, SPSA.

These attacks only *query* the model: they never need gradients, so they run on any function
``predict(images) -> logits``, including a TFLite artifact's NumPy ``predict`` or a served model.

Design: the query loop runs eagerly in NumPy with one batched model call per iteration, not in the
compiled TensorFlow core of ``CompiledAttack`` (this class is an ``Attack`` of kind "query-based",
not a ``CompiledAttack``). The model call dominates the cost of every iteration (the
bookkeeping around it is a few array copies), a NumPy loop needs no ``tf.numpy_function`` bridging for
NumPy models, and the per-point early stop (only still-robust points are queried) shrinks the batch
freely without retracing. Any TensorFlow callable is compiled once (``_callable``): a Keras model is
called through one ``tf.function`` (cached per model), and a plain callable whose first call returns TF
tensors is wrapped in ``tf.function`` from then on (Square makes 5000 calls per batch: 16.8 ms eager vs
6.9 ms compiled per query on a small CNN). A callable returning NumPy arrays (a TFLite or served
model's ``predict``) is called as given. Consequence: randomness inside a TF callable must come from TF
random ops (NumPy random draws would be frozen into the trace).

Every model call goes through ``Predictor``, which converts inputs to float32 NumPy arrays, takes the
``"logits"`` of a dict output, and counts per-example queries: ``last_counts["forward"]`` is exactly the
number of images the model was asked to score during the call (``"backward"`` is always 0). The clean
query that every attack makes first (to skip points that are already misclassified) doubles as the
model check of the base validation, so validation costs no extra query.
"""

import keras
import numpy as np
import tensorflow as tf

from tfrobust.attacks import losses
from tfrobust.attacks.base import QUERY_BASED, Attack
from tfrobust.errors import TfrobustError, check_choice

LOSSES = ("margin", "ce")


class Predictor:
    """``model_fn`` as a counted NumPy function: float32 images [n, ...] -> float64 logits [n, K].

    ``model_fn`` may be a NumPy function (e.g. ``TFLiteArtifact.predict``), a TF function or a Keras
    model returning logits or a dict with ``"logits"``; it is always called with a NumPy array.
    """

    def __init__(self, model_fn):
        self._model_fn = model_fn
        self.queries = 0

    def __call__(self, x):
        x = np.ascontiguousarray(x, dtype=np.float32)
        outputs = losses.logits_of(self._model_fn(x))
        logits = np.asarray(outputs, dtype=np.float64)
        self.queries += len(x)
        if logits.ndim != 2 or logits.shape[0] != len(x):
            raise TfrobustError(
                f"model_fn must return [N, num_classes] logits, got shape {logits.shape} for {len(x)} images")
        return logits


def objective(logits, labels, loss, targeted):
    """(value to *minimise* [n], success [n] bool) for logits [n, K] and labels [n].

    Untargeted, ``labels`` are the true classes: "margin" is z_y − max_{j≠y} z_j and "ce" is minus the
    cross-entropy. Targeted, ``labels`` are the targets: "margin" is max_{j≠t} z_j − z_t and "ce" the
    cross-entropy to t. Success is argmax ≠ y (untargeted) or argmax = t (targeted).
    """
    rows = np.arange(len(labels))
    label_logit = logits[rows, labels]
    others = logits.copy()
    others[rows, labels] = -np.inf
    margin = label_logit - others.max(axis=1)
    if loss == "margin":
        value = -margin if targeted else margin
    else:
        top = logits.max(axis=1)
        cross_entropy = top + np.log(np.exp(logits - top[:, None]).sum(axis=1)) - label_logit
        value = cross_entropy if targeted else -cross_entropy
    predictions = logits.argmax(axis=1)
    success = predictions == labels if targeted else predictions != labels
    return value, success


class ScoreBasedAttack(Attack):
    """Base of the prediction-only attacks: validation, clean query, seeding and counting.

    Subclasses implement ``_attack(predict, x, y, clean_value, rng) -> x_adv`` on NumPy arrays, where
    ``predict`` is a ``Predictor``, ``x`` float32 images and ``y`` int64 labels of the points still to
    attack (those not already successful on the clean input, which are returned unchanged), and
    ``clean_value`` their loss from the clean query (see ``objective``); ``rng`` is a
    ``numpy.random.Generator`` seeded with ``[seed, call index]``.

    Args:
      loss: "margin" or "ce" (what the attack minimises, see ``objective``).
      **threat: norm, eps, clip_min, clip_max, targeted, seed (see ``Attack``).
    """

    kind = QUERY_BASED

    def __init__(self, *, loss="margin", **threat):
        super().__init__(**threat)
        check_choice("loss", loss, LOSSES)
        self.loss = loss
        self._keras_fns = {}

    def __call__(self, model_fn, x, y):
        """Adversarial examples for ``(x, y)`` as a float32 tensor shaped like ``x`` (see ``Attack``).

        ``model_fn`` may be a NumPy-only ``predict`` function (arrays in, arrays out).
        """
        predict = Predictor(self._callable(model_fn))
        clean = {}

        def probe(first):
            # The base validation checks the model's output on x[:1]; answer it with the clean query of
            # the whole (already validated) batch, which the attack needs anyway.
            first = np.asarray(first, np.float32)
            full = np.asarray(tf.cast(tf.convert_to_tensor(x), tf.float32))
            if len(first) <= len(full) and np.array_equal(first, full[:len(first)]):
                clean["logits"] = predict(full)
                return clean["logits"][:len(first)]
            return predict(first)

        x_tf, y_tf = self.validate(probe, x, y)
        x_np, y_np = x_tf.numpy(), y_tf.numpy()
        self._check_shape(x_np)
        rng = np.random.default_rng([self.seed, self._calls])
        self._calls += 1
        logits = clean["logits"] if "logits" in clean else predict(x_np)
        value, done = objective(logits, y_np, self.loss, self.threat.targeted)
        x_adv = x_np.copy()
        todo = np.flatnonzero(~done)
        if todo.size:
            x_adv[todo] = self._attack(predict, x_np[todo], y_np[todo], value[todo], rng)
        self.last_counts = {"forward": int(predict.queries), "backward": 0}
        return tf.constant(x_adv, tf.float32)

    # -- for subclasses ---------------------------------------------------------------------------
    def _attack(self, predict, x, y, clean_value, rng):
        """Returns adversarial examples (NumPy float32) for the clean-correct points ``x``."""
        raise NotImplementedError

    def _check_shape(self, x):
        """Raises TfrobustError if the attack cannot handle images shaped like ``x``."""

    def _evaluate(self, predict, x, y):
        """(value to minimise, success) of ``x``: one query per image."""
        return objective(predict(x), y, self.loss, self.threat.targeted)

    def _project(self, x_adv, x):
        """NumPy version of ``ThreatModel.project``: onto the ball around ``x``, then into the range."""
        threat = self.threat
        delta = x_adv - x
        if threat.norm == "linf":
            delta = np.clip(delta, -threat.eps, threat.eps)
        else:
            norms = per_example_l2(delta)
            delta = delta * _expand(np.minimum(1.0, threat.eps / np.maximum(norms, 1e-12)), delta)
        return np.clip(x + delta, threat.clip_min, threat.clip_max).astype(np.float32)

    def _clip_range(self, x):
        return np.clip(x, self.threat.clip_min, self.threat.clip_max).astype(np.float32)

    def _callable(self, model_fn):
        """A Keras model runs through one cached ``tf.function``; a TF callable is compiled on its first
        call (``_CompileIfTensorFlow``); a ``tf.function`` or a NumPy function is called as given."""
        if isinstance(model_fn, (tf.types.experimental.PolymorphicFunction,
                                 tf.types.experimental.ConcreteFunction)):
            return model_fn
        if not isinstance(model_fn, keras.Model):
            key = id(model_fn)
            if key not in self._keras_fns or self._keras_fns[key][0] is not model_fn:
                self._keras_fns = {key: (model_fn, _CompileIfTensorFlow(model_fn))}
            return self._keras_fns[key][1]
        key = id(model_fn)
        if key not in self._keras_fns or self._keras_fns[key][0] is not model_fn:
            compiled = tf.function(lambda images: model_fn(images, training=False), reduce_retracing=True)
            self._keras_fns = {key: (model_fn, compiled)}  # keep only the latest model alive
        return self._keras_fns[key][1]


class _CompileIfTensorFlow:
    """Calls ``fn`` eagerly once; if it returned TensorFlow tensors, later calls go through one
    ``tf.function(fn)`` (fed tensors), otherwise ``fn`` stays a plain NumPy function."""

    def __init__(self, fn):
        self._fn = fn
        self._call = None

    def __call__(self, x):
        if self._call is not None:
            return self._call(x)
        outputs = self._fn(x)
        if isinstance(losses.logits_of(outputs), tf.Tensor):
            compiled = tf.function(self._fn, reduce_retracing=True)
            self._call = lambda images: compiled(tf.constant(images))
        else:
            self._call = self._fn
        return outputs


def per_example_l2(delta):
    """‖δ_i‖₂ over all non-batch axes, in float64."""
    return np.sqrt(np.sum(np.square(delta.reshape(len(delta), -1)), axis=1, dtype=np.float64))


def _expand(per_example, x):
    return per_example.reshape((-1,) + (1,) * (x.ndim - 1))
