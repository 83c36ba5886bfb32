"""Self-describing exports: ``<version>/assets.extra/tfrobust.json`` beside the SavedModel.

A served model is called by code that never saw the training run, so the export says what it is: the
class names (label order), the input contract (shape, dtype, value range and signature names), the
dataset, the training method with its ε and norm, the tfrobust version that wrote it, and the model name
and version. TF Serving ignores ``assets.extra`` (it only reads its warm-up file from there), so the
file travels with the version directory without affecting serving.
"""

import json
import os

import tfrobust
from tfrobust.core.files import write_json
from tfrobust.errors import ArtifactError
from tfrobust.export.contract import ASSETS_EXTRA, DENOISED_NAME, INPUT_NAME, OUTPUT_NAMES, SIGNATURE

DESCRIPTION_FILE = "tfrobust.json"


def description_path(saved_model_dir):
    return os.path.join(saved_model_dir, ASSETS_EXTRA, DESCRIPTION_FILE)


def describe(*, name, version, input_shape, num_classes, task="classify", class_names=None, dataset=None,
             method=None):
    """The description dict of one export.

    Args:
      name, version: the TF Serving model name and version.
      input_shape: (H, W, C) of one image (None for an open axis of a denoiser).
      num_classes: number of logits (None for a denoiser).
      task: "classify" (outputs ``logits``, ``probabilities``) or "denoise" (outputs ``denoised``).
      class_names: label-order names (default: the label indices as strings; None for a denoiser).
      dataset: dataset name the model was trained on, or None when unknown.
      method: the training method's config (``{"name": ..., "eps": ..., "norm": ...}``) or None.
    """
    shape = [None, *(None if d is None else int(d) for d in input_shape)]
    if task == "denoise":
        class_names, outputs = None, {DENOISED_NAME: ["float32", shape]}
    else:
        class_names = [str(c) for c in (class_names if class_names is not None else range(num_classes))]
        if len(class_names) != num_classes:
            raise ArtifactError(f"{len(class_names)} class names for a model with {num_classes} logits")
        outputs = {output: ["float32", [None, int(num_classes)]] for output in OUTPUT_NAMES}
    method = dict(method or {"name": "unknown"})
    return {
        "name": name, "version": int(version), "task": task, "tfrobust_version": tfrobust.__version__,
        "class_names": class_names, "dataset": dataset,
        "training": {"method": method.get("name"), "eps": method.get("eps"), "norm": method.get("norm"),
                     "config": method},
        "input": {"signature": SIGNATURE, "name": INPUT_NAME, "shape": shape, "dtype": "float32",
                  "range": [0.0, 1.0]},
        "outputs": outputs,
    }


def write_description(saved_model_dir, description):
    return write_json(description_path(saved_model_dir), description)


def read_description(saved_model_dir):
    """The export's description dict, or None for a SavedModel written without one."""
    path = description_path(saved_model_dir)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise ArtifactError(f"unreadable export description {path}: {error}") from error
