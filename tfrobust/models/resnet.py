"""CIFAR-style ResNets: one builder, with block type, normalisation, convolution and pooling head
resolved through registries.

Registered models: ``resnet`` (all options), ``resnet18``, ``resnet20``, ``resnet56`` and
``preact_resnet18`` (thin partials of ``resnet``). ``wide_resnet.py`` builds on the same body.

Residual blocks are registered in ``BLOCKS`` (``register_block``). A block is a function

    block(x, filters, stride, *, norm, conv, name, **block_options) -> tensor

where ``norm(x, *, name)`` and ``conv(x, filters, kernel_size, strides, *, name)`` are the resolved
factories the block must use for its normalisations and convolutions, ``stride`` applies to the block's
first convolution (and its shortcut), and the layer producing the output must be named ``f"{name}_out"``
(e.g. ``stage2_block1_out``) so feature layers can be retrieved by name. Keyword arguments with defaults
are the block's options (``block_options=`` of the builder). A block registered with
``preactivation=True`` gets a final norm + ReLU after the last stage (as in pre-activation ResNets).
"""

import dataclasses
import functools
from collections.abc import Callable

import keras

from tfrobust.core.registry import Registry

from tfrobust.errors import TfrobustError, check_choice
from tfrobust.models import components, registry, stem
from tfrobust.models.components import HEADS, NORMS

#: depth → (blocks per stage, widths per stage). 18: He et al. 2016 ImageNet layout on CIFAR (as in
#: the feature-map paper and Madry-style code); 20/56: He et al. 2016 CIFAR networks (Sec. 4.2).
DEPTHS = {
    18: ((2, 2, 2, 2), (64, 128, 256, 512)),
    20: ((3, 3, 3), (16, 32, 64)),
    56: ((9, 9, 9), (16, 32, 64)),
}


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """A registered residual block: its function and whether it is a pre-activation block."""
    fn: Callable
    preactivation: bool = False


BLOCKS = Registry("block")


def register_block(name, fn=None, *, preactivation=False, overwrite=False):
    """Registers a residual block under ``name`` (usable as a decorator); see the module docstring."""
    if fn is None:
        return lambda f: register_block(name, f, preactivation=preactivation, overwrite=overwrite)
    registry.check_registration("block", BLOCKS, name, fn, overwrite)  # the spec is not callable: check fn
    BLOCKS[name] = BlockSpec(fn, bool(preactivation))
    return fn


def _needs_projection(x, filters, stride):
    return stride != 1 or x.shape[-1] != filters


def _conv_pair(x, filters, stride, *, norm, conv, name, dropout, inner):
    """conv 3×3 (stride) → norm → ReLU → [dropout] → conv 3×3: the body both blocks share.

    ``inner`` numbers the middle norm/ReLU (1 in the basic block, 2 in the pre-activation block, whose
    first norm/ReLU come before the shortcut), keeping the layer names checkpoints already use.
    """
    y = conv(x, filters, 3, stride, name=f"{name}_conv1")
    y = norm(y, name=f"{name}_norm{inner}")
    y = keras.layers.ReLU(name=f"{name}_relu{inner}")(y)
    if dropout:
        y = keras.layers.Dropout(dropout, name=f"{name}_dropout")(y)
    return conv(y, filters, 3, 1, name=f"{name}_conv2")


@register_block("basic")
def basic_block(x, filters, stride, *, norm, conv, name, dropout=0.0):
    """Post-activation basic block (He et al. 2016): conv-norm-ReLU-conv-norm, + shortcut, ReLU.

    The shortcut is a 1×1 convolution + norm when the stride or width changes ("option B"), else the
    identity. ``dropout`` (rate, default 0) sits between the two convolutions, as in WRNs.
    """
    y = _conv_pair(x, filters, stride, norm=norm, conv=conv, name=name, dropout=dropout, inner=1)
    y = norm(y, name=f"{name}_norm2")
    shortcut = x
    if _needs_projection(x, filters, stride):
        shortcut = conv(x, filters, 1, stride, name=f"{name}_shortcut_conv")
        shortcut = norm(shortcut, name=f"{name}_shortcut_norm")
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


@register_block("preact", preactivation=True)
def preact_block(x, filters, stride, *, norm, conv, name, dropout=0.0):
    """Pre-activation block (He et al. 2016b): norm-ReLU-conv-norm-ReLU-conv, + shortcut.

    A projection shortcut (1×1 conv, no norm) takes the *activated* input, as in PreActResNet and WRN
    code. ``dropout`` (rate, default 0) sits between the two convolutions (WRN).
    """
    pre = norm(x, name=f"{name}_norm1")
    pre = keras.layers.ReLU(name=f"{name}_relu1")(pre)
    shortcut = x
    if _needs_projection(x, filters, stride):
        shortcut = conv(pre, filters, 1, stride, name=f"{name}_shortcut_conv")
    y = _conv_pair(pre, filters, stride, norm=norm, conv=conv, name=name, dropout=dropout, inner=2)
    return keras.layers.Add(name=f"{name}_out")([shortcut, y])


def resnet(input_shape, num_classes, *, depth=None, stage_blocks=None, stage_widths=None,
           stem_width=None, strides=None, width=1.0, block="basic", block_options=None,
           norm="batch", conv="standard", pooling="avg",
           mean=None, std=None, upsample=1, upsample_interpolation="nearest"):
    """CIFAR-style ResNet: stride-1 3×3 stem conv, residual stages, global pooling head, Dense logits.

    Args:
      input_shape: (height, width, channels) of one [0, 1] image.
      num_classes: number of logits.
      depth: 18 (basic blocks [2,2,2,2], widths 64-128-256-512), 20 ([3,3,3], 16-32-64) or 56
        ([9,9,9], 16-32-64). Default 18, unless both ``stage_blocks`` and ``stage_widths`` are given.
      stage_blocks: blocks per stage, e.g. ``[1, 1, 1, 1]``; overrides the depth's layout.
      stage_widths: channels per stage before ``width``, e.g. ``[16, 16, 32, 64]``; overrides the
        depth's widths. Must have as many entries as ``stage_blocks``.
      stem_width: channels of the stem convolution before ``width`` (default: the first stage's width).
      strides: per-stage strides, "1-1-2-2" (or "1122", or a list); only the first convolution of each
        stage is strided. Default "1-2-2-2" for 4 stages, "1-2-2" for 3 (the paper's "s1-s2-s3-s4").
      width: multiplier of all channel counts (rounded, at least 1).
      block: a ``BLOCKS`` name: "basic" or "preact" (or a registered one).
      block_options: dict of extra keyword options for the block (e.g. ``{"dropout": 0.3}``).
      norm: a ``NORMS`` name: "batch", "group" or "none". Convolutions get a bias only with "none".
      conv: a ``CONVS`` name ("standard"), used for every convolution.
      pooling: a ``HEADS`` name: "avg" or "max" (global pooling before the classifier).
      mean, std, upsample, upsample_interpolation: input preprocessing, see ``stem.py``.

    Layer names: ``stem_conv``/``stem_norm``/``stem_relu``; blocks ``stage{s}_block{b}_*`` with output
    ``stage{s}_block{b}_out`` (1-based); ``features`` (the map fed to the head; after the final
    norm + ReLU for pre-activation blocks); ``pool`` (the head); ``logits`` (float32 Dense).

    Example:
      >>> model = resnet((32, 32, 3), 10, depth=18, strides="1-1-2-2")  # 8×8 features, paper's best
      >>> model.get_layer("features").output.shape
      (None, 8, 8, 512)

    Reference: He et al., "Deep Residual Learning for Image Recognition" (2016) and "Identity Mappings
    in Deep Residual Networks" (2016); stride configurations from Xu & Yang, "Understanding Adversarial
    Robustness from Feature Maps of Convolutional Layers", Sec. IV-B, Fig. 4. Choices where they are
    silent: projection shortcuts (option B) for ResNet-20/56 too (He et al. use zero-padding, option A);
    the pre-activation stem is a plain conv (its norm + ReLU is the first block's); see
    ``components.py`` for norm/conv defaults.
    """
    if depth is None and (stage_blocks is None or stage_widths is None):
        depth = 18
    if depth is not None:
        check_choice("depth", depth, sorted(DEPTHS))
        preset_blocks, preset_widths = DEPTHS[depth]
    else:
        preset_blocks = preset_widths = None
    blocks = components.check_int_list(
        "stage_blocks", preset_blocks if stage_blocks is None else stage_blocks)
    widths = components.check_int_list(
        "stage_widths", preset_widths if stage_widths is None else stage_widths)
    if len(blocks) != len(widths):
        raise TfrobustError(f"stage_blocks and stage_widths must have the same number of entries, "
                            f"got {list(blocks)} and {list(widths)}")
    model_name = "resnet" if depth is None else f"resnet{depth}"
    if block != "basic":
        model_name = f"{block}_{model_name}"
    return build_resnet_body(
        input_shape, num_classes, stage_blocks=blocks, stage_widths=widths, stem_width=stem_width,
        strides=strides, width=width, block=block, block_options=block_options, norm=norm,
        conv=conv, pooling=pooling, model_name=model_name,
        stem_options=dict(mean=mean, std=std, upsample=upsample,
                          upsample_interpolation=upsample_interpolation))


def build_resnet_body(input_shape, num_classes, *, stage_blocks, stage_widths, stem_width, strides,
                      width, block, block_options, norm, conv, pooling, model_name, stem_options):
    """Shared ResNet body used by ``resnet`` and ``wide_resnet`` (arguments as in ``resnet``)."""
    components.check_positive_int("num_classes", num_classes)
    components.check_positive_float("width", width)
    num_stages = len(stage_widths)
    if strides is None:
        strides = "-".join(["1"] + ["2"] * (num_stages - 1))
    stage_strides = components.parse_strides(strides, num_stages)
    spec = components.resolve("block", BLOCKS, block)
    norm_fn = components.resolve("norm", NORMS, norm)
    conv_fn = components.conv_factory(conv, norm)
    head_fn = components.resolve("pooling", HEADS, pooling)
    block_options = dict(block_options or {})
    registry.check_options("block", block, spec.fn, block_options,
                           skip=("x", "filters", "stride", "norm", "conv", "name"))
    stem_channels = components.scale_width(stage_widths[0] if stem_width is None else stem_width,
                                           width)

    inputs, x = stem.inputs_and_stem(input_shape, **stem_options)
    x = conv_fn(x, stem_channels, 3, 1, name="stem_conv")
    if not spec.preactivation:
        x = norm_fn(x, name="stem_norm")
        x = keras.layers.ReLU(name="stem_relu")(x)
    block_names = []
    for s, (count, channels, stride) in enumerate(zip(stage_blocks, stage_widths, stage_strides), 1):
        filters = components.scale_width(channels, width)
        for b in range(1, count + 1):
            name = f"stage{s}_block{b}"
            x = spec.fn(x, filters, stride if b == 1 else 1, norm=norm_fn, conv=conv_fn, name=name,
                        **block_options)
            block_names.append(name)
    if spec.preactivation:
        x = norm_fn(x, name="final_norm")
        x = keras.layers.ReLU(name="features")(x)
    else:
        x = components.name_output(x, "features")
    x = head_fn(x, name="pool")
    outputs = components.classifier(x, num_classes)
    model = keras.Model(inputs, outputs, name=model_name)
    layer_names = {layer.name for layer in model.layers}
    missing = [n for n in block_names if f"{n}_out" not in layer_names]
    if missing:
        raise TfrobustError(f"block {block!r} must name its output layer '<name>_out'; "
                            f"missing {missing[0]}_out")
    return model


registry.register("resnet", resnet)
registry.register("resnet18", functools.partial(resnet, depth=18))
registry.register("resnet20", functools.partial(resnet, depth=20))
registry.register("resnet56", functools.partial(resnet, depth=56))
registry.register("preact_resnet18", functools.partial(resnet, depth=18, block="preact"))
