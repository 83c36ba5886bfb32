"""Model builders: ``build(name, input_shape, num_classes, **options)`` → ``keras.Model``.

Every model maps float32 images in [0, 1] (NHWC) to float32 logits; mean/std normalisation and input
upsampling are layers inside the model (``stem.py``). Families, one file each: ``cnn.py`` (madry_cnn,
small_cnn), ``resnet.py`` (resnet, resnet18/20/56, preact_resnet18), ``wide_resnet.py`` (wide_resnet,
wrn16), ``vgg.py`` (vgg16, alexnet).

Extension points (register, don't copy builders):
  ``register(name, builder)``                       a new model name
  ``register_block(name, fn, preactivation=...)``   a residual block (``block=`` of resnet/wide_resnet)
  ``register_norm(name, fn)``                       a normalisation (``norm=``)
  ``register_conv(name, fn)``                       a convolution (``conv=``)
  ``register_head(name, fn)``                       a global pooling head (``pooling=``)

Example:
  >>> from tfrobust import models
  >>> model = models.build("resnet18", (32, 32, 3), 10, strides="1-1-2-2", pooling="avg")
  >>> models.options("resnet18")["norm"]
  'batch'
"""

from tfrobust.models import cnn, resnet, vgg, wide_resnet  # noqa: F401  (registers the models)
from tfrobust.models import cifs_resnet  # noqa: F401  (registers cifs_resnet*, the "cifs" block)
from tfrobust.models import ode_nets  # noqa: F401  (registers odenet, tisode, odenet_cnn)
from tfrobust.models import evp  # noqa: F401  (se_/evp_resnet*, evp_small_cnn; "evp" conv/block, "se" block, "pnl" head)
from tfrobust.models import convnorm  # noqa: F401  (the "convnorm" conv)
from tfrobust.models import attention  # noqa: F401  (attention_resnet)
from tfrobust.models import dncnn  # noqa: F401  (dncnn, dncnn_b, dncnn_c: image-to-image denoisers)
from tfrobust.models.components import (CONVS, HEADS, NORMS, register_conv, register_head,
                                        register_norm)
from tfrobust.models.registry import build, names, options, register
from tfrobust.models.resnet import BLOCKS, register_block
from tfrobust.models.stem import STEM_OPTIONS

__all__ = [
    "build", "names", "options", "register",
    "BLOCKS", "CONVS", "HEADS", "NORMS",
    "register_block", "register_conv", "register_head", "register_norm",
    "STEM_OPTIONS",
]
