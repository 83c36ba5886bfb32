"""A claim's result: the paired comparisons with their verdicts, as JSON and Markdown, and its row of the
summary table in docs/results/reproductions.md.

Accuracy claims compare per-point correct masks (``paired_difference``, McNemar); PSNR claims (``metric="psnr"``,
denoisers) compare per-image PSNR arrays (``paired_psnr_difference``) and are judged with the rule's PSNR reading
(``verdict.PSNR``); their report carries ``"metric": "psnr"`` and renders with ``psnr_claim_markdown``. Accuracy
reports are unchanged (no ``metric`` key: the files written before PSNR claims existed load and render as before).
"""

import dataclasses
import os
import re

from tfrobust.core.files import write_json, write_text
from tfrobust.errors import TfrobustError
from tfrobust.reproduction.model_evaluation import STRONGEST
from tfrobust.reproduction.paired import paired_difference, paired_psnr_difference
from tfrobust.reproduction.verdict import ACCURACY, ADAPTIVE, OBSATK_STRONG, PARTIAL, PSNR, pair_verdict

#: Attacks of the paired table, in order (``adaptive`` = each model's per-point worst case over everything run).
PAIR_ATTACKS = ("clean", "fgsm", "pgd-20", "autoattack", "worst_case", ADAPTIVE)
SUMMARY_START = "<!-- reproductions-summary:start -->"
SUMMARY_END = "<!-- reproductions-summary:end -->"


def pair_differences(baseline, defense):
    """{attack: paired_difference} for two models' ``(result, masks)``. ``adaptive`` compares each model's
    ``strongest`` mask and is present only when one of the two ran an adaptive recipe."""
    (base_result, base_masks), (def_result, def_masks) = baseline, defense
    differences = {}
    for attack in PAIR_ATTACKS:
        if attack == ADAPTIVE:
            if "adaptive" not in base_result and "adaptive" not in def_result:
                continue
            differences[attack] = paired_difference(base_masks[STRONGEST], def_masks[STRONGEST])
        else:
            differences[attack] = paired_difference(base_masks[attack], def_masks[attack])
    return differences


def psnr_pair_differences(baseline, defense):
    """{row: paired_psnr_difference} for two denoisers' ``(result, arrays)`` (rows ``PSNR_ROWS``: Gaussian
    noise, the paper's ObsAtk, the strongest ObsAtk)."""
    from tfrobust.reproduction.denoiser_evaluation import PSNR_ROWS  # pylint: disable=import-outside-toplevel

    (_, base_arrays), (_, def_arrays) = baseline, defense
    return {row: paired_psnr_difference(base_arrays[row], def_arrays[row]) for row in PSNR_ROWS}


def headline_difference(metric, baseline, defense):
    """The paired difference under the rule's strong attack (AutoAttack; the strongest ObsAtk for PSNR), for
    the runner's second-seed decision."""
    if metric == "psnr":
        return psnr_pair_differences(baseline, defense)[OBSATK_STRONG]
    return pair_differences(baseline, defense)["autoattack"]


def assess_pair(pair, evaluations, metric="accuracy"):
    """The pair's section: per seed (``evaluations`` = {seed: {model: (result, masks or PSNR arrays)}}, seeds
    where both models are evaluated) the paired differences, then the verdict of ``verdict.pair_verdict``
    (read for PSNR when ``metric`` is "psnr")."""
    seeds = sorted(seed for seed, models in evaluations.items() if pair.baseline in models and pair.defense in models)
    differ = psnr_pair_differences if metric == "psnr" else pair_differences
    per_seed, verdict_input = {}, []
    for seed in seeds:
        models = evaluations[seed]
        differences = differ(models[pair.baseline], models[pair.defense])
        per_seed[seed] = differences
        verdict_input.append({"differences": differences, "defense_flags": models[pair.defense][0]["flagged"],
                              "seed": seed})
    decision = pair_verdict(pair.paper.difference, verdict_input, PSNR if metric == "psnr" else ACCURACY)
    paper = {"baseline": pair.paper.baseline, "defense": pair.paper.defense,
             "difference_points": round(pair.paper.defense - pair.paper.baseline, 4),
             "attack": pair.paper.attack, "source": pair.paper.source, "clean": pair.paper.clean}
    if metric == "psnr":
        paper["unit"] = pair.paper.unit
    return {"label": pair.label, "baseline": pair.baseline, "defense": pair.defense, "paper": paper,
            "evaluated_seeds": seeds, "differences": {str(seed): d for seed, d in per_seed.items()}, **decision}


def claim_report(claim, scale, evaluations, trainings, *, complete, commands, missing=(), points=None,
                 sanity_size=None):
    """The claim's JSON-able result.

    Args:
      claim: the ``Claim``; scale: "cpu" or "paper".
      evaluations: {seed: {model: (result, masks)}}.
      trainings: {seed: {model: {"argv", "command", "train_seconds", "summary": selected summary fields}}}.
      complete: whether every model the rule needs is trained and evaluated.
      commands: the exact commands (the runner's own and each training's).
      missing: descriptions of what is not done yet.
      points, sanity_size: the numbers of points used, where they differ from the claim's setting.
    """
    setting = claim.setting(scale)
    pairs = [assess_pair(pair, evaluations, claim.metric) for pair in claim.pairs]
    headline = pairs[0]
    verdict = headline["verdict"] if complete else PARTIAL  # a claim with a model missing has no verdict
    models = {}
    for seed, by_model in sorted(evaluations.items()):
        for name, (result, _) in by_model.items():
            models.setdefault(name, {})[str(seed)] = {"evaluation": result,
                                                      "training": trainings.get(seed, {}).get(name)}
    for seed, by_model in trainings.items():
        for name, training in by_model.items():
            models.setdefault(name, {}).setdefault(str(seed), {"evaluation": None, "training": training})
    report = {"claim": claim.name, "title": claim.title, "scale": scale,
              "setting": {"dataset": setting.dataset, "eps": setting.eps, "norm": "linf",
                          "points": points or setting.points,
                          "sanity_size": sanity_size or setting.sanity_size, "note": setting.note},
              "status": "complete" if complete else "partial", "missing": list(missing), "verdict": verdict,
              "pairs": pairs, "models": models, "notes": list(claim.notes), "commands": list(commands),
              "descriptions": {m.name: m.description for m in claim.models}}
    if claim.metric == "psnr":
        report["metric"] = "psnr"
        report["setting"]["norm"] = "l2, zero-mean (ObsAtk)"
        report["setting"]["psnr"] = dataclasses.asdict(setting.psnr)
    return report


def _pct(value):
    return "—" if value is None else f"{100 * value:.1f}"


def _diff(d):
    return f"{100 * d['difference']:+.2f} ± {100 * d['se']:.2f}"


def evaluation_seconds(evaluation):
    """An evaluation's seconds, counting the AutoAttack chunks that an earlier, interrupted invocation finished.

    A resumed evaluation's own clock (``seconds``, and its AutoAttack row's) runs only in the invocation that
    finished it, while each AutoAttack component's ``seconds`` sums its journaled chunks over every invocation;
    the difference is the earlier invocations' finished work. (Work an interruption cut off mid-chunk is lost
    and counted nowhere.)
    """
    earlier = sum(max(0.0, sum(c["seconds"] for c in row["components"]) - row["seconds"])
                  for row in evaluation.get("rows", []) if "components" in row)
    return evaluation["seconds"] + earlier


def _evaluation_cell(evaluation):
    return f"{evaluation_seconds(evaluation):.0f}" + (" (resumed)" if evaluation.get("resumed") else "")


def _train_cell(training):
    """The training's seconds (its ``summary.json``'s, which count the last invocation only), marked when that
    invocation ran part of the epochs (a resumed run)."""
    seconds = (training or {}).get("train_seconds")
    if seconds is None:
        return "—"
    ran, epochs = training.get("epochs_last_invocation"), training.get("epochs")
    resumed = ran is not None and epochs and ran < epochs
    return f"{seconds:.0f}" + (f" (last {ran} of {epochs} epochs)" if resumed else "")


def _wall_minutes(report):
    train = sum(sum(e["training"].get("wall_seconds_per_invocation") or []) for seeds in report["models"].values()
                for e in seeds.values() if e["training"])
    evaluation = sum(evaluation_seconds(e["evaluation"]) for seeds in report["models"].values()
                     for e in seeds.values() if e["evaluation"])
    return train / 60, evaluation / 60


def _why(pair):
    """The pair's reasons, with the verdict seed 0 alone would give while a second seed is pending."""
    return ("Why: " + " ".join(pair["reasons"])
            + (f" (seed 0 alone would say: {pair['provisional']})" if pair.get("provisional") else ""))


def _times_missing_and_pairs_heading(report, unit):
    """The lines every claim page has between its setting and its pairs: wall times, what is not done yet, and
    the heading of the pairs (differences in ``unit``)."""
    train_min, eval_min = _wall_minutes(report)
    lines = [f"Wall time of the runs recorded here: training {train_min:.1f} min (the invocations this runner "
             f"started), evaluation {eval_min:.1f} min, on the machine that ran them (see "
             "docs/results/reproductions.md).", ""]
    if report["missing"]:
        lines += ["Not done yet: " + "; ".join(report["missing"]) + ".", ""]
    return lines + [f"## Pairs: paper vs ours (defense − baseline, {unit}; ours ± paired SE)", ""]


def claim_markdown(report):
    """The claim's Markdown page."""
    if report.get("metric") == "psnr":
        return psnr_claim_markdown(report)
    s = report["setting"]
    lines = [f"# Reproduction: `{report['claim']}` — {report['title']}", "",
             f"**Verdict: {report['verdict']}** ({report['status']}; rule: [reproductions.md](../reproductions.md)). "
             f"Scale `{report['scale']}`: {s['dataset']}, L∞ ε = {s['eps']:g}, first {s['points']} test points "
             f"(sanity checks on the first {s['sanity_size']}). {s['note']}.", ""]
    lines += _times_missing_and_pairs_heading(report, "percentage points")
    for pair in report["pairs"]:
        p = pair["paper"]
        lines += [f"### {pair['label']} — verdict: **{pair['verdict']}**", "",
                  f"Paper: {pair['baseline']} {p['baseline']:.2f} % → {pair['defense']} {p['defense']:.2f} % under "
                  f"{p['attack']} (Δ = {p['difference_points']:+.2f}); source: {p['source']}."
                  + (f" Clean: {p['clean'][0]:.2f} → {p['clean'][1]:.2f} %." if p["clean"] else ""), ""]
        lines += ["| seed | attack | baseline % | defense % | Δ ± SE (pt) | McNemar b / c | p exact |",
                  "|---|---|--:|--:|--:|--:|--:|"]
        for seed, differences in pair["differences"].items():
            for attack, d in differences.items():
                m = d["mcnemar"]
                lines.append(f"| {seed} | {attack} | {_pct(d['baseline'])} | {_pct(d['defense'])} | {_diff(d)} | "
                             f"{m['defense_only']} / {m['baseline_only']} | {m['p_exact']:.3g} |")
        if pair["pooled"] and len(pair["evaluated_seeds"]) > 1:
            lines.append("")
            lines.append("Pooled over seeds: " + "; ".join(f"{a} {_diff(d)}" for a, d in pair["pooled"].items()))
        lines += ["", _why(pair), ""]
    lines += ["## Models", "", "| model | seed | clean | FGSM | PGD-20 | AutoAttack | worst case (suite) | "
              "strongest (with adaptive) | sanity flags | train s | eval s |",
             "|---|---|--:|--:|--:|--:|--:|--:|---|--:|--:|"]
    for name, seeds in report["models"].items():
        for seed, entry in seeds.items():
            e, t = entry["evaluation"], entry["training"] or {}
            if e is None:
                lines.append(f"| {name} | {seed} | not evaluated yet | | | | | | | "
                             f"{_train_cell(t)} | |")
                continue
            rows = {r["attack"]: r["accuracy"] for r in e["rows"]}
            lines.append(f"| {name} | {seed} | {_pct(e['clean'])} | {_pct(rows.get('fgsm'))} | "
                         f"{_pct(rows.get('pgd-20'))} | "
                         f"{_pct(rows.get('autoattack'))} | {_pct(e['worst_case'])} | {_pct(e['strongest'])} | "
                         f"{', '.join(e['flagged']) or 'none'} | {_train_cell(t)} | "
                         f"{_evaluation_cell(e)} |")
    adaptive = [(n, s, e["evaluation"]["adaptive"]) for n, seeds in report["models"].items() for s, e in seeds.items()
                if e["evaluation"] and "adaptive" in e["evaluation"]]
    if adaptive:
        lines += ["", "## Adaptive recipes", ""]
        for name, seed, a in adaptive:
            lines.append(f"* {name} (seed {seed}): {a['recipe']}; worst case of the recipe {_pct(a['worst_case'])} %; "
                         + ", ".join(f"{r['label']} {_pct(r['accuracy'])}"
                                     + (f" (expected over passes {_pct(r['expected'])})" if "expected" in r else "")
                                     for r in a["rows"]))
    analysed = [(n, s, e["evaluation"]["analyses"]) for n, seeds in report["models"].items() for s, e in seeds.items()
                if e["evaluation"] and "analyses" in e["evaluation"]]
    if analysed:
        lines += ["", "## Analyses", ""]
        for name, seed, found in analysed:
            for analysis, value in found.items():
                lines.append(f"* {name} (seed {seed}): {analysis} at ε = {value['eps']:g} on {value['points']} points: "
                             f"{100 * value['ratio']:.1f} %")
    lines += ["", "## Models' recipes", ""]
    lines += [f"* `{name}`: {text}" for name, text in report["descriptions"].items()]
    if report["notes"]:
        lines += ["", "## Notes", ""] + [f"* {note}" for note in report["notes"]]
    lines += ["", "## Exact commands", "", "```bash", *report["commands"], "```", ""]
    return "\n".join(lines)


def _db(d):
    return f"{d['difference']:+.2f} ± {d['se']:.2f}"


def psnr_claim_markdown(report):
    """A PSNR claim's Markdown page: per pair the paper's PSNR beside ours (Gaussian noise, the paper's ObsAtk,
    the strongest ObsAtk) with the paired difference ± SE in dB; per model its rows, sanity flags and times."""
    s, p = report["setting"], report["setting"]["psnr"]
    e, g = f"{255 * s['eps']:g}/255", f"{255 * p['level']:g}/255"
    lines = [f"# Reproduction: `{report['claim']}` — {report['title']}", "",
             f"**Verdict: {report['verdict']}** ({report['status']}; rule: [reproductions.md](../reproductions.md), "
             "read for a PSNR claim as written there). "
             f"Scale `{report['scale']}`: test images `{s['dataset']}` (the first {s['points']}), noise level "
             f"γ̂ = {g}, ObsAtk budget e = {e} per pixel (ε = e·√m, zero-mean, on N(0, (γ̂ − e)²) noise). "
             f"{s['note']}.", "",
             "Rows: **gaussian** = N(0, γ̂²) noise alone; **obsatk_paper** = ObsAtk as the paper runs it "
             f"({p['paper_steps']} steps from δ = 0) — the rule's weak attack; **obsatk_strong** = per image the "
             f"worst of that run and {p['strong_restarts']} runs of {p['strong_steps']} steps (δ = 0 and random "
             "starts) — the rule's 'AutoAttack'. PSNR in dB, mean over the images; both models restore the same "
             "noisy images.", ""]
    lines += _times_missing_and_pairs_heading(report, "dB")
    for pair in report["pairs"]:
        paper = pair["paper"]
        lines += [f"### {pair['label']} — verdict: **{pair['verdict']}**", "",
                  f"Paper: under {paper['attack']}: {pair['baseline']} {paper['baseline']:.2f} dB → {pair['defense']} "
                  f"{paper['defense']:.2f} dB (Δ = {paper['difference_points']:+.2f} dB)"
                  + (f"; under the Gaussian noise alone {paper['clean'][0]:.2f} → {paper['clean'][1]:.2f} dB "
                     f"(Δ = {paper['clean'][1] - paper['clean'][0]:+.2f} dB)" if paper["clean"] else "")
                  + f". Source: {paper['source']}.", "",
                  "| seed | row | baseline dB | defense dB | Δ ± SE (dB) | paper: baseline → defense (Δ) |",
                  "|---|---|--:|--:|--:|---|"]
        paper_rows = {"obsatk_paper": (paper["baseline"], paper["defense"])}
        if paper["clean"]:
            paper_rows["gaussian"] = tuple(paper["clean"])
        for seed, differences in pair["differences"].items():
            for attack, d in differences.items():
                known = paper_rows.get(attack)
                beside = "—" if known is None else f"{known[0]:.2f} → {known[1]:.2f} ({known[1] - known[0]:+.2f})"
                lines.append(f"| {seed} | {attack} | {d['baseline']:.2f} | {d['defense']:.2f} | {_db(d)} | "
                             f"{beside} |")
        if pair["pooled"] and len(pair["evaluated_seeds"]) > 1:
            lines += ["", "Pooled over seeds: " + "; ".join(f"{a} {_db(d)} dB" for a, d in pair["pooled"].items())]
        lines += ["", _why(pair), ""]
    lines += ["## Models", "", "| model | seed | gaussian dB | obsatk_paper dB | obsatk_strong dB | random zero-mean "
              "dB | sanity flags | validation PSNR (training) | train s | eval s |",
              "|---|---|--:|--:|--:|--:|---|---|--:|--:|"]
    for name, seeds in report["models"].items():
        for seed, entry in seeds.items():
            ev, t = entry["evaluation"], entry["training"] or {}
            train_cell = _train_cell(t)
            val = t.get("val_psnr")
            val_cell = "—" if val is None else f"{val:.2f} dB" + (f" (training attack {t['val_adv_psnr']:.2f})"
                                                                  if t.get("val_adv_psnr") is not None else "")
            if ev is None:
                lines.append(f"| {name} | {seed} | not evaluated yet | | | | | {val_cell} | {train_cell} | |")
                continue
            rows = {r["attack"]: r["psnr"] for r in ev["rows"]}
            lines.append(f"| {name} | {seed} | {rows['gaussian']:.2f} | {rows['obsatk_paper']:.2f} | "
                         f"{rows['obsatk_strong']:.2f} | {rows['zero_mean']:.2f} | "
                         f"{', '.join(ev['flagged']) or 'none'} | {val_cell} | {train_cell} | {_evaluation_cell(ev)} |")
    evaluated = [(n, sd, en["evaluation"]) for n, seeds in report["models"].items() for sd, en in seeds.items()
                 if en["evaluation"]]
    if evaluated:
        lines += ["", "## Every row and sanity check", ""]
        for name, seed, ev in evaluated:
            lines.append(f"* {name} (seed {seed}): " + "; ".join(
                f"{r['attack']} {r['psnr']:.2f} dB ({r['description']}, {r['seconds']:.0f} s)" for r in ev["rows"]))
            lines.append("  sanity: " + "; ".join(
                f"{f['check']} {'FLAGGED' if f['flagged'] else 'ok'} ({f['detail']})" for f in ev["sanity_flags"]))
    lines += ["", "## Models' recipes", ""]
    lines += [f"* `{name}`: {text}" for name, text in report["descriptions"].items()]
    if report["notes"]:
        lines += ["", "## Notes", ""] + [f"* {note}" for note in report["notes"]]
    lines += ["", "## Exact commands", "", "```bash", *report["commands"], "```", ""]
    return "\n".join(lines)


def write_claim(report, out_dir):
    """Writes ``<out_dir>/<claim>.json`` and ``.md`` (atomically); returns the Markdown path."""
    os.makedirs(out_dir, exist_ok=True)
    write_json(os.path.join(out_dir, f"{report['claim']}.json"), report)
    path = os.path.join(out_dir, f"{report['claim']}.md")
    write_text(path, claim_markdown(report))
    return path


def summary_row(report, link):
    """The claim's row of the summary table (a PSNR claim's numbers in dB under the strongest ObsAtk).

    The numbers are the headline pair's (the first); the verdict cell also names every other pair's verdict, so a
    secondary finding (e.g. a reproduced ablation) is visible from the table, not only from the claim's file."""
    head = report["pairs"][0]
    psnr = report.get("metric") == "psnr"
    unit, scale = ("dB", 1) if psnr else ("pt", 100)
    paper = f"{head['label']}: {head['paper']['difference_points']:+.2f} {unit} ({head['paper']['attack']})"
    pooled = head["pooled"].get(OBSATK_STRONG if psnr else "autoattack")
    ours = "not evaluated yet" if pooled is None else (
        f"{scale * pooled['difference']:+.2f} ± {scale * pooled['se']:.2f} {unit}"
        + (" (strongest ObsAtk)" if psnr else "") + f" ({len(head['evaluated_seeds'])} seed"
        f"{'s' if len(head['evaluated_seeds']) != 1 else ''})")
    verdict = report["verdict"]
    if report["status"] != "complete" and head["verdict"] != PARTIAL:
        verdict += f" (headline pair so far: {head['verdict']})"
    elif head.get("provisional"):
        verdict += f" (seed 0 alone: {head['provisional']}; second seed pending)"
    others = [f"{pair['label']}: {pair['verdict']}" for pair in report["pairs"][1:]]
    if others:
        verdict += f"; other pairs — {'; '.join(others)}"
    return f"| {report['claim']} | {paper} | {ours} | {verdict} | [{report['claim']}]({link}) |"


def update_summary(path, report, link):
    """Replaces (or appends) the claim's row in the table between the summary markers of ``path``."""
    if not os.path.isfile(path):
        raise TfrobustError(f"summary file {path} does not exist")
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    start, end = text.find(SUMMARY_START), text.find(SUMMARY_END)
    if start < 0 or end < start:
        raise TfrobustError(f"{path} has no {SUMMARY_START} … {SUMMARY_END} table")
    block = text[start + len(SUMMARY_START):end].strip("\n").split("\n")
    row = summary_row(report, link)
    pattern = re.compile(rf"^\| {re.escape(report['claim'])} \|")
    replaced = [row if pattern.match(line) else line for line in block]
    if replaced == block and row not in block:
        replaced.append(row)
    write_text(path, text[:start + len(SUMMARY_START)] + "\n" + "\n".join(replaced) + "\n" + text[end:])
    return path
