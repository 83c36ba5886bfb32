"""BPDA: Backward Pass Differentiable Approximation (Athalye, Carlini & Wagner, ICML 2018, §4.1).

A defense built from a non-differentiable step (rounding/quantisation, JPEG-like compression,
thresholding, a random resize-and-pad) gives gradient attacks zero or useless gradients, and its robust
accuracy is then an artefact of the attack failing. BPDA keeps the forward pass exactly as it is and
replaces that step, *on the backward pass only*, by a differentiable approximation g with g(x) ≈ f(x):
the identity by default (the paper's choice for steps that approximately preserve their input), or a
function you give. The result is an ordinary model, so every white-box attack and every suite runs
through it unchanged:

    attackable = bpda_model(model, ["quantize"])          # named Keras layers
    run_suite(attackable, x, y, build_suite("standard", norm="linf", eps=8/255))
    attackable_fn = BPDA(model_fn, input_transform=jpeg)  # a transform applied before a callable

Report it as what it is: the robust accuracy of the *defended model* (forward passes are untouched, so
predictions and accuracy are those of the deployed model) under an adaptive (BPDA) attack.
"""

import keras
import tensorflow as tf

from tfrobust.errors import TfrobustError


def straight_through(forward, approximation=None):
    """``fn(x)`` whose value is exactly ``forward(x)`` and whose input gradient is that of
    ``approximation(x)`` (the identity when None, which needs ``forward`` to keep the shape)."""

    def fn(x):
        x = tf.convert_to_tensor(x)

        @tf.custom_gradient
        def bpda(inputs):
            outputs = forward(inputs)
            if approximation is None and outputs.shape.rank is not None and inputs.shape.rank is not None \
                    and outputs.shape[1:] != inputs.shape[1:]:
                raise TfrobustError(f"BPDA with the identity approximation needs a shape-preserving step; "
                                    f"got {inputs.shape} → {outputs.shape}: give an approximation")

            def grad(upstream, variables=None):
                if approximation is None:
                    input_grad = tf.cast(upstream, inputs.dtype)
                else:
                    with tf.GradientTape() as tape:
                        tape.watch(inputs)
                        approx = approximation(inputs)
                    input_grad = tape.gradient(approx, inputs, output_gradients=tf.cast(upstream, approx.dtype))
                # The step's own weights (if any) get no gradient: BPDA is for attacking inputs.
                return input_grad, [tf.zeros_like(v) for v in (variables or [])]

            return outputs, grad

        return bpda(x)

    return fn


class _BPDALayer(keras.layers.Layer):
    """Calls ``layer`` on the forward pass; backward through ``approximation`` (identity by default)."""

    def __init__(self, layer, approximation=None, **kwargs):
        super().__init__(name=f"bpda_{layer.name}", **kwargs)
        self.layer = layer
        self.approximation = approximation

    def call(self, inputs, training=None):
        return straight_through(lambda x: self.layer(x, training=training), self.approximation)(inputs)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)


def bpda_model(model, layer_names, approximation=None):
    """A copy of the functional/Sequential ``model`` that shares all its layers (and weights) but runs
    the layers named in ``layer_names`` through ``straight_through`` (same forward values, backward pass
    through ``approximation``: identity by default, or a callable, or a dict name → callable).

    Raises ``TfrobustError`` for a name the model does not have or a subclassed model.
    """
    names = [layer_names] if isinstance(layer_names, str) else list(layer_names)
    known = {layer.name for layer in model.layers}
    missing = [name for name in names if name not in known]
    if missing:
        raise TfrobustError(f"BPDA: the model has no layer named {', '.join(map(repr, missing))}; "
                            f"layers: {', '.join(sorted(known))}")
    if not isinstance(model, (keras.Sequential, keras.Model)) or not getattr(model, "_is_graph_network", True):
        raise TfrobustError("BPDA needs a functional or Sequential model (a subclassed model has no graph "
                            "to rewire); wrap the step in BPDA(model_fn, input_transform=...) instead")

    def clone(layer):
        if layer.name not in names:
            return layer
        approx = approximation.get(layer.name) if isinstance(approximation, dict) else approximation
        return _BPDALayer(layer, approx)

    try:
        return keras.models.clone_model(model, clone_function=clone)
    except ValueError as error:
        raise TfrobustError(f"BPDA could not rewire {model.name}: {error}") from error


class BPDA:
    """``BPDA(model_fn, input_transform, approximation=None)(x) = model_fn(f(x))`` with ``f`` the
    (non-differentiable) ``input_transform``, differentiated as ``approximation`` (identity by default).

    Use it in place of ``model_fn`` with any attack, e.g. for an input-quantisation or JPEG defense
    written as a function in front of the classifier.
    """

    def __init__(self, model_fn, input_transform, approximation=None):
        if not callable(model_fn) or not callable(input_transform):
            raise TfrobustError("BPDA needs a callable model_fn and input_transform")
        self.model_fn = model_fn
        self.input_transform = input_transform
        self.approximation = approximation
        self._transform = straight_through(input_transform, approximation)

    def __call__(self, x):
        return self.model_fn(self._transform(x))

    def get_config(self):
        transform = getattr(self.input_transform, "__name__", repr(self.input_transform))
        return {"name": "BPDA", "input_transform": transform,
                "approximation": getattr(self.approximation, "__name__", "identity")}
