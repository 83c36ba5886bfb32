"""Robust components, one per file, each a Keras layer registered as serializable under "tfrobust"."""

from tfrobust.layers.attention_pooling import AttentionPooling
from tfrobust.layers.cifs import CIFS
from tfrobust.layers.conv_norm import ConvNorm2D, with_inference_form
from tfrobust.layers.evp_conv import EVPConv
from tfrobust.layers.input_randomization import InputRandomization
from tfrobust.layers.non_local import NonLocalDenoising
from tfrobust.layers.ode_block import ConvDynamics, ODEBlock
from tfrobust.layers.pdog import PDoG
from tfrobust.layers.projected_norm import ProjectedNormalization
from tfrobust.layers.squeeze_excite import SqueezeExcite
from tfrobust.layers.trelu import TReLU

__all__ = ["CIFS", "AttentionPooling", "ConvDynamics", "ConvNorm2D", "EVPConv", "InputRandomization",
           "NonLocalDenoising", "ODEBlock", "PDoG", "ProjectedNormalization", "SqueezeExcite", "TReLU",
           "with_inference_form"]
