"""ConvNorm as a convolution option of every builder that takes ``conv`` (O'Hanlon 2021 report, §3–4;
Liu et al. 2021).

Registered part:
  CONVS "convnorm"   every convolution (k×k and 1×1 shortcuts) is a ``ConvNorm2D`` (preconditioned
                     convolution + depthwise affine step). The builder's ``norm`` decides whether a
                     BatchNorm follows, which gives the report's Table 1 columns on WideResNet-16-k:

      vanilla          wrn16(norm="none", conv="standard")
      BN               wrn16(norm="batch", conv="standard")
      ConvNorm         wrn16(norm="none", conv="convnorm")
      BN + ConvNorm    wrn16(norm="batch", conv="convnorm")   (the authors' layer default: ConvNorm + BN)

Choices: the builder's ``use_bias`` is ignored (the affine step has a bias); ConvNorm layers are built
for the feature-map size they see, so a ConvNorm model is resolution-specific like its reference. For a
TFLite export, switch to the builtin-op form first: ``tfrobust.layers.with_inference_form(model, "spatial")``.
"""

from tfrobust.layers import ConvNorm2D
from tfrobust.models.components import register_conv


@register_conv("convnorm")
def convnorm_conv(x, filters, kernel_size, strides=1, *, use_bias, name):
    del use_bias  # the affine step carries the bias
    return ConvNorm2D(filters, kernel_size, strides=strides, padding="same", name=name)(x)
