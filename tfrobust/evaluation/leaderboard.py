"""RobustBench-shaped entries: one JSON object per evaluated model, in the layout of RobustBench's
``model_info/<dataset>/<threat_model>/<name>.json`` files.

RobustBench writes accuracies as percent strings with two decimals (``"clean_acc": "83.34"``), ε as
a fraction of 255 for L∞ (``"eps": "8/255"``) and ``number_forward_passes`` as the forward passes one
prediction of the model costs (1 for a deterministic network, more for randomised defences). We keep that
shape and add what a reader needs to trust the number: ``autoattack_acc`` is set only when the model's
worst case includes the standard AutoAttack; otherwise it is null and ``worst_case_acc`` /
``worst_case_suite`` say which suite produced the worst case (an upper bound on what AutoAttack would
give). ``number_forward_passes`` keeps RobustBench's meaning (a property of the model, which a
leaderboard reader compares across entries): it is copied from the model entry when the evaluation
recorded it and is null otherwise (we do not guess it). What the attacks spent is reported beside it:
``attack_forward_passes`` (the rows' counted forward passes, the sum over attacks) and ``attack_queries``
(the images the evaluated model itself scored, when the rows counted them).
"""

import datetime
import re

import tfrobust

_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]+")


def is_standard_autoattack(row):
    """True when a suite row is the standard AutoAttack run white-box on the evaluated model itself.

    A transferred AutoAttack (on a TFLite file or a served endpoint, whose gradients come from a surrogate)
    is not: it bounds the artifact's robust accuracy from above, like any transfer attack, and is reported
    as such rather than as an ``autoattack_acc``."""
    config = row.get("config") or {}
    return (config.get("name") == "AutoAttack" and config.get("version") == "standard"
            and row.get("mode") == "white-box" and row.get("bounded", True))


def eps_text(eps, norm):
    """RobustBench's ε text: ``"8/255"`` for an L∞ ε that is a whole number of 1/255 steps, else ``"0.5"``."""
    steps = eps * 255
    if norm == "linf" and eps > 0 and abs(steps - round(steps)) < 1e-6:
        return f"{round(steps)}/255"
    return f"{eps:g}"


def file_name(label):
    """A file name for a model label (``cnn@1:saved_model`` → ``cnn@1_saved_model.json``)."""
    return _UNSAFE.sub("_", label).strip("_") + ".json"


def _percent(value):
    return f"{100 * value:.2f}"


def leaderboard_entry(report, model, date=None):
    """The RobustBench-shaped entry of one model entry of ``report``.

    Args:
      report: a report dict (``tfrobust.evaluation.evaluate``).
      model: one of ``report["models"]``.
      date: ISO date of the evaluation (default: the report's provenance date, else today, UTC).
    """
    threat = report["threat_model"]
    autoattack = any(is_standard_autoattack(row) for row in model["rows"])
    artifact = model.get("artifact") or {}
    queries = [row["queries"] for row in model["rows"] if row.get("queries") is not None]
    forward = [row["counts"]["forward"] for row in model["rows"] if "forward" in (row.get("counts") or {})]
    date = date or (report.get("provenance") or {}).get("date") or datetime.datetime.now(datetime.UTC).isoformat()
    return {
        "name": model["model"],
        "dataset": report.get("dataset"),
        "threat_model": {"linf": "Linf", "l2": "L2"}.get(threat["norm"], threat["norm"]),
        "eps": eps_text(threat["eps"], threat["norm"]),
        "clean_acc": _percent(model["clean"]),
        "autoattack_acc": _percent(model["worst_case"]) if autoattack else None,
        "worst_case_acc": _percent(model["worst_case"]),
        "worst_case_suite": report.get("suite"),
        "attacks": [row["attack"] for row in model["rows"] if row.get("bounded", True)],
        "n_examples": model.get("num_examples", report["num_examples"]),
        "architecture": model.get("architecture") or artifact.get("architecture"),
        "number_forward_passes": model.get("number_forward_passes"),
        "attack_forward_passes": sum(forward) if forward else None,
        "attack_queries": sum(queries) if queries else None,
        "additional_data": model.get("additional_data"),
        "date": date[:10],
        "tfrobust_version": tfrobust.__version__,
        "artifact": {k: artifact[k] for k in ("path", "format", "version", "fingerprint") if k in artifact} or None,
    }
