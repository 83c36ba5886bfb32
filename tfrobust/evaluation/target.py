"""What the evaluation attacks: a live Keras model, a TF callable or an exported Artifact, seen through
one small interface (a NumPy ``predict`` for scoring, a TF ``logits_fn`` where gradients exist).

Attacks need logits. A Keras model that ends in a softmax (``Dense(…, activation="softmax")``, an
``Activation("softmax")`` or a ``Softmax`` layer) would be attacked on probabilities, where CE
saturates and DLR's denominator shrinks (on a 10-class linear model APGD-T reached 7 % on logits but
33.5 % on probabilities): ``as_target`` takes the pre-softmax tensor instead (same argmax, so the
accuracy definition is unchanged) and says so in ``Target.notes``, which reports print. Other models
whose outputs look like probabilities are flagged by the sanity checks and ``AutoAttack`` warns.
"""

import copy
import dataclasses
import typing

import keras
import numpy as np
import tensorflow as tf

from tfrobust.attacks.losses import logits_of
from tfrobust.export import Artifact


@dataclasses.dataclass
class Target:
    """A model under evaluation.

    Attributes:
      name: label used in reports.
      predict: NumPy images [N,H,W,C] → NumPy logits [N,K].
      logits_fn: TF images → logits (or a dict with "logits"), differentiable; None when the model has
        no gradients (TFLite, served endpoints).
      query_count: () → images the model has scored so far (an Artifact's ``queries``), or None.
    """

    name: str
    predict: typing.Callable
    logits_fn: typing.Callable | None = None
    query_count: typing.Callable | None = None
    notes: list = dataclasses.field(default_factory=list)

    @property
    def differentiable(self):
        return self.logits_fn is not None


def as_target(model, name=None):
    """Wraps a ``keras.Model``, an ``Artifact``, a TF callable or a ``Target`` as a ``Target``."""
    if isinstance(model, Target):
        return model
    if isinstance(model, Artifact):
        return Target(name or model.path, model.predict, model.logits_fn if model.differentiable else None,
                      lambda: model.queries)
    notes = []
    if isinstance(model, keras.Model):
        name = name or model.name
        logits_fn, note = _pre_softmax(model)
        if note:
            notes.append(note)
        else:
            logits_fn = lambda x: model(x, training=False)  # inference mode: BN stats, no dropout
        # Compiled once: query-based attacks call it thousands of times (eager: 2.4x slower per query).
        logits_fn = tf.function(logits_fn, reduce_retracing=True)
    elif callable(model):
        logits_fn = model
        name = name or getattr(model, "__name__", type(model).__name__)
    else:
        raise TypeError(f"cannot evaluate a {type(model).__name__}: give a keras.Model, an Artifact or a callable")
    compiled = tf.function(lambda x: tf.cast(logits_of(logits_fn(x)), tf.float32), reduce_retracing=True)

    def predict(x):
        return compiled(tf.constant(np.asarray(x, np.float32))).numpy()

    return Target(name, predict, logits_fn, notes=notes)


def _is_softmax(activation):
    return activation is keras.activations.softmax or getattr(activation, "__name__", "") == "softmax"


def _pre_softmax(model):
    """(logits_fn, note) computing ``model``'s pre-softmax tensor when its last layer applies a softmax,
    else (None, None). The layers are shared, not copied: the logits follow the model's weights."""
    try:
        inputs, outputs = model.inputs, model.outputs
    except AttributeError:  # a Sequential model never built on an Input
        return None, None
    if not model.layers or len(inputs or []) != 1 or len(outputs or []) != 1:
        return None, None
    last = model.layers[-1]
    if isinstance(last, keras.layers.Softmax) or (isinstance(last, keras.layers.Activation)
                                                   and _is_softmax(last.activation)):
        head = None
    elif _is_softmax(getattr(last, "activation", None)):
        head = copy.copy(last)  # same variables, linear activation
        head.activation = keras.activations.linear
    else:
        return None, None
    try:
        body = keras.Model(inputs[0], last.input)
    except (AttributeError, ValueError, TypeError):  # a subclassed model has no graph to cut
        return None, None

    def logits_fn(x):
        hidden = body(x, training=False)
        return hidden if head is None else head(hidden, training=False)

    note = (f"its last layer {last.name!r} applies a softmax; attacked on the pre-softmax tensor (logits), "
            "not on probabilities")
    return logits_fn, note
