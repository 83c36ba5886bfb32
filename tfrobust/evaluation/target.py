"""What the evaluation attacks: a live Keras model, a TF callable or an exported Artifact, seen through
one small interface (a NumPy ``predict`` for scoring, a TF ``logits_fn`` where gradients exist)."""

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
    if isinstance(model, keras.Model):
        logits_fn = lambda x: model(x, training=False)  # inference mode: BN stats, no dropout
        name = name or model.name
    elif callable(model):
        logits_fn = model
        name = name or getattr(model, "__name__", type(model).__name__)
    else:
        raise TypeError(f"cannot evaluate a {type(model).__name__}: give a keras.Model, an Artifact or a callable")
    compiled = tf.function(lambda x: tf.cast(logits_of(logits_fn(x)), tf.float32), reduce_retracing=True)

    def predict(x):
        return compiled(tf.constant(np.asarray(x, np.float32))).numpy()

    return Target(name, predict, logits_fn)
