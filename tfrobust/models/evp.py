"""EVPNet and SE baselines as options of the existing builders (Sun, Li & Zhang, "Extreme Value Preserving
Networks", arXiv:2011.08367, §4–5).

Registered parts:
  CONVS  "evp"   every k×k (k > 1) convolution → ``EVPConv`` (the paper's general recipe, §4.2); 1×1
                 convolutions (shortcuts) stay standard.
  BLOCKS "se"    SE-ResNet basic block: conv1 → SE → norm → ReLU → conv2 → norm, + shortcut, ReLU.
         "evp"   EVP basic block: conv1 is an ``EVPConv`` (pDoG → tReLU → SE → max), then norm → ReLU →
                 conv2 → norm, + shortcut, ReLU. Block options ``pdog``/``trelu`` give Table 1's ablation.
  HEADS  "pnl"   ``ProjectedNormalization`` with a 1×1 projection to as many channels as the input, ℓ2.

Registered models:
  ``se_resnet20`` / ``se_resnet56``     the paper's baselines (SE-ResNet-20/56).
  ``evp_resnet`` (+ ``evp_resnet20`` / ``evp_resnet56``)   EVPConv for the input convolution and the
                 first 3×3 convolution of each block, PNL instead of GAP (§5.1); options ``pdog``,
                 ``trelu``, ``pnl`` switch each component (Table 1).
  ``evp_small_cnn``                      ``small_cnn`` with every 3×3 convolution an EVPConv and BatchNorm
                                         after it (28×28 data; ``norm="none"`` for the literal layout).
  ``replace_convs_with_evp(model)``      the swap on any functional model of the user's (keep a
                                         normalisation after each EVPConv, see ``evp_small_cnn``).

The small CNNs flatten their last feature map (no global average pooling), so they have no PNL option:
PNL replaces GAP (§4.1).

Choices where the paper is silent (one place, so the builders agree):
  * The SE sits where EVPConv puts it — right after the first convolution of a block — in the SE
    baseline too (the paper moves SE "to be consistent with our EVPConv block for fair comparison", §5.2).
  * EVPConv keeps the k×k convolution that produced f0; BatchNorm and ReLU follow the EVPConv as they
    followed the convolution it replaces.
  * Ablation without pDoG: the block is the SE block; with ``trelu`` the tReLU replaces the ReLU after
    the first convolution ("tReLU replacing ReLU in standard CNNs", Table 1). The stem is an EVPConv only
    when pDoG is on (tReLU off ⇒ |d|, eq. 12).
  * PNL projects to as many channels as the last stage has (64 for ResNet-20/56), ℓ2-normalised.
"""

import functools

import keras

from tfrobust.errors import TfrobustError, check_choice
from tfrobust.layers import EVPConv, ProjectedNormalization, SqueezeExcite, TReLU
from tfrobust.layers.trelu import THRESHOLD_MODES
from tfrobust.models import cnn, registry, resnet
from tfrobust.models.components import CONVS, register_conv, register_head
from tfrobust.models.resnet import register_block

#: SE reduction ratio (Hu et al.'s default; the paper does not give one).
SE_REDUCTION = 16


@register_conv("evp")
def evp_conv(x, filters, kernel_size, strides=1, *, use_bias, name):
    """EVPConv for k×k (k > 1) convolutions, the standard convolution for 1×1 ones."""
    if kernel_size < 2:
        return CONVS["standard"](x, filters, kernel_size, strides, use_bias=use_bias, name=name)
    return EVPConv(filters, kernel_size, strides=strides, use_bias=use_bias, se_reduction=SE_REDUCTION,
                   name=name)(x)


@register_head("pnl")
def pnl_head(x, *, name):
    return ProjectedNormalization(units=x.shape[-1], p=2.0, name=name)(x)


def _shortcut(x, filters, stride, *, norm, conv, name):
    if stride != 1 or x.shape[-1] != filters:
        x = conv(x, filters, 1, stride, name=f"{name}_shortcut_conv")
        x = norm(x, name=f"{name}_shortcut_norm")
    return x


def _finish_block(x, y, filters, stride, *, norm, conv, name, dropout):
    """Shared tail of the SE/EVP blocks: (dropout) → conv2 → norm, + shortcut, ReLU ``{name}_out``."""
    if dropout:
        y = keras.layers.Dropout(dropout, name=f"{name}_dropout")(y)
    y = conv(y, filters, 3, 1, name=f"{name}_conv2")
    y = norm(y, name=f"{name}_norm2")
    y = keras.layers.Add(name=f"{name}_add")([_shortcut(x, filters, stride, norm=norm, conv=conv, name=name), y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


@register_block("se")
def se_block(x, filters, stride, *, norm, conv, name, se_reduction=SE_REDUCTION, dropout=0.0):
    """SE basic block: conv1 → SqueezeExcite → norm → ReLU → conv2 → norm, + shortcut (option B), ReLU."""
    y = conv(x, filters, 3, stride, name=f"{name}_conv1")
    y = SqueezeExcite(se_reduction, name=f"{name}_se")(y)
    y = norm(y, name=f"{name}_norm1")
    y = keras.layers.ReLU(name=f"{name}_relu1")(y)
    return _finish_block(x, y, filters, stride, norm=norm, conv=conv, name=name, dropout=dropout)


@register_block("evp")
def evp_block(x, filters, stride, *, norm, conv, name, pdog=True, trelu=True, trelu_mode="block",
              se_reduction=SE_REDUCTION, dropout=0.0):
    """EVP basic block (§5.1): the first 3×3 convolution is an EVPConv; ``pdog``/``trelu`` ablate (Table 1).

    pdog=True: conv1 = EVPConv(use_trelu=trelu) → norm → ReLU. pdog=False: the SE block, with a tReLU in
    place of the ReLU after conv1 when ``trelu``.
    """
    check_choice("trelu_mode", trelu_mode, THRESHOLD_MODES)
    if pdog:
        y = EVPConv(filters, 3, strides=stride, use_trelu=trelu, trelu_mode=trelu_mode, se_reduction=se_reduction,
                    name=f"{name}_conv1")(x)
        y = norm(y, name=f"{name}_norm1")
        y = keras.layers.ReLU(name=f"{name}_relu1")(y)
    else:
        y = conv(x, filters, 3, stride, name=f"{name}_conv1")
        y = SqueezeExcite(se_reduction, name=f"{name}_se")(y)
        y = norm(y, name=f"{name}_norm1")
        y = (TReLU(trelu_mode, name=f"{name}_trelu1") if trelu else keras.layers.ReLU(name=f"{name}_relu1"))(y)
    return _finish_block(x, y, filters, stride, norm=norm, conv=conv, name=name, dropout=dropout)


def replace_convs_with_evp(model, select=None, *, use_trelu=True, trelu_mode="block",
                           se_reduction=SE_REDUCTION):
    """A copy of functional/sequential ``model`` whose selected k×k (k > 1) ``Conv2D`` layers are EVPConvs
    (same name, filters, kernel size, stride and bias; EVPNet §4.2: "EVPConv can be plugged to replace any
    k×k (k > 1) conv-layer"). Every layer is re-created from its config: the copy has fresh weights.

    Args:
      model: a functional or sequential ``keras.Model``.
      select: ``layer -> bool`` choosing the convolutions to replace (default: every k×k Conv2D, k > 1).
      use_trelu, trelu_mode, se_reduction: the EVPConv options.

    A replaced convolution's activation is dropped: EVPConv's output is ≥ 0, so ReLU would be the identity
    (other activations are refused). Convolutions must use "same" padding, square kernels, equal strides
    and no dilation (what EVPConv reproduces).

    Keep a normalisation after each replaced convolution. Measured with SGD 0.05 / momentum 0.9 on 1,024
    Fashion-MNIST images: ``madry_cnn(width=0.25)`` (no normalisation) with both 5×5 convolutions swapped reaches a NaN
    loss in its second epoch, and ``small_cnn(width=0.5, norm="none", conv="evp")`` stays at loss ln 10 for two epochs
    (presumably tReLU's thresholds, initialised in U[0, 1], zero the unnormalised responses).
    """
    select = select or (lambda layer: True)

    def clone(layer):
        config = layer.get_config()
        if type(layer) is keras.layers.Conv2D and max(config["kernel_size"]) > 1 and select(layer):
            if (config["padding"] != "same" or len(set(config["kernel_size"])) != 1
                    or len(set(config["strides"])) != 1 or tuple(config["dilation_rate"]) != (1, 1)
                    or config["groups"] != 1):
                got = ", ".join(f"{key}={config[key]!r}" for key in ("kernel_size", "padding", "strides",
                                                                      "dilation_rate", "groups"))
                raise TfrobustError(f"layer {layer.name!r}: EVPConv replaces square 'same'-padded, undilated, "
                                    f"ungrouped convolutions with equal strides only; got {got}")
            if config["activation"] not in ("linear", "relu"):
                raise TfrobustError(f"layer {layer.name!r}: activation must be 'linear' or 'relu' to become an "
                                    f"EVPConv, got {config['activation']!r}")
            return EVPConv(config["filters"], config["kernel_size"][0], strides=config["strides"][0],
                           use_bias=config["use_bias"], use_trelu=use_trelu, trelu_mode=trelu_mode,
                           se_reduction=se_reduction, name=layer.name)
        return layer.__class__.from_config(config)

    return keras.models.clone_model(model, clone_function=clone)


def replace_stem_with_evp(model, *, use_trelu=True, trelu_mode="block", se_reduction=SE_REDUCTION):
    """A copy of a ResNet-family ``model`` whose ``stem_conv`` (a Conv2D) is an EVPConv with the same
    filters, kernel and stride; every other layer is re-created from its config (fresh weights)."""
    return replace_convs_with_evp(model, lambda layer: layer.name == "stem_conv", use_trelu=use_trelu,
                                  trelu_mode=trelu_mode, se_reduction=se_reduction)


def se_resnet(input_shape, num_classes, *, depth=20, se_reduction=SE_REDUCTION, stage_blocks=None,
              stage_widths=None, strides=None, width=1.0, norm="batch", conv="standard", pooling="avg",
              mean=None, std=None, upsample=1, upsample_interpolation="nearest"):
    """SE-ResNet (the EVPNet paper's baseline): ``resnet`` with the "se" block; options as ``resnet``
    plus ``se_reduction`` (16)."""
    return resnet.resnet(
        input_shape, num_classes, depth=None if stage_blocks and stage_widths else depth,
        stage_blocks=stage_blocks, stage_widths=stage_widths, strides=strides, width=width, block="se",
        block_options={"se_reduction": se_reduction}, norm=norm, conv=conv, pooling=pooling, mean=mean, std=std,
        upsample=upsample, upsample_interpolation=upsample_interpolation)


def evp_resnet(input_shape, num_classes, *, depth=20, pdog=True, trelu=True, pnl=True, trelu_mode="block",
               se_reduction=SE_REDUCTION, stage_blocks=None, stage_widths=None, strides=None, width=1.0,
               norm="batch", mean=None, std=None, upsample=1, upsample_interpolation="nearest"):
    """EVP-ResNet (§5.1): EVPConv for the input convolution and the first 3×3 convolution of every block,
    PNL instead of global average pooling. All three components on is EVPNet; all off is SE-ResNet.

    Args:
      input_shape, num_classes, depth, stage_blocks, stage_widths, strides, width, norm, mean, std,
        upsample, upsample_interpolation: as ``resnet`` (depth 20 by default).
      pdog: EVPConv (pDoG) in the stem and the blocks (Table 1 "+pDoG").
      trelu: tReLU on the pDoG differences; without pDoG, tReLU replaces the blocks' first ReLU.
      pnl: PNL head instead of global average pooling.
      trelu_mode: "block" (one θ per tReLU, default: §4.1 "θ is designed as a block-level parameter by
        default") or "channel" (§5.1 says its CIFAR runs initialise a "channel-level parameter θ"; the paper
        contradicts itself, so pass ``trelu_mode="channel"`` for that reading).
      se_reduction: SE reduction ratio (16).

    Layer names as ``resnet``; the stem EVPConv is ``stem_conv``, block EVPConvs ``stage{s}_block{b}_conv1``.

    Example:
      >>> model = evp_resnet((32, 32, 3), 10, depth=20)                    # EVP-ResNet-20
      >>> ablation = evp_resnet((32, 32, 3), 10, pdog=True, trelu=False)  # Table 1 row "+pDoG +PNL"
    """
    check_choice("trelu_mode", trelu_mode, THRESHOLD_MODES)
    model = resnet.resnet(
        input_shape, num_classes, depth=None if stage_blocks and stage_widths else depth,
        stage_blocks=stage_blocks, stage_widths=stage_widths, strides=strides, width=width, block="evp",
        block_options=dict(pdog=bool(pdog), trelu=bool(trelu), trelu_mode=trelu_mode, se_reduction=se_reduction),
        norm=norm, pooling="pnl" if pnl else "avg", mean=mean, std=std, upsample=upsample,
        upsample_interpolation=upsample_interpolation)
    if pdog:
        model = replace_stem_with_evp(model, use_trelu=bool(trelu), trelu_mode=trelu_mode, se_reduction=se_reduction)
    return model


registry.register("se_resnet20", functools.partial(se_resnet, depth=20))
registry.register("se_resnet56", functools.partial(se_resnet, depth=56))
registry.register("evp_resnet", evp_resnet)
registry.register("evp_resnet20", functools.partial(evp_resnet, depth=20))
registry.register("evp_resnet56", functools.partial(evp_resnet, depth=56))
# BatchNorm after every EVPConv by default: tReLU's thresholds start in U[0, 1] and assume normalised
# responses; without a normalisation small_cnn(conv="evp") does not learn (measured: loss stays at ln 10 for
# two epochs with SGD 0.05, see replace_convs_with_evp). Pass norm="none" for the literal small_cnn layout.
registry.register("evp_small_cnn", functools.partial(cnn.small_cnn, conv="evp", norm="batch"))

__all__ = ["SE_REDUCTION", "evp_block", "evp_conv", "evp_resnet", "pnl_head", "replace_convs_with_evp",
           "replace_stem_with_evp", "se_block", "se_resnet"]
