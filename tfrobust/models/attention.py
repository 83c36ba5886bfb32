"""ResNet with nonlinear attention pooling (Liu & JaJa, IJCAI 2019, §3.2 and §4.2.1).

Registered model ``attention_resnet``: a ResNet body (``resnet``'s, any block/norm/conv), a global feature g
from the last feature map — max pool 2 → 3×3 conv + ReLU → max pool 2 → flatten (§4.2.1: "a convolutional
layer sandwiched between two max-pooling layers") — and one ``AttentionPooling`` per chosen stage, scoring
that stage's output (local features) against g. The attention features are concatenated into the global
descriptor that the classifier reads; that descriptor is the layer ``pool``, the G(x) of the implicit-
denoising loss (§3.3): ``ATID(feature_layer="pool")``. Attention maps: the layers ``attention{s}``, e.g.
``tfrobust.evaluation.analyses.attention_maps(model, images)``.

Choices where the paper is silent: "the original ResNet that has four residual blocks with [16, 16, 32, 64]
filters" is read as four stages of one basic block each, strides 1-1-2-2, attention at stages 3 and 4 (the
paper's "residual block 3 and 4", fig. 3); pass ``stage_blocks``/``stage_widths``/``strides`` for other
readings (e.g. TF's official CIFAR ResNet: a 16-channel stem and three stages [16, 32, 64]); the global
convolution has as many channels as the last stage, "same" padding and no normalisation; max pools use
"same" padding (so small maps still shrink to ≥ 1×1).
"""

import keras

from tfrobust.errors import TfrobustError
from tfrobust.layers import AttentionPooling
from tfrobust.models import components, registry, resnet


def attention_resnet(input_shape, num_classes, *, stage_blocks=(1, 1, 1, 1), stage_widths=(16, 16, 32, 64),
                     strides="1-1-2-2", attention_stages=(3, 4), hidden_units=64, width=1.0, block="basic",
                     norm="batch", conv="standard", mean=None, std=None, upsample=1,
                     upsample_interpolation="nearest"):
    """ResNet [16, 16, 32, 64] with two-layer nonlinear attention pooling in place of global average pooling.

    Args:
      input_shape, num_classes, stage_blocks, stage_widths, strides, width, block, norm, conv, mean, std,
        upsample, upsample_interpolation: as ``resnet``.
      attention_stages: 1-based stages whose last block output is pooled by attention (default (3, 4)).
      hidden_units: hidden units of each attention MLP (64, §4.2.1).

    Layer names: as ``resnet`` for the body; ``global_pool1``, ``global_conv``, ``global_pool2``,
    ``global_feature`` (g); ``attention{s}`` (AttentionPooling); ``pool`` (concatenated attention features,
    G(x)); ``logits``.

    Example:
      >>> model = attention_resnet((32, 32, 3), 10)
      >>> model.get_layer("pool").output.shape   # 32 + 64 attention features
      (None, 96)
    """
    components.check_positive_int("hidden_units", hidden_units)
    stage_blocks = components.check_int_list("stage_blocks", stage_blocks)
    stages = components.check_int_list("attention_stages", attention_stages)
    if any(s > len(stage_blocks) for s in stages) or len(set(stages)) != len(stages):
        raise TfrobustError(f"attention_stages must be distinct stages in 1..{len(stage_blocks)}, got {list(stages)}")
    body = resnet.resnet(input_shape, num_classes, depth=None, stage_blocks=stage_blocks, stage_widths=stage_widths,
                         strides=strides, width=width, block=block, norm=norm, conv=conv, pooling="avg", mean=mean,
                         std=std, upsample=upsample, upsample_interpolation=upsample_interpolation)
    features = body.get_layer("features").output
    g = keras.layers.MaxPooling2D(2, padding="same", name="global_pool1")(features)
    g = keras.layers.Conv2D(features.shape[-1], 3, padding="same", activation="relu", kernel_initializer="he_normal",
                            name="global_conv")(g)
    g = keras.layers.MaxPooling2D(2, padding="same", name="global_pool2")(g)
    g = keras.layers.Flatten(name="global_feature")(g)
    pooled = []
    for s in stages:
        local = body.get_layer(f"stage{s}_block{stage_blocks[s - 1]}_out").output
        pooled.append(AttentionPooling(hidden_units, name=f"attention{s}")([local, g]))
    descriptor = (keras.layers.Concatenate(name="pool")(pooled) if len(pooled) > 1
                  else components.name_output(pooled[0], "pool"))
    return keras.Model(body.input, components.classifier(descriptor, num_classes), name="attention_resnet")


registry.register("attention_resnet", attention_resnet)
