"""One attack suite at several budgets ε: a report per ε plus accuracy-vs-ε for every attack.

``evaluate_eps_sweep`` with one ε returns exactly ``evaluate``'s report (what the scripts wrote before
sweeps existed); with several it returns a sweep report: ``{"title", "threat_model": {"norm", "eps":
[…]}, "num_examples", "sections": [one evaluate report per ε], "accuracy_vs_eps": [{"model", "attack",
"accuracy": [one per ε]}]}``. Every attack of the suite gets its curve (plus clean and worst case), unlike
the sanity checks' PGD-only curve. ``write_sweep_report`` writes each section's usual files into
``<out_dir>/eps_<ε>/`` (report.html, leaderboard and TensorBoard files included) and, at the top,
``report.md`` (the ε table, then every section), ``report.json`` (the sweep without the per-point masks,
which stay in each section's ``correct.npz``) and ``accuracy_vs_eps.png``.
"""

import os


from tfrobust.core.files import plain, write_json, write_text
from tfrobust.core.plotting import pyplot, save_figure
from tfrobust.errors import TfrobustError
from tfrobust.evaluation.compare import evaluate
from tfrobust.evaluation.report import check_out_dir, markdown, write_report


def evaluate_eps_sweep(models, x, y, *, eps_values, title="Robustness report", state=None, **options):
    """Runs ``evaluate(models, x, y, eps=ε, **options)`` for every ε of ``eps_values`` (see the module docstring).

    ``state`` (an ``evaluation.resume.EvaluationState``) makes the sweep resumable: ε's section records into
    ``state.journal("eps_<ε>")``."""
    eps_values = [float(e) for e in eps_values]
    if not eps_values:
        raise TfrobustError("an ε sweep needs at least one ε")
    if len(set(eps_values)) != len(eps_values):
        raise TfrobustError(f"ε values repeat: {', '.join(f'{e:g}' for e in eps_values)}")
    sections = [evaluate(models, x, y, eps=eps, title=title, **options,
                         **({"journal": state.journal(f"eps_{eps:g}")} if state is not None else {}))
                for eps in eps_values]
    if len(sections) == 1:
        return sections[0]
    curves = []
    for i, model in enumerate(sections[0]["models"]):
        columns = ["clean"] + [row["attack"] for row in model["rows"]] + ["worst case"]
        for j, attack in enumerate(columns):
            curves.append({"model": model["model"], "attack": attack,
                           "accuracy": [_accuracy(section["models"][i], j, len(columns)) for section in sections]})
    return {"title": title, "threat_model": {"norm": sections[0]["threat_model"]["norm"], "eps": eps_values},
            "num_examples": sections[0]["num_examples"], "suite": sections[0]["suite"], "sections": sections,
            "accuracy_vs_eps": curves}


def _accuracy(model, column, columns):
    if column == 0:
        return model["clean"]
    if column == columns - 1:
        return model["worst_case"]
    return model["rows"][column - 1]["accuracy"]


def is_sweep(report):
    return "sections" in report


def sweep_markdown(sweep):
    """The accuracy-vs-ε table, then every ε's report as a section."""
    eps_values = sweep["threat_model"]["eps"]
    header = ["model", "attack"] + [f"ε={e:g}" for e in eps_values]
    lines = [f"# {sweep['title']}", "",
             f"{sweep['num_examples']} test points; threat model {sweep['threat_model']['norm']}; accuracy in % "
             f"at each ε (suite {sweep['suite']}).", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([c["model"], c["attack"]] + [f"{100 * a:.2f}" for a in c["accuracy"]]) + " |"
              for c in sweep["accuracy_vs_eps"]]
    for eps, section in zip(eps_values, sweep["sections"]):
        body = markdown(section).splitlines()
        lines += ["", f"## ε = {eps:g}", ""] + ["#" + line if line.startswith("#") else line for line in body[1:]]
    return "\n".join(lines) + "\n"


def plot_accuracy_vs_eps(sweep, path):
    """One panel per model, one line per attack (clean dashed); returns the path."""
    plt = pyplot()
    models = list(dict.fromkeys(c["model"] for c in sweep["accuracy_vs_eps"]))
    figure, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4), squeeze=False)
    eps_values = sweep["threat_model"]["eps"]
    for axis, model in zip(axes[0], models):
        for curve in [c for c in sweep["accuracy_vs_eps"] if c["model"] == model]:
            axis.plot(eps_values, [100 * a for a in curve["accuracy"]], marker="o", label=curve["attack"],
                      linestyle="--" if curve["attack"] == "clean" else "-")
        axis.set(xlabel=f"ε ({sweep['threat_model']['norm']})", ylabel="accuracy (%)", title=model, ylim=(0, 100))
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    return save_figure(figure, path)


def section_dir(out_dir, eps):
    return os.path.join(out_dir, f"eps_{eps:g}")


def write_sweep_report(report, out_dir, images=None, overwrite=False):
    """``write_report`` for a single-ε report; for a sweep, see the module docstring. Returns the Markdown path.

    Raises:
      TfrobustError: ``out_dir`` (or an ε's folder in it) holds another run's report and ``overwrite`` is False.
    """
    if not is_sweep(report):
        return write_report(report, out_dir, images=images, overwrite=overwrite)
    check_out_dir(out_dir, overwrite)
    for eps in report["threat_model"]["eps"]:
        check_out_dir(section_dir(out_dir, eps), overwrite)
    os.makedirs(out_dir, exist_ok=True)
    for eps, section in zip(report["threat_model"]["eps"], report["sections"]):
        write_report(section, section_dir(out_dir, eps), images=images, overwrite=overwrite)
    sections = [{k: v for k, v in section.items() if k not in ("correct", "adversarial")}
                for section in report["sections"]]
    write_json(os.path.join(out_dir, "report.json"), plain({**report, "sections": sections}))
    plot_accuracy_vs_eps(report, os.path.join(out_dir, "accuracy_vs_eps.png"))
    path = os.path.join(out_dir, "report.md")
    write_text(path, sweep_markdown(report))
    return path


def html_paths(report, out_dir):
    """The HTML pages ``write_sweep_report`` wrote: ``report.html``, or one per ε for a sweep."""
    if not is_sweep(report):
        return [os.path.join(out_dir, "report.html")]
    return [os.path.join(section_dir(out_dir, eps), "report.html") for eps in report["threat_model"]["eps"]]

