"""Evaluate one model or compare several exported artifacts under the same attack suite.

Differentiable models (live Keras models, SavedModel and ``.keras`` artifacts) are attacked white-box
through their own gradients and get the gradient-masking sanity checks; TFLite artifacts, which have no
gradients, and served models (``export.served_artifact``) are attacked by prediction-only attacks on
themselves and by transfer from a differentiable surrogate (by default the same model's SavedModel).
Every row says which mode it used and how many images the target scored.

Reports keep every model's per-point correct masks (``correct``: {label: {"clean", <attack>…,
"worst_case"}}, written as ``correct.npz`` by ``write_report``; ``save_adversarial`` adds the adversarial
examples, ``adversarial/<model>/<attack>.npz``) and an ``agreement`` section: per
deployment format, the points it loses that its reference artifact (the same model's SavedModel) keeps,
and the reverse.
"""

import os
import re

import numpy as np

from tfrobust.errors import TfrobustError
from tfrobust.export import Artifact
from tfrobust.evaluation.sanity import sanity_checks
from tfrobust.evaluation.suite import build_suite, run_suite
from tfrobust.evaluation.target import as_target

_TFLITE_SUFFIX = re.compile(r"_(fp32|dynamic|int8)\.tflite$")


def artifact_label(path, artifact_format, version=None, model=None):
    """A short label ``<model>[@<version>]:<format>`` for an export path of tfrobust's layout or a served model.

    ``runs/export/cnn/1`` → ``cnn@1:saved_model``; ``runs/export/cnn_int8.tflite`` → ``cnn:tflite_int8``;
    ``runs/export/cnn.keras`` → ``cnn:keras``; a served model (``model`` and ``version`` given) →
    ``cnn@1:served_grpc``. The version keeps two versions of one model apart.
    """
    if artifact_format.startswith("served"):
        return f"{model}{'' if version is None else f'@{version}'}:{artifact_format}"
    path = os.path.normpath(path)
    base = os.path.basename(path)
    if artifact_format == "saved_model":
        model = os.path.basename(os.path.dirname(path)) if base.isdigit() else base
        version = base if base.isdigit() else version
        return f"{model}{'' if version is None else f'@{version}'}:saved_model"
    match = _TFLITE_SUFFIX.search(base)
    if artifact_format == "tflite" and match:
        return f"{base[:match.start()]}:tflite_{match.group(1)}"
    return f"{os.path.splitext(base)[0]}:{artifact_format}"


def label_of(artifact):
    """``artifact_label`` of a loaded Artifact."""
    return artifact_label(artifact.path, artifact.format, artifact.version, getattr(artifact, "model_name", None))


def model_of(label):
    """The model name of a label: ``cnn@2:saved_model`` → ``cnn``."""
    return label.split(":", 1)[0].split("@", 1)[0]


def version_of(label):
    head = label.split(":", 1)[0]
    return head.split("@", 1)[1] if "@" in head else None


def choose_surrogate(label, artifacts, transfer_from=None):
    """The differentiable artifact a non-differentiable one is attacked through.

    ``transfer_from`` (a label) wins; otherwise the same model's SavedModel (of the same version when
    there are several), then its ``.keras``, then the first differentiable artifact given.
    """
    differentiable = [name for name, artifact in artifacts.items() if artifact.differentiable]
    if transfer_from is not None:
        if transfer_from not in differentiable:
            raise TfrobustError(f"transfer_from {transfer_from!r} is not a differentiable artifact; "
                                f"choices: {', '.join(differentiable) or 'none'}")
        return transfer_from
    same_model = [name for name in differentiable if model_of(name) == model_of(label)]
    same_model.sort(key=lambda name: (not name.endswith(":saved_model"), version_of(name) != version_of(label)))
    if same_model:
        return same_model[0]
    if differentiable:
        return differentiable[0]
    raise TfrobustError(f"{label} has no gradients and no differentiable artifact was given to transfer "
                        "from; add its SavedModel or .keras export")


def evaluate(models, x, y, *, eps, norm="linf", suite="quick", transfer_from=None, sanity_size=200,
             batch_size=250, seed=0, suite_overrides=None, title="Robustness report", verbose=0,
             save_adversarial=False, journal=None, executor=None):
    """Runs ``suite`` on every model and the sanity checks on the differentiable ones.

    Args:
      models: {label: keras.Model | Artifact | callable}, in report order (or a single model).
      x, y: test images in [0, 1] and labels.
      eps, norm: the threat model.
      suite: a suite name or a comma-separated list of attacks (``build_suite``).
      transfer_from: label of the surrogate for every model without gradients (default: per model).
      sanity_size: points used by the sanity checks (0 disables them).
      batch_size: points per attack batch, and AutoAttack's chunk size (``build_suite``).
      verbose: 0 silent, 1 a progress bar per attack, 2 one line per attack (``robust_accuracy``).
      save_adversarial: keep every attack's adversarial examples in the report's ``adversarial``:
        {label: {attack: {"x_adv" float32 [N, H, W, C], "y_pred" int64 [N]}}} (the clean input where the
        attack did not run, i.e. on points misclassified clean); ``write_report`` writes them to
        ``adversarial/<model>/<attack>.npz``.
      journal: optional ``tfrobust.core.journal.Journal``: each model's suite records its progress in
        ``journal.child(label)`` and a re-run resumes from it (``run_suite``; the scripts pass one from
        ``evaluation.resume.EvaluationState``).
      executor: optional sharded executor (``evaluation.distributed``) the attacks' batches go to.

    Returns:
      a report dict: ``threat_model``, ``num_examples``, ``suite``, ``models`` (one entry per model
      with ``clean``, ``rows``, ``worst_case``, ``sanity`` and, for artifacts, ``artifact``: path,
      format, version, fingerprint, queries), ``correct`` (per-point masks, see the module docstring)
      and ``agreement`` (and ``adversarial`` with ``save_adversarial``).
    """
    if not isinstance(models, dict):
        models = {getattr(models, "name", "model"): models}
    targets = {label: as_target(model, label) for label, model in models.items()}
    x = np.asarray(x, np.float32)
    y = np.asarray(y).astype(np.int64)
    entries, masks, adversarial = [], {}, {}
    for label, target in targets.items():
        attacks = build_suite(suite, norm=norm, eps=eps, seed=seed, overrides=suite_overrides, batch_size=batch_size)
        surrogate = None
        if not target.differentiable:
            surrogate = targets[choose_surrogate(label, models, transfer_from)]
        result = run_suite(target, x, y, attacks, surrogate=surrogate, batch_size=batch_size, verbose=verbose,
                           keep_adversarial=save_adversarial,
                           journal=journal.child(label) if journal is not None else None,
                           executor=executor.for_model(eps, label) if executor is not None else None)
        masks[label] = result.pop("correct")
        if save_adversarial:
            adversarial[label] = result.pop("adversarial")
        result["sanity"] = None
        if target.differentiable and sanity_size:
            result["sanity"] = sanity_checks(target, x[:sanity_size], y[:sanity_size], norm=norm, eps=eps,
                                             suite_result=result, seed=seed, batch_size=batch_size)
        artifact = models[label]
        if isinstance(artifact, Artifact):
            result["artifact"] = {"path": artifact.path, "format": artifact.format, "version": artifact.version,
                                  "fingerprint": artifact.fingerprint, "queries": artifact.queries}
        entries.append(result)
    return {"title": title, "threat_model": {"norm": norm, "eps": float(eps)}, "num_examples": int(len(y)),
            "suite": suite, "models": entries, "correct": masks, "agreement": agreement(masks, models),
            **({"adversarial": adversarial} if save_adversarial else {})}


def reference_of(label, models):
    """The artifact ``label``'s points are compared with: the same model's SavedModel (same version
    first), or None for a SavedModel itself and for models without one."""
    candidates = [name for name in models if name != label and model_of(name) == model_of(label)
                  and name.endswith(":saved_model")]
    if label.endswith(":saved_model") or not candidates:
        return None
    candidates.sort(key=lambda name: version_of(name) != version_of(label))
    return candidates[0]


def agreement(masks, models, examples=8):
    """Per-point agreement of each artifact with its reference (``reference_of``).

    Returns a list of {"model", "reference", "rows": [{"attack", "lost", "gained", "lost_index",
    "gained_index"}]}: ``lost`` counts the points the reference keeps (classified correctly, clean or
    under that attack) and the model loses, ``gained`` the reverse; the index lists hold the first
    ``examples`` of each, for the image grid.
    """
    sections = []
    for label, mask in masks.items():
        reference = reference_of(label, models)
        if reference is None:
            continue
        rows = []
        for attack in [key for key in mask if key in masks[reference]]:
            lost = np.flatnonzero(masks[reference][attack] & ~mask[attack])
            gained = np.flatnonzero(~masks[reference][attack] & mask[attack])
            rows.append({"attack": attack, "lost": int(len(lost)), "gained": int(len(gained)),
                         "lost_index": lost[:examples].tolist(), "gained_index": gained[:examples].tolist()})
        sections.append({"model": label, "reference": reference, "rows": rows})
    return sections
