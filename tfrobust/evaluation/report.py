"""Evaluation reports: the same numbers as JSON (machines), Markdown and a self-contained HTML page
(people), PNG plots, RobustBench-shaped leaderboard entries and TensorBoard event files; per-point masks
as ``correct.npz`` (keys ``<model label>/<attack>``) and the agreement grid as ``agreement.png``.

Every file is written atomically, and ``write_report`` refuses an ``out_dir`` that already holds another
run's report unless told to overwrite it (``check_out_dir``; the scripts' ``--overwrite``).
"""

import contextlib
import datetime
import os
import platform
import shlex
import shutil
import sys

import keras
import numpy as np
import tensorflow as tf

import tfrobust
from tfrobust.core.files import atomic_path, plain, write_json, write_text
from tfrobust.core.plotting import pyplot, save_figure
from tfrobust.evaluation.leaderboard import is_standard_autoattack
from tfrobust.errors import TfrobustError
from tfrobust.evaluation.html_report import html_page
from tfrobust.evaluation.leaderboard import file_name, leaderboard_entry
from tfrobust.evaluation.tensorboard_log import write_tensorboard

# Files whose presence means a run already reported into a folder (resume state of a run in progress
# does not count: only a finished report is protected).
REPORT_FILES = ("report.json", "report.md", "report.html")


def flags_summary(sanity):
    """"ok", "n/a" or the names of the flagged checks."""
    if not sanity:
        return "n/a"
    flagged = [f["check"] for f in sanity["flags"] if f["flagged"]]
    return ", ".join(flagged) if flagged else "ok"


def from_autoattack(model):
    """True when the model's worst case includes the standard AutoAttack run white-box on it; otherwise
    the number is an upper bound that AutoAttack would likely lower."""
    return any(is_standard_autoattack(row) for row in model["rows"])


def markdown(report):
    """A report (see ``tfrobust.evaluation.evaluate`` / ``compare``) as Markdown.

    The main table has the ε-bounded attacks and their worst case; attacks that are not ε-bounded
    (Gaussian noise) get their own table, outside the worst case. A worst case without the standard
    AutoAttack is marked "not AutoAttack — an upper bound" (publish ``--suite=standard`` numbers).
    """
    threat = report["threat_model"]
    first = report["models"][0]["rows"] if report["models"] else []
    labels = [row["attack"] for row in first if row.get("bounded", True)]
    unbounded = [row["attack"] for row in first if not row.get("bounded", True)]
    header = ["model", "mode", "clean"] + labels + ["worst case", "time (s)", "sanity flags"]
    lines = [f"# {report.get('title', 'Robustness report')}", "",
             f"{report['num_examples']} test points of {report.get('dataset', 'the test set')}; "
             f"threat model {threat['norm']} ε={threat['eps']:g}; accuracy in %, every point counted "
             "(a point wrong on the clean input counts as broken).", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model in report["models"]:
        modes = sorted({row["mode"] for row in model["rows"]})
        cells = [model["model"], "; ".join(modes), f"{100 * model['clean']:.2f}"]
        cells += [f"{100 * row['accuracy']:.2f}" for row in model["rows"] if row.get("bounded", True)]
        worst = f"{100 * model['worst_case']:.2f}"
        if not from_autoattack(model):
            worst += " (not AutoAttack — an upper bound)"
        cells += [worst, f"{sum(r['seconds'] for r in model['rows']):.1f}", flags_summary(model.get("sanity"))]
        lines.append("| " + " | ".join(cells) + " |")
    if unbounded:
        lines += ["", "Not ε-bounded (random corruptions, reported apart and not in the worst case):", "",
                  "| model | " + " | ".join(unbounded) + " |", "|" + "---|" * (len(unbounded) + 1)]
        for model in report["models"]:
            cells = [f"{100 * row['accuracy']:.2f}" for row in model["rows"] if not row.get("bounded", True)]
            lines.append(f"| {model['model']} | " + " | ".join(cells) + " |")
    for model in report["models"]:
        for note in model.get("notes", []):
            lines += ["", f"**{model['model']}** — {note}"]
        for row in model["rows"]:
            if row.get("invalid"):
                lines += ["", f"**{model['model']}** — {row['attack']} returned {row['invalid']} invalid "
                          "point(s) (non-finite, out of range or outside the ε-ball); counted as attack failures."]
            if row.get("components"):
                steps = " → ".join(f"{c['attack']} {100 * c['robust_accuracy']:.2f}" for c in row["components"])
                lines += ["", f"**{model['model']}** — {row['attack']} cumulative robust accuracy: {steps}"]
    for model in report["models"]:
        sanity = model.get("sanity")
        flagged = [f for f in sanity["flags"] if f["flagged"]] if sanity else []
        if flagged:
            lines += ["", f"**{model['model']}** — sanity flags:"]
            lines += [f"- `{f['check']}` ({f['detail']}): {f['explanation']}" for f in flagged]
    lines += _where_attacks_ran(report) + _artifacts(report) + _agreement(report)
    lines += ["", "Attacks:"]
    if report["models"]:
        lines += [f"- {row['attack']}: {row['config']}" for row in report["models"][0]["rows"]]
    return "\n".join(lines) + "\n"


def _where_attacks_ran(report):
    lines = ["", "Where each attack ran, and the images the evaluated model scored for it (queries):", "",
             "| model | attack | mode | queries | time (s) |", "|---|---|---|---|---|"]
    for model in report["models"]:
        lines += [f"| {model['model']} | {row['attack']} | {row['mode']} | {row.get('queries', 'n/a')} | "
                  f"{row['seconds']:.1f} |" for row in model["rows"]]
    return lines


def _artifacts(report):
    models = [m for m in report["models"] if m.get("artifact")]
    if not models:
        return []
    lines = ["", "| model | path | version | SavedModel fingerprint | queries (all attacks) |", "|---|---|---|---|---|"]
    for model in models:
        artifact = model["artifact"]
        lines.append(f"| {model['model']} | {artifact['path']} | {artifact['version'] or 'n/a'} | "
                     f"{artifact['fingerprint'] or 'n/a'} | {sum(row.get('queries', 0) for row in model['rows'])} |")
    return lines


def _agreement(report):
    sections = report.get("agreement") or []
    if not sections:
        return []
    lines = ["", "Per-point agreement: points each artifact loses (−) and gains (+) against its reference "
             "(correct under the reference, wrong under the artifact, and the reverse):", ""]
    attacks = ["clean"] + [row["attack"] for row in report["models"][0]["rows"]] + ["worst_case"]
    lines += ["| model | reference | " + " | ".join(attacks) + " |", "|---|---|" + "---|" * len(attacks)]
    for section in sections:
        rows = {row["attack"]: row for row in section["rows"]}
        cells = [f"−{rows[a]['lost']} / +{rows[a]['gained']}" if a in rows else "n/a" for a in attacks]
        lines.append(f"| {section['model']} | {section['reference']} | " + " | ".join(cells) + " |")
    return lines


def plot_agreement(report, images, path, attack="clean"):
    """A grid of the points each artifact loses / gains against its reference (clean, else the first
    attack where they differ); returns the path or None when every artifact agrees with its reference."""
    plt = pyplot()

    rows = []
    for section in report.get("agreement") or []:
        differing = [r for r in section["rows"] if r["lost"] or r["gained"]]
        chosen = next((r for r in differing if r["attack"] == attack), differing[0] if differing else None)
        if chosen:
            rows.append((section, chosen))
    if not rows:
        return None
    columns = max(len(r["lost_index"]) + len(r["gained_index"]) for _, r in rows)
    figure, axes = plt.subplots(len(rows), columns, figsize=(1.2 * columns, 1.5 * len(rows)), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for i, (section, row) in enumerate(rows):
        marked = [(index, "−") for index in row["lost_index"]] + [(index, "+") for index in row["gained_index"]]
        for j, (index, sign) in enumerate(marked):
            image = np.asarray(images[index])
            axes[i, j].imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
            axes[i, j].set_title(f"{sign}#{index}", fontsize=7)
        axes[i, 0].text(0, -0.45, f"{section['model']} vs {section['reference']} ({row['attack']}; − lost, + gained)",
                        transform=axes[i, 0].transAxes, fontsize=7)
    figure.subplots_adjust(hspace=0.8)
    return save_figure(figure, path, layout=None)


def plot_curves(report, path):
    """accuracy vs ε and vs PGD iterations for every model with sanity curves; returns the path or None."""
    plt = pyplot()

    models = [m for m in report["models"] if m.get("sanity")]
    if not models:
        return None
    figure, (by_eps, by_steps) = plt.subplots(1, 2, figsize=(10, 4))
    for model in models:
        curves = model["sanity"]["curves"]
        bounded = curves["accuracy_vs_eps"][:-1]
        by_eps.plot([p["eps"] for p in bounded], [100 * p["accuracy"] for p in bounded], marker="o",
                    label=model["model"])
        by_steps.plot([p["steps"] for p in curves["accuracy_vs_steps"]],
                      [100 * p["accuracy"] for p in curves["accuracy_vs_steps"]], marker="o", label=model["model"])
    threat = report["threat_model"]
    by_eps.set(xlabel=f"ε ({threat['norm']})", ylabel="PGD accuracy (%)", title="Accuracy vs ε", ylim=(0, 100))
    by_steps.set(xlabel="PGD iterations", ylabel="accuracy (%)", xscale="log",
                 title=f"Accuracy vs iterations (ε={threat['eps']:g})", ylim=(0, 100))
    for axis in (by_eps, by_steps):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    return save_figure(figure, path)


def provenance(argv=None):
    """Where a report comes from: date (UTC), command line, tfrobust/TensorFlow/Keras/Python versions."""
    argv = sys.argv if argv is None else argv
    return {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "command": shlex.join(argv) if argv else None, "tfrobust": tfrobust.__version__,
            "tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version()}


def check_out_dir(out_dir, overwrite=False):
    """Raises a TfrobustError when ``out_dir`` already holds a finished report and ``overwrite`` is False.

    Scripts call it before attacking anything, so a long evaluation never ends in this error."""
    if overwrite or not os.path.isdir(out_dir):
        return
    existing = [name for name in REPORT_FILES if os.path.exists(os.path.join(out_dir, name))]
    if existing:
        raise TfrobustError(f"{out_dir} already holds another run's report ({', '.join(existing)}); "
                            "choose another --out_dir or pass --overwrite to replace it")


@contextlib.contextmanager
def _replaced_folder(final):
    """A temporary folder that replaces ``final`` whole on success (an old run's entry for a model not
    evaluated now must not stay behind)."""
    with atomic_path(final, directory=True) as temp:
        yield temp
        if os.path.exists(final):  # only reached with overwrite (or after a run that left no report)
            shutil.rmtree(final)


def _safe_name(label):
    """A file name for a model or attack label (``cnn@1:saved_model`` → ``cnn@1_saved_model``)."""
    return os.path.splitext(file_name(label))[0]


def write_report(report, out_dir, *, images=None, overwrite=False, adversarial=None):
    """Writes the report into ``out_dir``; returns the Markdown path.

    Files: report.json, report.md, report.html (self-contained: CSS and figures inline), curves.png (when
    there are curves), correct.npz (when the report has per-point masks), agreement.png (when ``images``
    are given and an artifact disagrees with its reference), ``leaderboard/<model>.json`` (RobustBench-shaped,
    one per model) and TensorBoard event files under ``tensorboard/`` (scalars; a strip of ``images``, the
    evaluated points, and of ``adversarial`` x_adv when given, see ``tensorboard_log``). A report with
    ``adversarial`` examples (``evaluate(save_adversarial=True)``) also gets one
    ``adversarial/<model>/<attack>.npz`` per attack (``x_adv`` float32 [N, H, W, C], ``y_pred`` int64 [N]:
    the RobustBench submission shape), and they feed the TensorBoard strips. The report gets a
    ``provenance`` entry (date, command line, versions) unless it has one.

    Raises:
      TfrobustError: ``out_dir`` holds another run's report and ``overwrite`` is False.
    """
    check_out_dir(out_dir, overwrite)
    os.makedirs(out_dir, exist_ok=True)
    report = {**report, "provenance": report.get("provenance") or provenance()}
    if report.get("correct"):
        with atomic_path(os.path.join(out_dir, "correct.npz")) as temp:
            np.savez_compressed(temp, **{f"{label}/{attack}": mask for label, masks in report["correct"].items()
                                         for attack, mask in masks.items()})
    if report.get("adversarial"):
        with _replaced_folder(os.path.join(out_dir, "adversarial")) as temp:
            for label, attacks in report["adversarial"].items():
                for attack, arrays in attacks.items():
                    path = os.path.join(temp, _safe_name(label), _safe_name(attack) + ".npz")
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    np.savez_compressed(path, x_adv=np.asarray(arrays["x_adv"], np.float32),
                                        y_pred=np.asarray(arrays["y_pred"], np.int64))
        if adversarial is None:
            adversarial = {label: {attack: arrays["x_adv"] for attack, arrays in attacks.items()}
                           for label, attacks in report["adversarial"].items()}
    write_json(os.path.join(out_dir, "report.json"),
               plain({k: v for k, v in report.items() if k not in ("correct", "adversarial")}))
    curves = plot_curves(report, os.path.join(out_dir, "curves.png"))
    agreement = None if images is None else plot_agreement(report, images, os.path.join(out_dir, "agreement.png"))
    figures = {}
    for title, path in (("Sanity curves: PGD accuracy vs ε and vs iterations", curves),
                        ("Per-point agreement: points lost (−) and gained (+) against the reference", agreement)):
        if path:
            with open(path, "rb") as handle:
                figures[title] = handle.read()
    write_text(os.path.join(out_dir, "report.html"), html_page(report, figures))
    with _replaced_folder(os.path.join(out_dir, "leaderboard")) as temp:
        for model in report["models"]:
            write_json(os.path.join(temp, file_name(model["model"])), leaderboard_entry(report, model))
    with _replaced_folder(os.path.join(out_dir, "tensorboard")) as temp:
        write_tensorboard(report, temp, images=images, adversarial=adversarial)
    stale = {"correct.npz": not report.get("correct"), "curves.png": not curves, "agreement.png": not agreement}
    for name in [name for name, is_stale in stale.items() if is_stale]:  # an overwritten run's, not this one's
        if os.path.exists(os.path.join(out_dir, name)):
            os.remove(os.path.join(out_dir, name))
    if not report.get("adversarial") and os.path.isdir(os.path.join(out_dir, "adversarial")):
        shutil.rmtree(os.path.join(out_dir, "adversarial"))
    path = os.path.join(out_dir, "report.md")
    write_text(path, markdown(report))
    return path
