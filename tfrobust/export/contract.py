"""The serving contract every tfrobust export shares (SavedModel, TFLite, served endpoints): signature
``serving_default`` mapping input ``images`` (float32 [N, H, W, C] in [0, 1]) to ``logits`` and
``probabilities`` (a denoiser: to ``denoised`` images); extra files of a SavedModel version go to
``assets.extra`` as in TF Serving."""

SIGNATURE = "serving_default"
INPUT_NAME = "images"
OUTPUT_NAMES = ("logits", "probabilities")
#: The output of an image-to-image (denoiser) export.
DENOISED_NAME = "denoised"
ASSETS_EXTRA = "assets.extra"
