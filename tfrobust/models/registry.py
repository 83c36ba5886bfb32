"""The model registry: ``build(name, input_shape, num_classes, **options)``, ``names()``, ``register()``.

A *builder* is a function ``builder(input_shape, num_classes, *, option=default, ...) -> keras.Model``
whose keyword arguments are the model's options. Options are read from the builder's signature, so an
unknown option is reported with the list of valid ones before anything is built. Model families register
their builders when ``tfrobust.models`` is imported; later work adds models with ``register``.
"""

import inspect

from tfrobust.errors import TfrobustError, check_choice

_BUILDERS = {}

# Positional arguments every builder takes; they are not options.
_BUILDER_ARGS = ("input_shape", "num_classes")


def register(name, builder, *, overwrite=False):
    """Registers ``builder`` under ``name`` and returns it.

    Args:
      name: the model name given to ``build``.
      builder: ``builder(input_shape, num_classes, **options) -> keras.Model`` (a function or a
        ``functools.partial`` of one, e.g. ``partial(resnet, depth=20)``).
      overwrite: replace an existing registration instead of raising.
    """
    check_registration("model", _BUILDERS, name, builder, overwrite)
    _BUILDERS[name] = builder
    return builder


def names():
    """Sorted list of the registered model names."""
    return sorted(_BUILDERS)


def options(name):
    """Dictionary ``{option: default}`` of the options model ``name`` accepts."""
    check_choice("model", name, names())
    return dict(_keyword_options(_BUILDERS[name], skip=_BUILDER_ARGS))


def build(name, input_shape, num_classes, **options):
    """Builds model ``name``: float32 images in [0, 1], NHWC → float32 logits ``[batch, num_classes]``.

    Args:
      name: a registered model name (``names()`` lists them).
      input_shape: ``(height, width, channels)`` of one image.
      num_classes: number of output logits.
      **options: the model's options (``options(name)`` lists them with their defaults).

    Returns:
      An uncompiled ``keras.Model``.

    Example:
      >>> model = build("resnet18", (32, 32, 3), 10, strides="1-1-2-2", mean=[0.49, 0.48, 0.45],
      ...               std=[0.25, 0.24, 0.26])
    """
    check_choice("model", name, names())
    builder = _BUILDERS[name]
    check_options("model", name, builder, options, skip=_BUILDER_ARGS)
    return builder(input_shape, num_classes, **options)


def check_options(kind, name, fn, given, *, skip=()):
    """Raises TfrobustError if ``given`` holds a keyword ``fn`` does not accept (``skip`` excluded).

    Used for model options and for the option dictionaries forwarded to registered parts (blocks).
    """
    valid = _keyword_options(fn, skip=skip)
    if valid is None:  # fn takes **kwargs: it checks for itself
        return
    for key in given:
        if key not in valid:
            listed = ", ".join(valid) or "(none)"
            raise TfrobustError(
                f"unknown option {key!r} for {kind} {name!r}; valid options: {listed}")


def _keyword_options(fn, *, skip):
    """``{name: default}`` of the keyword arguments of ``fn``, or None if it takes ``**kwargs``."""
    result = {}
    for parameter in inspect.signature(fn).parameters.values():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            return None
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL or parameter.name in skip:
            continue
        if parameter.default is inspect.Parameter.empty:
            continue  # a required positional argument of the callable, not an option
        result[parameter.name] = parameter.default
    return result


def check_registration(kind, registry, name, fn, overwrite):
    if not isinstance(name, str) or not name:
        raise TfrobustError(f"{kind} name must be a non-empty string, got {name!r}")
    if not callable(fn):
        raise TfrobustError(f"{kind} {name!r} must be registered with a callable, got {fn!r}")
    if name in registry and not overwrite:
        raise TfrobustError(f"{kind} {name!r} is already registered; pass overwrite=True to replace it")
