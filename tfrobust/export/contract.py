"""The serving contract every tfrobust export shares (SavedModel, TFLite, served endpoints): signature
``serving_default`` mapping input ``images`` (float32 [N, H, W, C] in [0, 1]) to ``logits`` and
``probabilities`` (a denoiser: to ``denoised`` images); extra files of a SavedModel version go to
``assets.extra`` as in TF Serving. Model names, the ``<base>/<name>/<version>/`` layout and the message
limit are defined here once, for the exporter, the clients and the local server alike."""

import os
import re

SIGNATURE = "serving_default"
INPUT_NAME = "images"
OUTPUT_NAMES = ("logits", "probabilities")
#: The output of an image-to-image (denoiser) export.
DENOISED_NAME = "denoised"
ASSETS_EXTRA = "assets.extra"

#: A model name (un-anchored, for URL and path patterns): letters, digits, ``_ . -``, not starting with
#: a punctuation mark, so a name is one path component and never ``.`` or ``..``.
NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
#: A whole model name.
NAME_PATTERN = re.compile(rf"^{NAME}$")
#: Largest gRPC message (and REST body) the clients and the local server accept by default: 64 MiB
#: (gRPC's own 4 MiB default holds only ~1300 float32 28×28 images, less than one default server batch).
MAX_MESSAGE_BYTES = 64 << 20


def list_versions(model_base):
    """Sorted versions under a TF-Serving model base: the numbered folders that hold ``saved_model.pb``
    (a folder still being written, or left half-written, is not a version)."""
    if not os.path.isdir(model_base):
        return []
    return sorted(int(entry) for entry in os.listdir(model_base)
                  if entry.isdigit() and os.path.isfile(os.path.join(model_base, entry, "saved_model.pb")))


def shape_fits(shape, expected):
    """``shape`` (one image's) matches ``expected``, where None (an open axis: fully convolutional
    denoisers take any height and width) matches any size."""
    return len(shape) == len(expected) and all(want is None or got == want for got, want in zip(shape, expected))
