"""What a layer declares it needs from the training and evaluation engines.

Layers are ordinary Keras layers to the engines; a layer with needs of its own says so with duck-typed
attributes, read generically here, so no engine imports a concrete layer module:

* ``uses_training_labels = True`` (class attribute): the layer reads the true labels in training mode
  from ``tfrobust.core.training_labels.current_training_labels()`` (CIFS). A plain ``fit`` cannot
  provide them; ``tfrobust.training`` then trains through ``AdversarialModel``, which enters the
  context around every training-mode forward pass.
* ``diagnostics()`` (method): ``{name: scalar tensor or variable}`` describing the layer's last forward
  pass (the ODE block's number of function evaluations, ``"nfe"``). ``collect_diagnostics`` sums each
  name over a model's layers; ``tfrobust.training.DiagnosticsLogger`` logs them per epoch and the
  evaluation reads them after a forward pass.
"""

import keras


def walk_layers(model):
    """Every layer inside ``model`` (nested models and a training wrapper's ``.model`` included),
    each once, depth first."""
    found, stack, seen = [], [model], set()
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if layer is not model:
            found.append(layer)
        children = list(getattr(layer, "layers", None) or [])
        inner = getattr(layer, "model", None)  # a training wrapper (AdversarialModel) holds its model here
        if isinstance(inner, keras.layers.Layer):
            children.append(inner)
        stack.extend(reversed(children))
    return found


def uses_training_labels(layer):
    """Whether ``layer`` declares that it reads the training labels."""
    return bool(getattr(layer, "uses_training_labels", False))


def training_label_layers(model):
    """The layers of ``model`` (nested included) that read the training labels."""
    return [layer for layer in walk_layers(model) if uses_training_labels(layer)]


def diagnostic_layers(model):
    """The layers of ``model`` (nested included) that report diagnostics."""
    return [layer for layer in walk_layers(model) if callable(getattr(layer, "diagnostics", None))]


def collect_diagnostics(model, layers=None):
    """``{name: float}``: each diagnostic summed over the layers of ``model`` that report it (read now,
    i.e. for the last forward pass). Empty when no layer reports diagnostics."""
    totals = {}
    for layer in diagnostic_layers(model) if layers is None else layers:
        for name, value in layer.diagnostics().items():
            value = value.numpy() if hasattr(value, "numpy") else value
            totals[name] = totals.get(name, 0.0) + float(value)
    return totals
