"""Run a suite of attacks on one model: per-attack and worst-case robust accuracy, time and counts.

A suite is an ordered ``{label: attack}``. Gradient attacks run white-box where the target has
gradients; on a target without them (TFLite, a served model) they run as transfer attacks from a
differentiable surrogate, or raise a clear error when none is given. Prediction-only attacks (Square,
SPSA, noise) always query the target itself — inside AutoAttack too: on a prediction-only target its
gradient components run by transfer and its Square against the target (``routing.RoutedAutoAttack``).
Every row records its ``mode`` (where it ran) and ``queries``: the images the target scored during the
row (the artifact's own counter where there is one, else the attack's forward count).
A ``Transfer`` attack crafts on its own surrogate and is reported as "transfer from <its surrogate>"; the
route and the reported mode follow the attack's ``kind``.
"""

import numpy as np

from tfrobust.attacks import registry
from tfrobust.attacks.autoattack import AutoAttack
from tfrobust.attacks.base import QUERY_BASED, TRANSFER, WHITE_BOX
from tfrobust.attacks.transfer import Transfer
from tfrobust.errors import TfrobustError
from tfrobust.evaluation.attack_options import relabel
from tfrobust.evaluation.distributed import TARGET_QUERIES
from tfrobust.evaluation.robustness import robust_accuracy
from tfrobust.evaluation.routing import RoutedAutoAttack
from tfrobust.evaluation.target import as_target

#: Named suites: (label, registered attack name, overrides).
SUITES = {
    # Minutes on a CPU: single-step, iterative and a prediction-only attack (for the masking checks).
    "quick": [("fgsm", "fgsm", {}), ("pgd-20", "pgd", {"steps": 20}), ("square-1000", "square", {"queries": 1000})],
    # Croce & Hein's standard AutoAttack, plus FGSM and PGD-20 for the sanity checks.
    "standard": [("fgsm", "fgsm", {}), ("pgd-20", "pgd", {"steps": 20}), ("autoattack", "autoattack", {})],
}


def suite_entries(spec):
    """[(label, attack name, overrides)] for a suite name or a comma-separated list of attack names;
    raises one line listing the valid suites and attacks for anything unknown."""
    if isinstance(spec, str) and spec in SUITES:
        return SUITES[spec]
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    entries = [(item.strip(), item.strip(), {}) for item in items if item.strip()]
    if not entries:
        raise TfrobustError(f"empty attack suite; give one of {', '.join(SUITES)} or attack names")
    for _, name, _ in entries:
        if name not in registry.ATTACKS:
            raise TfrobustError(f"unknown attack {name!r}; suites: {', '.join(SUITES)}; "
                                f"attacks: {', '.join(registry.names())}")
    return entries


def build_suite(spec, *, norm, eps, seed=0, overrides=None, batch_size=None):
    """``spec`` is a suite name ("quick", "standard") or a comma-separated list of attack names
    (``tfrobust.attacks.registry.names()``); returns ``{label: attack}``. ``overrides`` maps an attack
    name to extra constructor arguments (e.g. ``{"pgd": {"steps": 50}}``; a named suite's entry they change
    is relabelled, see ``attack_options.relabel``). ``batch_size``: the evaluation's batch size, given to the
    attacks that batch themselves (AutoAttack: its chunk size, also the unit a resumed run keeps) unless an
    override sets theirs; None leaves their own default."""
    suite = {}
    for label, name, kwargs in relabel(suite_entries(spec), overrides or {}):
        if batch_size is not None and getattr(registry.attack_class(name), "batches_itself", False):
            kwargs = {"batch_size": batch_size, **kwargs}
        suite[label] = registry.make(name, norm=norm, eps=eps, seed=seed, **kwargs)
    return suite


def run_suite(model, x, y, attacks, *, surrogate=None, batch_size=250, name=None, verbose=0,
              keep_adversarial=False, journal=None, executor=None):
    """Evaluates ``model`` (keras.Model, Artifact, callable or Target) under every attack.

    Returns a dict: ``clean`` accuracy, ``rows`` (one per attack: label, mode, accuracy, seconds,
    counts, queries, config, ``bounded``, ``invalid`` returned points, and AutoAttack's per-component
    ``components``), ``worst_case`` (a point counts as robust only if it survived every ε-bounded
    attack: attacks that do not declare ``respects_threat_model``, e.g. Gaussian noise with σ = ε, are
    reported in their rows but cannot lower the worst case below the ε-robust accuracy), ``notes``
    (e.g. that the logits were taken before a final softmax), and ``correct`` (per-point bool arrays,
    for callers that combine results). ``verbose`` (0, 1, 2) shows each attack's progress
    (``robust_accuracy``); ``keep_adversarial`` adds ``adversarial``: {label: {"x_adv", "y_pred"}}, every
    point's crafted input and the target's label on it (``y_pred == y`` is the attack's ``correct`` mask).

    ``journal`` (a ``tfrobust.core.journal.Journal``) makes the run resumable: each attack records its
    batches in ``journal.child(label)`` (``robust_accuracy``), and a re-run with the same arguments
    replays them and ends with exactly the uninterrupted run's numbers. ``executor`` (a sharded
    evaluation's, ``tfrobust.evaluation.distributed``) supplies per attack the ``map_batches`` /
    ``map_chunks`` that send the attack's batches to its workers.
    """
    target = as_target(model, name)
    surrogate = as_target(surrogate) if surrogate is not None else None
    x = np.asarray(x, np.float32)
    y = np.asarray(y).astype(np.int64)
    query_count = target.query_count
    clean = robust_accuracy(None, None, x, y, predict_fn=target.predict, batch_size=batch_size,
                            journal=journal.child("clean") if journal is not None else None)
    worst = clean["correct"].copy()
    rows, correct, adversarial = [], {"clean": clean["correct"]}, {}
    for label, attack in attacks.items():
        attack, craft_fn, mode = route(attack, label, target, surrogate)
        distributed = executor.attack_maps(label) if executor is not None else {}
        if not hasattr(attack, "run_chunk"):  # only AutoAttack itself shares out its chunks
            distributed.pop("map_chunks", None)
        result = robust_accuracy(attack, craft_fn, x, y, predict_fn=target.predict, batch_size=batch_size,
                                 verbose=verbose, name=f"{target.name} {label}", keep_adversarial=keep_adversarial,
                                 journal=journal.child(label) if journal is not None else None,
                                 query_count=query_count, **distributed)
        if keep_adversarial:
            adversarial[label] = {"x_adv": result["x_adv"], "y_pred": result["y_pred"]}
        # Attacks calling ``target.predict`` are in the artifact's counter; those calling ``logits_fn``
        # (white-box, or query-based on a differentiable target) count their own forward passes.
        queries = result["counts"].get("forward", 0) if craft_fn is not target.predict else 0
        queries += result["target_queries"] + result["counts"].pop(TARGET_QUERIES, 0)  # + Ray workers' queries
        bounded = bool(getattr(attack, "respects_threat_model", True))
        if bounded:
            worst &= result["correct"]
        correct[label] = result["correct"]
        row = {"attack": label, "mode": mode, "accuracy": result["accuracy"], "bounded": bounded,
               "seconds": round(result["seconds"], 3), "counts": result["counts"], "queries": int(queries),
               "invalid": result["invalid"], "config": attack.get_config()}
        if result["attack_report"]:
            row["components"] = _components(result["attack_report"], len(y))
        rows.append(row)
    return {"model": target.name, "num_examples": int(len(y)), "clean": clean["accuracy"], "rows": rows,
            "worst_case": float(np.mean(worst)) if len(worst) else float("nan"),
            "notes": list(getattr(target, "notes", [])), "correct": {**correct, "worst_case": worst},
            **({"adversarial": adversarial} if keep_adversarial else {})}


def _components(report, num_examples):
    """AutoAttack's per-component report with its cumulative robust accuracy over all ``num_examples``
    points (it counts its robust points among those it was given, the clean-correct ones)."""
    return [{**step, "robust_accuracy": step["robust"] / max(num_examples, 1)} for step in report]


def route(attack, label, target, surrogate):
    """(attack, what it is called with, mode) for this target."""
    kind = getattr(attack, "kind", WHITE_BOX)  # an attack-like callable without a kind: white-box
    if kind == TRANSFER:
        return attack, target.predict, f"transfer from {attack.surrogate_name}"
    if kind == QUERY_BASED:
        return attack, (target.logits_fn or target.predict), QUERY_BASED
    if target.differentiable:
        return attack, target.logits_fn, "white-box"
    if surrogate is None or not surrogate.differentiable:
        raise TfrobustError(
            f"attack {label!r} needs input gradients but {target.name} has none; use a gradient-free "
            "attack (square, spsa) or a transfer attack from a differentiable surrogate")
    if isinstance(attack, AutoAttack):
        routed = RoutedAutoAttack(attack, surrogate.logits_fn, surrogate.name)
        return routed, target.predict, routed.describe()
    return Transfer(attack, surrogate.logits_fn, surrogate.name), target.predict, f"transfer from {surrogate.name}"
