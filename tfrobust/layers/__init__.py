"""Robust components, one per file, each a Keras layer registered as serializable under "tfrobust"."""

from tfrobust.layers.attention_pooling import AttentionPooling  # noqa: F401
from tfrobust.layers.cifs import CIFS  # noqa: F401
from tfrobust.layers.conv_norm import ConvNorm2D, with_inference_form  # noqa: F401
from tfrobust.layers.evp_conv import EVPConv  # noqa: F401
from tfrobust.layers.input_randomization import InputRandomization  # noqa: F401
from tfrobust.layers.non_local import NonLocalDenoising  # noqa: F401
from tfrobust.layers.ode_block import ConvDynamics, ODEBlock  # noqa: F401
from tfrobust.layers.pdog import PDoG  # noqa: F401
from tfrobust.layers.projected_norm import ProjectedNormalization  # noqa: F401
from tfrobust.layers.squeeze_excite import SqueezeExcite  # noqa: F401
from tfrobust.layers.trelu import TReLU  # noqa: F401
