"""Parts shared by the model builders, resolved by name through small registries.

Builders never hard-code a normalisation, a convolution or a pooling head: they look the option value
up in one of these registries, so new work plugs in by registering a factory — every builder that takes
the option picks it up, no builder is copied.

* ``NORMS`` (builder option ``norm``): ``norm(x, *, name) -> tensor`` of the same shape.
  Built in: "batch", "group", "none".
* ``CONVS`` (option ``conv``): ``conv(x, filters, kernel_size, strides, *, use_bias, name) -> tensor``.
  Built in: "standard".
* ``HEADS`` (option ``pooling``): ``head(x, *, name) -> [batch, features]`` from a feature map.
  Built in: "avg", "max".

Factories are functional: they create their Keras layers (named from ``name``) and apply them to ``x``.
A conv factory receives *every* convolution of a builder that takes ``conv`` (3×3, 5×5 and 1×1
shortcut projections); one that only replaces k×k convolutions with k > 1 (e.g. an EVP conv) should
delegate the others to ``CONVS["standard"]``. Residual blocks have their own registry in ``resnet.py``.

Choices where the papers are silent: BatchNorm momentum 0.9 and epsilon 1e-5 (PyTorch's defaults, which
the reference implementations use); GroupNorm epsilon 1e-5 with the largest divisor of the channel count
that is ≤ 32 as the number of groups; convolutions with "same" padding (the same output sizes as
PyTorch's ``padding=k//2`` for odd k; with stride 2 TensorFlow pads bottom/right only) and He-normal
initialisation; no kernel regularisers (weight decay is the optimizer's job).
"""

import keras

from tfrobust.core.group_norm import MAX_GROUPS, group_count  # noqa: F401  (re-exported for builders)
from tfrobust.core.registry import Registry
from tfrobust.errors import TfrobustError, check_positive_float, check_positive_int  # noqa: F401  (re-exported)

NORMS = Registry("norm")
CONVS = Registry("conv")
HEADS = Registry("head")


def _registrar(kind, registry):
    def register(name, fn=None, *, overwrite=False):
        if fn is None:  # used as a decorator: @register_norm("mine")
            return registry.decorator(name, overwrite=overwrite)
        return registry.register(name, fn, overwrite=overwrite)

    register.__name__ = f"register_{kind}"
    register.__doc__ = (f"Registers a {kind} factory under ``name`` (usable as a decorator); "
                        f"see the module docstring for the contract.")
    return register


register_norm = _registrar("norm", NORMS)
register_conv = _registrar("conv", CONVS)
register_head = _registrar("head", HEADS)


def resolve(option, registry, value):
    """Returns ``registry[value]``, or raises naming the option and listing the valid values."""
    return registry.lookup(value, option=option)


# -- normalisations -------------------------------------------------------------------------------
@register_norm("batch")
def batch_norm(x, *, name):
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)(x)


@register_norm("group")
def group_norm(x, *, name):
    return keras.layers.GroupNormalization(groups=group_count(x.shape[-1]), epsilon=1e-5,
                                           name=name)(x)


@register_norm("none")
def no_norm(x, *, name):
    del name
    return x


# -- convolutions ---------------------------------------------------------------------------------
@register_conv("standard")
def standard_conv(x, filters, kernel_size, strides=1, *, use_bias, name):
    return keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same",
                               use_bias=use_bias, kernel_initializer="he_normal", name=name)(x)


# -- pooling heads --------------------------------------------------------------------------------
@register_head("avg")
def average_head(x, *, name):
    return keras.layers.GlobalAveragePooling2D(name=name)(x)


@register_head("max")
def max_head(x, *, name):
    return keras.layers.GlobalMaxPooling2D(name=name)(x)


# -- small helpers shared by the builders -----------------------------------------------------------
def conv_factory(conv, norm):
    """The ``conv`` factory with ``use_bias`` bound: a bias only when no normalisation follows."""
    fn = resolve("conv", CONVS, conv)

    def apply(x, filters, kernel_size, strides=1, *, name):
        return fn(x, filters, kernel_size, strides, use_bias=(norm == "none"), name=name)

    return apply


def classifier(x, num_classes):
    """The final Dense layer ``logits``, always float32 (so mixed precision still gives float32 logits)."""
    return keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)


def name_output(x, name):
    """Gives ``x`` a stable layer name (an Identity layer) so it can be retrieved with ``get_layer``."""
    return keras.layers.Identity(name=name)(x)


def check_int_list(name, value, length=None):
    """Returns ``value`` as a tuple of positive ints (optionally of a given length)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise TfrobustError(f"{name} must be a list of positive integers, got {value!r}")
    items = tuple(value)
    if (not items or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in items)):
        raise TfrobustError(f"{name} must be a list of positive integers, got {value!r}")
    if length is not None and len(items) != length:
        raise TfrobustError(f"{name} must have {length} entries, got {list(items)} ({len(items)})")
    return items


def scale_width(channels, width):
    """``channels × width`` rounded, at least 1."""
    return max(1, int(round(channels * width)))


def parse_strides(value, num_stages, *, name="strides"):
    """Parses a per-stage stride configuration into a tuple of ``num_stages`` positive ints.

    Accepts the paper's notation ``"1-1-2-2"``, the reference code's compact ``"1122"``, or a sequence
    of ints ``(1, 1, 2, 2)``.
    """
    example = "-".join(["1"] + ["2"] * (num_stages - 1))
    if isinstance(value, str):
        text = value.strip()
        parts = text.split("-") if "-" in text else list(text)
        if not parts or not all(p.strip().isdigit() and int(p) >= 1 for p in parts):
            raise TfrobustError(
                f"{name} must be a string like {example!r} of positive integers, got {value!r}")
        strides = tuple(int(p) for p in parts)
    elif isinstance(value, (list, tuple)):
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value):
            raise TfrobustError(f"{name} must hold positive integers, got {value!r}")
        strides = tuple(value)
    else:
        raise TfrobustError(f"{name} must be a string like {example!r}, got {value!r}")
    if len(strides) != num_stages:
        raise TfrobustError(
            f"{name} must have {num_stages} entries (one per stage, e.g. {example!r}), "
            f"got {value!r} with {len(strides)}")
    return strides
