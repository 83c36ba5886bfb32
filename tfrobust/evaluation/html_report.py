"""An evaluation report as one self-contained HTML page (for people who share a link or a file).

Built from the same report dict as ``report.markdown``: the accuracy table, AutoAttack's cumulative
components and notes when present, the sanity flags with their explanations, the figures (inline base64
PNG), per-point agreement, where each attack ran, artifacts, attack configurations and provenance. Keys
this module does not know (added by newer code) are still shown, as JSON, in a last "Other fields"
section, so nothing in the report is silently dropped.

Choices: no template engine (the page is a few tables; ``html.escape`` on every value is enough and
keeps the dependency list short) and no JavaScript (the page must render from a file, offline).
"""

import base64
import html
import json
import math

from tfrobust.evaluation.leaderboard import is_standard_autoattack

# Report keys rendered by a section of their own; anything else goes to "Other fields".
_KNOWN_REPORT_KEYS = {"title", "threat_model", "num_examples", "dataset", "suite", "models", "agreement",
                      "provenance", "correct"}
_KNOWN_MODEL_KEYS = {"model", "num_examples", "clean", "rows", "worst_case", "sanity", "notes", "artifact"}

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
       max-width: 1150px; color: #1b1b1b; background: #fff; line-height: 1.45; }
h1 { font-size: 1.6em; border-bottom: 2px solid #2b5797; padding-bottom: .2em; }
h2 { font-size: 1.2em; margin-top: 1.8em; color: #2b5797; }
table { border-collapse: collapse; margin: .6em 0; font-size: .92em; }
th, td { border: 1px solid #c8c8c8; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #eef2f8; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.flagged td { background: #fde8e8; }
.ok { color: #1d7a2e; font-weight: 600; }
.bad { color: #b3261e; font-weight: 600; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: .4em .8em; margin: .5em 0; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; font-size: .85em; }
img { max-width: 100%; border: 1px solid #ddd; }
.muted { color: #666; font-size: .9em; }
"""


def _e(value):
    """Escaped text of any value (None → "n/a")."""
    return html.escape("n/a" if value is None else str(value))


def _pct(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:.2f}"


def _table(header, rows, row_classes=None, numeric=()):
    """An HTML table; ``rows`` hold already formatted cell text (escaped here), ``numeric`` column indices
    are right-aligned; no header row when ``header`` is None."""
    lines = ["<table>"] + (["<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>"] if header else [])
    for i, row in enumerate(rows):
        css = f' class="{_e(row_classes[i])}"' if row_classes and row_classes[i] else ""
        cells = "".join(f'<td class="num">{_e(c)}</td>' if j in numeric else f"<td>{_e(c)}</td>"
                        for j, c in enumerate(row))
        lines.append(f"<tr{css}>{cells}</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _json(value):
    return f"<pre>{_e(json.dumps(value, indent=2, sort_keys=True, default=str))}</pre>"


def _bounded(row):
    return row.get("bounded", True)


def _summary(report):
    threat = report["threat_model"]
    eps = f"{threat['eps']:g}"
    return (f"<p>{_e(report['num_examples'])} test points of {_e(report.get('dataset', 'the test set'))}; "
            f"threat model {_e(threat['norm'])} ε={_e(eps)}; suite {_e(report.get('suite'))}. "
            "Accuracy in %, every point counted (a point wrong on the clean input counts as broken).</p>")


def _main_table(report):
    models = report["models"]
    first = models[0]["rows"] if models else []
    attacks = [row["attack"] for row in first if _bounded(row)]
    header = ["model", "mode", "clean"] + attacks + ["worst case", "time (s)", "sanity flags"]
    rows, classes = [], []
    for model in models:
        by_attack = {row["attack"]: row for row in model["rows"]}
        worst = _pct(model["worst_case"])
        if not any(is_standard_autoattack(row) for row in model["rows"]):
            worst += " (not AutoAttack — an upper bound)"
        sanity = model.get("sanity")
        flagged = [f["check"] for f in sanity["flags"] if f["flagged"]] if sanity else []
        rows.append([model["model"], "; ".join(sorted({row["mode"] for row in model["rows"]})), _pct(model["clean"])]
                    + [_pct(by_attack[a]["accuracy"]) if a in by_attack else "n/a" for a in attacks]
                    + [worst, f"{sum(row['seconds'] for row in model['rows']):.1f}",
                       ", ".join(flagged) if flagged else ("ok" if sanity else "n/a")])
        classes.append("flagged" if flagged else "")
    parts = [_table(header, rows, classes, numeric=set(range(2, 3 + len(attacks) + 2)))]
    unbounded = [row["attack"] for row in first if not _bounded(row)]
    if unbounded:
        parts.append("<p>Not ε-bounded (random corruptions, reported apart and not in the worst case):</p>")
        parts.append(_table(["model"] + unbounded, [
            [m["model"]] + [_pct(r["accuracy"]) for r in m["rows"] if not _bounded(r)] for m in models],
            numeric=set(range(1, 1 + len(unbounded)))))
    return "\n".join(parts)


def _model_notes(report):
    parts = []
    for model in report["models"]:
        for note in model.get("notes") or []:
            parts.append(f'<p class="note"><b>{_e(model["model"])}</b> — {_e(note)}</p>')
        for row in model["rows"]:
            if row.get("invalid"):
                parts.append(f'<p class="note"><b>{_e(model["model"])}</b> — {_e(row["attack"])} returned '
                             f"{_e(row['invalid'])} invalid point(s) (non-finite, out of range or outside the "
                             "ε-ball); counted as attack failures.</p>")
            if row.get("components"):
                parts.append(f"<p><b>{_e(model['model'])}</b> — {_e(row['attack'])}: cumulative robust accuracy "
                             "after each component</p>")
                parts.append(_table(["component", "cumulative robust accuracy (%)"],
                                    [[c.get("attack"), _pct(c.get("robust_accuracy"))] for c in row["components"]],
                                    numeric={1}))
    return "\n".join(parts)


def _sanity(report):
    parts = []
    for model in report["models"]:
        sanity = model.get("sanity")
        if not sanity:
            continue
        parts.append(f"<h3>{_e(model['model'])}</h3>")
        rows = [[f["check"], "FLAGGED" if f["flagged"] else "ok", f.get("detail"), f.get("explanation")]
                for f in sanity["flags"]]
        parts.append(_table(["check", "result", "measured", "what it means"], rows,
                            ["flagged" if f["flagged"] else "" for f in sanity["flags"]]))
    if not parts:
        return ""
    return ("<h2>Gradient-masking sanity checks</h2><p>A flagged check means the attack numbers above may "
            "overstate robustness; its explanation says what to try.</p>\n" + "\n".join(parts))


def _where_attacks_ran(report):
    rows = [[m["model"], r["attack"], r["mode"], r.get("queries", "n/a"), f"{r['seconds']:.1f}",
             ", ".join(f"{k}={v}" for k, v in (r.get("counts") or {}).items()) or "n/a"]
            for m in report["models"] for r in m["rows"]]
    if not rows:
        return ""
    return ("<h2>Where each attack ran</h2><p>Mode, the images the evaluated model scored for the attack "
            "(queries, when counted), time and forward/backward counts.</p>\n"
            + _table(["model", "attack", "mode", "queries", "time (s)", "counts"], rows, numeric={3, 4}))


def _artifacts(report):
    models = [m for m in report["models"] if m.get("artifact")]
    if not models:
        return ""
    keys = []
    for model in models:
        keys += [k for k in model["artifact"] if k not in keys]
    rows = [[m["model"]] + [m["artifact"].get(k) for k in keys] for m in models]
    return "<h2>Artifacts</h2>\n" + _table(["model"] + keys, rows)


def _agreement(report):
    sections = report.get("agreement") or []
    if not sections:
        return ""
    attacks = []
    for section in sections:
        attacks += [r["attack"] for r in section["rows"] if r["attack"] not in attacks]
    rows = []
    for section in sections:
        by_attack = {r["attack"]: r for r in section["rows"]}
        rows.append([section["model"], section["reference"]]
                    + [f"−{by_attack[a]['lost']} / +{by_attack[a]['gained']}" if a in by_attack else "n/a"
                       for a in attacks])
    return ("<h2>Per-point agreement</h2><p>Points each artifact loses (−) and gains (+) against its reference: "
            "correct under the reference and wrong under the artifact, and the reverse.</p>\n"
            + _table(["model", "reference"] + attacks, rows))


def _configs(report):
    if not report["models"]:
        return ""
    rows = []
    for row in report["models"][0]["rows"]:
        config = row.get("config") or {}
        rows.append([row["attack"], config.get("name"),
                     ", ".join(f"{k}={json.dumps(v, sort_keys=True, default=str) if isinstance(v, (dict, list)) else v}"
                               for k, v in sorted(config.items()) if k != "name")])
    return "<h2>Attack configurations</h2>\n" + _table(["attack", "class", "parameters"], rows)


def _figures(figures):
    parts = []
    for title, png in (figures or {}).items():
        data = base64.b64encode(png).decode("ascii")
        parts.append(f"<h3>{_e(title)}</h3><img alt=\"{_e(title)}\" src=\"data:image/png;base64,{data}\">")
    return ("<h2>Figures</h2>\n" + "\n".join(parts)) if parts else ""


def _provenance(report):
    provenance = report.get("provenance")
    if not provenance:
        return ""
    rows = [[k, " ".join(v) if isinstance(v, list) else v] for k, v in provenance.items()]
    return "<h2>Provenance</h2>\n" + _table(None, rows)


def _other_fields(report):
    parts = []
    extra = {k: v for k, v in report.items() if k not in _KNOWN_REPORT_KEYS}
    if extra:
        parts.append(_json(extra))
    for model in report["models"]:
        extra = {k: v for k, v in model.items() if k not in _KNOWN_MODEL_KEYS}
        if extra:
            parts.append(f"<h3>{_e(model['model'])}</h3>{_json(extra)}")
    return ("<h2>Other fields</h2>\n" + "\n".join(parts)) if parts else ""


def html_page(report, figures=None):
    """The report as one self-contained HTML document (a string).

    Args:
      report: a report dict (``tfrobust.evaluation.evaluate``), optionally with ``provenance``.
      figures: {title: PNG bytes}, embedded inline as base64 images (e.g. the curves).

    A worst case without the standard AutoAttack is marked "not AutoAttack — an upper bound".
    """
    title = report.get("title", "Robustness report")
    body = [f"<h1>{_e(title)}</h1>", _summary(report), "<h2>Accuracy</h2>", _main_table(report),
            _model_notes(report), _sanity(report), _figures(figures), _agreement(report),
            _where_attacks_ran(report), _artifacts(report), _configs(report), _provenance(report),
            _other_fields(report)]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{_e(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(part for part in body if part) + "\n</body>\n</html>\n")
