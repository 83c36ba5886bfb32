"""Evaluation reports: the same numbers as JSON (machines), Markdown (people) and PNG plots."""

import os

import numpy as np

from tfrobust.core.files import write_json, write_text
from tfrobust.core.plotting import pyplot


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if not isinstance(v, np.ndarray)}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def flags_summary(sanity):
    """"ok", "n/a" or the names of the flagged checks."""
    if not sanity:
        return "n/a"
    flagged = [f["check"] for f in sanity["flags"] if f["flagged"]]
    return ", ".join(flagged) if flagged else "ok"


def markdown(report):
    """A report (see ``tfrobust.evaluation.evaluate`` / ``compare``) as Markdown."""
    threat = report["threat_model"]
    labels = [row["attack"] for row in report["models"][0]["rows"]] if report["models"] else []
    header = ["model", "mode", "clean"] + labels + ["worst case", "time (s)", "sanity flags"]
    lines = [f"# {report.get('title', 'Robustness report')}", "",
             f"{report['num_examples']} test points of {report.get('dataset', 'the test set')}; "
             f"threat model {threat['norm']} ε={threat['eps']:g}; accuracy in %, every point counted "
             "(a point wrong on the clean input counts as broken).", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model in report["models"]:
        modes = sorted({row["mode"] for row in model["rows"]})
        cells = [model["model"], "; ".join(modes), f"{100 * model['clean']:.2f}"]
        cells += [f"{100 * row['accuracy']:.2f}" for row in model["rows"]]
        cells += [f"{100 * model['worst_case']:.2f}", f"{sum(r['seconds'] for r in model['rows']):.1f}",
                  flags_summary(model.get("sanity"))]
        lines.append("| " + " | ".join(cells) + " |")
    for model in report["models"]:
        sanity = model.get("sanity")
        flagged = [f for f in sanity["flags"] if f["flagged"]] if sanity else []
        if flagged:
            lines += ["", f"**{model['model']}** — sanity flags:"]
            lines += [f"- `{f['check']}` ({f['detail']}): {f['explanation']}" for f in flagged]
    lines += ["", "Attacks:"]
    if report["models"]:
        lines += [f"- {row['attack']}: {row['config']}" for row in report["models"][0]["rows"]]
    return "\n".join(lines) + "\n"


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
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def write_report(report, out_dir):
    """Writes report.json, report.md and curves.png (when there are curves) into ``out_dir``;
    returns the Markdown path."""
    os.makedirs(out_dir, exist_ok=True)
    write_json(os.path.join(out_dir, "report.json"), _jsonable(report))
    plot_curves(report, os.path.join(out_dir, "curves.png"))
    path = os.path.join(out_dir, "report.md")
    write_text(path, markdown(report))
    return path
