"""Copies of a model whose layers of one class run with other configuration options.

Evaluation and export switch how some layers compute without changing what they compute: the CIFS mask
path for attacks, ConvNorm's builtin-op inference form for TFLite, the ODE solver for a fixed-step
surrogate. One function does it for all of them, so the copy is made the same way everywhere.
"""

import keras


def with_layer_options(model, layer_class, options, *, keep_weight=None):
    """A copy of the functional or sequential ``model`` whose ``layer_class`` layers get ``options``.

    Every layer is rebuilt from its config (``options`` merged into the config of each ``layer_class``
    layer; entries whose value is None are left as they were) and every weight is copied.

    Args:
      model: a functional or sequential Keras model.
      layer_class: the layer class to reconfigure (subclasses included).
      options: dict of config entries to set.
      keep_weight: optional ``keep_weight(layer, weight) -> bool``: weights of the copy for which it is
        True keep the copy's fresh value instead of the source's (e.g. an evaluation counter).
    """
    changes = {key: value for key, value in options.items() if value is not None}

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, layer_class):
            config.update(changes)
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    for source, target in zip(model.layers, copy.layers):
        weights = source.get_weights()
        if keep_weight is not None:
            weights = [fresh if keep_weight(target, variable) else value
                       for value, fresh, variable in zip(weights, target.get_weights(), target.weights)]
        target.set_weights(weights)
    return copy
