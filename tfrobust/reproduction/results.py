"""A claim's result: the paired comparisons with their verdicts, as JSON and Markdown, and its row of the
summary table in docs/results/reproductions.md."""

import os
import re

from tfrobust.core.files import write_json, write_text
from tfrobust.errors import TfrobustError
from tfrobust.reproduction.model_evaluation import STRONGEST
from tfrobust.reproduction.paired import paired_difference
from tfrobust.reproduction.verdict import ADAPTIVE, PARTIAL, pair_verdict

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


def assess_pair(pair, evaluations):
    """The pair's section: per seed (``evaluations`` = {seed: {model: (result, masks)}}, seeds where both models
    are evaluated) the paired differences, then the verdict of ``verdict.pair_verdict``."""
    seeds = sorted(seed for seed, models in evaluations.items() if pair.baseline in models and pair.defense in models)
    per_seed, verdict_input = {}, []
    for seed in seeds:
        models = evaluations[seed]
        differences = pair_differences(models[pair.baseline], models[pair.defense])
        per_seed[seed] = differences
        verdict_input.append({"differences": differences, "defense_flags": models[pair.defense][0]["flagged"]})
    decision = pair_verdict(pair.paper.difference, verdict_input)
    return {"label": pair.label, "baseline": pair.baseline, "defense": pair.defense,
            "paper": {"baseline": pair.paper.baseline, "defense": pair.paper.defense,
                      "difference_points": round(pair.paper.defense - pair.paper.baseline, 4),
                      "attack": pair.paper.attack, "source": pair.paper.source, "clean": pair.paper.clean},
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
    pairs = [assess_pair(pair, evaluations) for pair in claim.pairs]
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
    return {"claim": claim.name, "title": claim.title, "scale": scale,
            "setting": {"dataset": setting.dataset, "eps": setting.eps, "norm": "linf",
                        "points": points or setting.points,
                        "sanity_size": sanity_size or setting.sanity_size, "note": setting.note},
            "status": "complete" if complete else "partial", "missing": list(missing), "verdict": verdict,
            "pairs": pairs, "models": models, "notes": list(claim.notes), "commands": list(commands),
            "descriptions": {m.name: m.description for m in claim.models}}


def _pct(value):
    return "—" if value is None else f"{100 * value:.1f}"


def _diff(d):
    return f"{100 * d['difference']:+.2f} ± {100 * d['se']:.2f}"


def claim_markdown(report):
    """The claim's Markdown page."""
    s = report["setting"]
    lines = [f"# Reproduction: `{report['claim']}` — {report['title']}", "",
             f"**Verdict: {report['verdict']}** ({report['status']}; rule: [reproductions.md](../reproductions.md)). "
             f"Scale `{report['scale']}`: {s['dataset']}, L∞ ε = {s['eps']:g}, first {s['points']} test points "
             f"(sanity checks on the first {s['sanity_size']}). {s['note']}.", ""]
    train_wall = sum(sum(e["training"].get("wall_seconds_per_invocation") or []) for seeds in report["models"].values()
                     for e in seeds.values() if e["training"])
    eval_wall = sum(e["evaluation"]["seconds"] for seeds in report["models"].values() for e in seeds.values()
                    if e["evaluation"])
    lines += [f"Wall time of the runs recorded here: training {train_wall / 60:.1f} min (the invocations this runner "
              f"started), evaluation {eval_wall / 60:.1f} min, on the machine that ran them (see "
              "docs/results/reproductions.md).", ""]
    if report["missing"]:
        lines += ["Not done yet: " + "; ".join(report["missing"]) + ".", ""]
    lines += ["## Pairs: paper vs ours (defense − baseline, percentage points; ours ± paired SE)", ""]
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
        lines += ["", "Why: " + " ".join(pair["reasons"])
                  + (f" (seed 0 alone would say: {pair['provisional']})" if pair.get("provisional") else ""), ""]
    lines += ["## Models", "", "| model | seed | clean | FGSM | PGD-20 | AutoAttack | worst case (suite) | "
              "strongest (with adaptive) | sanity flags | train s | eval s |",
             "|---|---|--:|--:|--:|--:|--:|--:|---|--:|--:|"]
    for name, seeds in report["models"].items():
        for seed, entry in seeds.items():
            e, t = entry["evaluation"], entry["training"] or {}
            if e is None:
                lines.append(f"| {name} | {seed} | not evaluated yet | | | | | | | "
                             f"{t.get('train_seconds', '—') if t else '—'} | |")
                continue
            rows = {r["attack"]: r["accuracy"] for r in e["rows"]}
            train_s = t.get("train_seconds")
            lines.append(f"| {name} | {seed} | {_pct(e['clean'])} | {_pct(rows.get('fgsm'))} | "
                         f"{_pct(rows.get('pgd-20'))} | "
                         f"{_pct(rows.get('autoattack'))} | {_pct(e['worst_case'])} | {_pct(e['strongest'])} | "
                         f"{', '.join(e['flagged']) or 'none'} | {'—' if train_s is None else f'{train_s:.0f}'} | "
                         f"{e['seconds']:.0f} |")
    adaptive = [(n, s, e["evaluation"]["adaptive"]) for n, seeds in report["models"].items() for s, e in seeds.items()
                if e["evaluation"] and "adaptive" in e["evaluation"]]
    if adaptive:
        lines += ["", "## Adaptive recipes", ""]
        for name, seed, a in adaptive:
            lines.append(f"* {name} (seed {seed}): {a['recipe']}; worst case of the recipe {_pct(a['worst_case'])} %; "
                         + ", ".join(f"{r['label']} {_pct(r['accuracy'])}" for r in a["rows"]))
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


def write_claim(report, out_dir):
    """Writes ``<out_dir>/<claim>.json`` and ``.md`` (atomically); returns the Markdown path."""
    os.makedirs(out_dir, exist_ok=True)
    write_json(os.path.join(out_dir, f"{report['claim']}.json"), report)
    path = os.path.join(out_dir, f"{report['claim']}.md")
    write_text(path, claim_markdown(report))
    return path


def summary_row(report, link):
    """The claim's row of the summary table."""
    head = report["pairs"][0]
    paper = f"{head['label']}: {head['paper']['difference_points']:+.2f} pt ({head['paper']['attack']})"
    pooled = head["pooled"].get("autoattack")
    ours = "not evaluated yet" if pooled is None else (
        f"{100 * pooled['difference']:+.2f} ± {100 * pooled['se']:.2f} pt ({len(head['evaluated_seeds'])} seed"
        f"{'s' if len(head['evaluated_seeds']) != 1 else ''})")
    verdict = report["verdict"]
    if report["status"] != "complete" and head["verdict"] != PARTIAL:
        verdict += f" (headline pair so far: {head['verdict']})"
    elif head.get("provisional"):
        verdict += f" (seed 0 alone: {head['provisional']}; second seed pending)"
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
