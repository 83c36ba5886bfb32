"""Compare exported artifacts under the same attacks: clean, FGSM and PGD accuracy per artifact.

Differentiable artifacts (SavedModel, ``.keras``) are attacked white-box through their own gradients;
TFLite artifacts, which have none, are attacked by transfer: examples crafted on a differentiable
surrogate (by default the same model's SavedModel) and evaluated on the TFLite model. The report says
which mode each row used, so a transfer number is never mistaken for a white-box one.
"""

import json
import os
import re

from tfrobust.attacks import FGSM, PGD
from tfrobust.errors import TfrobustError
from tfrobust.evaluation.robustness import robust_accuracy

_TFLITE_SUFFIX = re.compile(r"_(fp32|dynamic|int8)\.tflite$")


def artifact_label(path, artifact_format):
    """A short unique-ish label ``<model>:<format>`` for an export path of tfrobust's layout.

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


def compare_artifacts(artifacts, x, y, *, eps, norm="linf", pgd_steps=20, pgd_step_size=None,
                      pgd_restarts=1, transfer_from=None, batch_size=256, seed=0):
    """Evaluates every artifact on ``(x, y)``; returns a report dict (see ``write_report``).

    Args:
      artifacts: {label: Artifact}, in report order.
      x, y: test images in [0, 1] and labels.
      eps, norm: the threat model for FGSM and PGD.
      pgd_steps, pgd_step_size, pgd_restarts: PGD settings (step default 2.5·ε/steps).
      transfer_from: label of the surrogate for every non-differentiable artifact (default: per model).
    """
    attacks = {"fgsm": FGSM(norm=norm, eps=eps, seed=seed),
               "pgd": PGD(norm=norm, eps=eps, steps=pgd_steps, step_size=pgd_step_size,
                          restarts=pgd_restarts, seed=seed)}
    rows = []
    for label, artifact in artifacts.items():
        if artifact.differentiable:
            craft_name, craft_fn = label, artifact.logits_fn
        else:
            craft_name = choose_surrogate(label, artifacts, transfer_from)
            craft_fn = artifacts[craft_name].logits_fn
        row = {"artifact": label, "format": artifact.format, "path": artifact.path,
               "mode": "white-box" if craft_name == label else f"transfer from {craft_name}"}
        seconds = 0.0
        for attack_name, attack in [("clean", None), *attacks.items()]:
            result = robust_accuracy(attack, craft_fn, x, y, predict_fn=artifact.predict,
                                     batch_size=batch_size)
            row[attack_name] = result["accuracy"]
            seconds += result["seconds"]
        row["seconds"] = round(seconds, 2)
        rows.append(row)
    return {"num_examples": int(len(y)), "threat_model": {"norm": norm, "eps": eps},
            "attacks": {name: attack.get_config() for name, attack in attacks.items()}, "rows": rows}


def markdown_table(report):
    """The report's rows as a Markdown table (accuracies in %)."""
    threat = report["threat_model"]
    attack_names = list(report["attacks"])
    header = ["artifact", "format", "mode", "clean"] + [
        f"{name.upper()} ({threat['norm']}, ε={threat['eps']:g})" for name in attack_names] + ["time (s)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in report["rows"]:
        cells = [row["artifact"], row["format"], row["mode"], f"{100 * row['clean']:.2f}"]
        cells += [f"{100 * row[name]:.2f}" for name in attack_names] + [f"{row['seconds']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(report, out_dir, title="Robustness of exported artifacts"):
    """Writes ``report.json`` and ``report.md`` into ``out_dir``; returns the Markdown path."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "report.json"), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    attacks = "; ".join(f"{name}: {config}" for name, config in report["attacks"].items())
    markdown = (f"# {title}\n\n{report['num_examples']} test points; accuracy in %, every point counted "
                f"(a point wrong on the clean input counts as broken).\n\n{markdown_table(report)}\n\n"
                f"Attacks: {attacks}\n")
    path = os.path.join(out_dir, "report.md")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(markdown)
    return path
