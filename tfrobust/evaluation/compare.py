"""Evaluate one model or compare several exported artifacts under the same attack suite.

Differentiable models (live Keras models, SavedModel and ``.keras`` artifacts) are attacked white-box
through their own gradients and get the gradient-masking sanity checks; TFLite artifacts, which have no
gradients, are attacked by prediction-only attacks on themselves and by transfer from a differentiable
surrogate (by default the same model's SavedModel). Every row says which mode it used.
"""

import os
import re

import numpy as np

from tfrobust.errors import TfrobustError
from tfrobust.evaluation.sanity import sanity_checks
from tfrobust.evaluation.suite import build_suite, run_suite
from tfrobust.evaluation.target import as_target

_TFLITE_SUFFIX = re.compile(r"_(fp32|dynamic|int8)\.tflite$")


def artifact_label(path, artifact_format):
    """A short label ``<model>:<format>`` for an export path of tfrobust's layout.

    ``runs/export/cnn/1`` → ``cnn:saved_model``; ``runs/export/cnn_int8.tflite`` → ``cnn:tflite_int8``;
    ``runs/export/cnn.keras`` → ``cnn:keras``.
    """
    path = os.path.normpath(path)
    base = os.path.basename(path)
    if artifact_format == "saved_model":
        model = os.path.basename(os.path.dirname(path)) if base.isdigit() else base
        return f"{model}:saved_model"
    match = _TFLITE_SUFFIX.search(base)
    if artifact_format == "tflite" and match:
        return f"{base[:match.start()]}:tflite_{match.group(1)}"
    return f"{os.path.splitext(base)[0]}:{artifact_format}"


def model_of(label):
    return label.split(":", 1)[0]


def choose_surrogate(label, artifacts, transfer_from=None):
    """The differentiable artifact a non-differentiable one is attacked through.

    ``transfer_from`` (a label) wins; otherwise the same model's SavedModel, then its ``.keras``, then the
    first differentiable artifact given.
    """
    differentiable = [name for name, artifact in artifacts.items() if artifact.differentiable]
    if transfer_from is not None:
        if transfer_from not in differentiable:
            raise TfrobustError(f"transfer_from {transfer_from!r} is not a differentiable artifact; "
                                f"choices: {', '.join(differentiable) or 'none'}")
        return transfer_from
    same_model = [name for name in differentiable if model_of(name) == model_of(label)]
    same_model.sort(key=lambda name: not name.endswith(":saved_model"))
    if same_model:
        return same_model[0]
    if differentiable:
        return differentiable[0]
    raise TfrobustError(f"{label} has no gradients and no differentiable artifact was given to transfer "
                        "from; add its SavedModel or .keras export")


def evaluate(models, x, y, *, eps, norm="linf", suite="quick", transfer_from=None, sanity_size=200,
             batch_size=250, seed=0, suite_overrides=None, title="Robustness report"):
    """Runs ``suite`` on every model and the sanity checks on the differentiable ones.

    Args:
      models: {label: keras.Model | Artifact | callable}, in report order (or a single model).
      x, y: test images in [0, 1] and labels.
      eps, norm: the threat model.
      suite: a suite name or a comma-separated list of attacks (``build_suite``).
      transfer_from: label of the surrogate for every model without gradients (default: per model).
      sanity_size: points used by the sanity checks (0 disables them).

    Returns:
      a report dict: ``threat_model``, ``num_examples``, ``suite``, ``models`` (one entry per model
      with ``clean``, ``rows``, ``worst_case`` and ``sanity``).
    """
    if not isinstance(models, dict):
        models = {getattr(models, "name", "model"): models}
    targets = {label: as_target(model, label) for label, model in models.items()}
    x = np.asarray(x, np.float32)
    y = np.asarray(y).astype(np.int64)
    entries = []
    for label, target in targets.items():
        attacks = build_suite(suite, norm=norm, eps=eps, seed=seed, overrides=suite_overrides)
        surrogate = None
        if not target.differentiable:
            surrogate = targets[choose_surrogate(label, models, transfer_from)]
        result = run_suite(target, x, y, attacks, surrogate=surrogate, batch_size=batch_size)
        result.pop("correct")
        result["sanity"] = None
        if target.differentiable and sanity_size:
            result["sanity"] = sanity_checks(target, x[:sanity_size], y[:sanity_size], norm=norm, eps=eps,
                                             suite_result=result, seed=seed, batch_size=batch_size)
        entries.append(result)
    return {"title": title, "threat_model": {"norm": norm, "eps": float(eps)}, "num_examples": int(len(y)),
            "suite": suite, "models": entries}
