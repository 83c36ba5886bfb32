"""Export (SavedModel in TF-Serving layout, ``.keras``, TFLite) and loading behind one Artifact interface."""

import os

from tfrobust.errors import ArtifactError, check_choice
from tfrobust.export.artifact import (Artifact, DifferentiableArtifact, KerasArtifact, SavedModelArtifact,
                                      TFLiteArtifact, load, resolve_saved_model)
from tfrobust.export.keras_file import export_keras
from tfrobust.export.saved_model import export_saved_model, float32_model
from tfrobust.export.served_artifact import ServedArtifact, connect
from tfrobust.export.tflite import QUANTIZATIONS, convert_tflite

EXPORT_FORMATS = ("saved_model", "keras") + tuple(f"tflite_{q}" for q in QUANTIZATIONS)


def export_all(model, base_dir, name, formats=("saved_model", "keras", "tflite_fp32", "tflite_int8"),
               representative_images=None, version=None, description=None):
    """Exports ``model`` in each of ``formats``; returns {format: path}. Every export computes in
    float32 (see ``float32_model``).

    Layout: the SavedModel at ``<base_dir>/<name>/<version>/`` (TF-Serving), and beside the model base
    ``<base_dir>/<name>.keras`` and ``<base_dir>/<name>_<quantization>.tflite``. The SavedModel is always
    written, listed or not: it is the serving format and the source of every TFLite conversion (one
    serving signature for every format). ``representative_images`` calibrate int8 TFLite and fill the
    SavedModel's warm-up requests; ``description`` (class_names, dataset, method) goes to its
    ``assets.extra/tfrobust.json``.
    """
    formats = list(formats)
    for fmt in formats:
        check_choice("export format", fmt, EXPORT_FORMATS)
    targets = [os.path.join(base_dir, f"{name}.keras")] if "keras" in formats else []
    targets += [os.path.join(base_dir, f"{name}_{fmt[len('tflite_'):]}.tflite")
                for fmt in formats if fmt.startswith("tflite_")]
    for target in targets:  # check before writing anything, so a clash leaves no partial export
        if os.path.exists(target):
            raise ArtifactError(f"{target} already exists; exports are never overwritten")
    paths = {}
    saved_model_dir = paths["saved_model"] = export_saved_model(model, base_dir, name, version=version,
                                                                 representative_images=representative_images,
                                                                 description=description)
    if "keras" in formats:
        paths["keras"] = export_keras(float32_model(model), os.path.join(base_dir, f"{name}.keras"))
    for fmt in formats:
        if fmt.startswith("tflite_"):
            quantization = fmt[len("tflite_"):]
            paths[fmt] = convert_tflite(saved_model_dir, os.path.join(base_dir, f"{name}_{quantization}.tflite"),
                                        quantization, representative_images)
    return paths


__all__ = ["Artifact", "DifferentiableArtifact", "EXPORT_FORMATS", "KerasArtifact", "SavedModelArtifact",
           "ServedArtifact", "TFLiteArtifact", "connect", "convert_tflite", "export_all", "export_keras",
           "export_saved_model", "float32_model", "load", "resolve_saved_model"]
