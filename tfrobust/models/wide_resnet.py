"""Wide ResNets (WRN-depth-k), built on the shared ResNet body with pre-activation blocks.

Registered models: ``wide_resnet`` (all options) and ``wrn16`` (= ``wide_resnet`` with depth 16).
"""

import functools

from tfrobust.errors import TfrobustError, check_number
from tfrobust.models import components, registry
from tfrobust.models.resnet import build_resnet_body


def wide_resnet(input_shape, num_classes, *, depth=16, widen_factor=4, dropout=0.0, strides=None,
                block="preact", norm="batch", conv="standard", pooling="avg",
                mean=None, std=None, upsample=1, upsample_interpolation="nearest"):
    """WRN-depth-k: a 16-channel 3×3 stem, three stages of (depth − 4) / 6 pre-activation blocks with
    16k, 32k and 64k channels, final norm + ReLU, global pooling, Dense logits.

    Args:
      input_shape: (height, width, channels) of one [0, 1] image.
      num_classes: number of logits.
      depth: total depth, 6n + 4 (16, 22, 28, 34, 40, …); default 16.
      widen_factor: k, the channel multiplier of the stages (the stem stays at 16); default 4
        (WRN-16-4; the paper is silent on which k a "WRN-16" means — pass e.g. 8 or 10).
      dropout: dropout rate between the two convolutions of each block (Zagoruyko & Komodakis use
        0.3 on CIFAR; default 0).
      strides: per-stage strides, default "1-2-2" (the paper's notation, see ``resnet``).
      block: a ``resnet.BLOCKS`` name, default "preact"; the block must accept ``dropout``.
      norm: a ``NORMS`` name: "batch", "group" or "none".
      conv: a ``CONVS`` name ("standard").
      pooling: a ``HEADS`` name: "avg" or "max".
      mean, std, upsample, upsample_interpolation: input preprocessing, see ``stem.py``.

    Layer names as in ``resnet``: ``stage{s}_block{b}_out``, ``features``, ``pool``, ``logits``.

    Example:
      >>> model = wide_resnet((32, 32, 3), 10, depth=34, widen_factor=10)  # WRN-34-10

    Reference: Zagoruyko & Komodakis, "Wide Residual Networks" (BMVC 2016), Table 1 and Sec. 2.
    Choices: projection shortcuts take the activated input (as in the authors' code), He-normal init.
    """
    components.check_positive_int("depth", depth)
    if depth < 10 or (depth - 4) % 6:
        raise TfrobustError(f"depth must be 6n+4 with n >= 1 (e.g. 16, 22, 28, 34, 40), got {depth!r}")
    components.check_positive_int("widen_factor", widen_factor)
    check_number("dropout", dropout, 0, 1, high_inclusive=False)
    n = (depth - 4) // 6
    return build_resnet_body(
        input_shape, num_classes, stage_blocks=(n, n, n),
        stage_widths=(16 * widen_factor, 32 * widen_factor, 64 * widen_factor), stem_width=16,
        strides=strides, width=1.0, block=block, block_options={"dropout": dropout} if dropout else {},
        norm=norm, conv=conv, pooling=pooling, model_name=f"wrn{depth}_{widen_factor}",
        stem_options=dict(mean=mean, std=std, upsample=upsample,
                          upsample_interpolation=upsample_interpolation))


registry.register("wide_resnet", wide_resnet)
registry.register("wrn16", functools.partial(wide_resnet, depth=16))
