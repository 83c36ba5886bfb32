"""The model registry: ``build(name, input_shape, num_classes, **options)``, ``names()``, ``register()``.

A *builder* is a function ``builder(input_shape, num_classes, *, option=default, ...) -> keras.Model``
whose keyword arguments are the model's options. Options are read from the builder's signature, so an
unknown option is reported with the list of valid ones before anything is built. Model families register
their builders when ``tfrobust.models`` is imported; later work adds models with ``register``.
"""

from tfrobust.core.registry import Registry, check_options, check_registration, keyword_options
from tfrobust.errors import check_choice

_BUILDERS = Registry("model")
#: What each model maps images to: "classify" (logits, the default) or "denoise" (images). ``names()``
#: lists one task at a time, so tools written for classifiers only see classifiers.
TASKS = ("classify", "denoise")
_TASKS = {}

# Positional arguments every builder takes; they are not options.
_BUILDER_ARGS = ("input_shape", "num_classes")


def register(name, builder, *, overwrite=False, task="classify"):
    """Registers ``builder`` under ``name`` and returns it.

    Args:
      name: the model name given to ``build``.
      builder: ``builder(input_shape, num_classes, **options) -> keras.Model`` (a function or a
        ``functools.partial`` of one, e.g. ``partial(resnet, depth=20)``).
      overwrite: replace an existing registration instead of raising.
      task: "classify" (images → logits) or "denoise" (images → images; ``num_classes`` is then None or
        the channel count).
    """
    check_choice("task", task, TASKS)
    _BUILDERS.register(name, builder, overwrite=overwrite)
    _TASKS[name] = task
    return builder


def names(task="classify"):
    """Sorted list of the registered model names of ``task`` ("classify" or "denoise")."""
    check_choice("task", task, TASKS)
    return sorted(name for name in _BUILDERS if _TASKS.get(name, "classify") == task)


def options(name):
    """Dictionary ``{option: default}`` of the options model ``name`` accepts."""
    check_choice("model", name, sorted(_BUILDERS))
    return dict(keyword_options(_BUILDERS[name], skip=_BUILDER_ARGS))


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
    check_choice("model", name, sorted(_BUILDERS))
    builder = _BUILDERS[name]
    check_options("model", name, builder, options, skip=_BUILDER_ARGS)
    return builder(input_shape, num_classes, **options)


__all__ = ["build", "check_options", "check_registration", "names", "options", "register"]
