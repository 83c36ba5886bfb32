"""One trained model of a claim: loaded as training selected it, evaluated with the standard AutoAttack suite,
the sanity checks and its defense's adaptive recipe, with every per-point correct mask kept.

Built on the public evaluation functions (``evaluation.evaluate`` with keyword arguments,
``defense_analyses``), so the evaluation's own options (progress, resumable state) pass through unchanged.
"""

import os
import time

import numpy as np

from tfrobust.attacks import PGD
from tfrobust.errors import TfrobustError
from tfrobust.evaluation import evaluate
from tfrobust.evaluation.analyses import unchanged_prediction_ratio
from tfrobust.evaluation.defense_analyses import cifs_adaptive_evaluation, ode_evaluation
from tfrobust.evaluation.resume import EvaluationState, command_identity
from tfrobust.export.source import load_source_model

#: The evaluation suite every model gets: FGSM, PGD-20 and the standard AutoAttack.
SUITE = "standard"
#: Mask keys: the standard suite's rows, its worst case, and ``strongest`` (worst case with the adaptive rows).
STANDARD_KEYS = ("clean", "fgsm", "pgd-20", "autoattack", "worst_case")
STRONGEST = "strongest"
ADAPTIVE_RECIPES = ("cifs", "ode")
ANALYSES = ("unchanged_prediction_ratio",)
#: ``ode_evaluation``'s options a claim may set per scale.
ODE_OPTIONS = ("pgd_steps", "surrogate_steps", "square_queries", "spsa_steps", "spsa_samples")


def load_trained(run_dir):
    """``(model, summary)`` of a finished training run, with the weights training selected: the best held-out
    epoch's when the run exported ``best``, else the last epoch's."""
    model, summary = load_source_model(run_dir)
    selection = (summary or {}).get("selection") or {}
    if selection.get("export_weights") == "best":
        path = os.path.join(run_dir, "checkpoints", "best.weights.h5")
        if not os.path.isfile(path):
            raise TfrobustError(f"{run_dir}: the run selected its best epoch but {path} is missing")
        model.load_weights(path)
    return model, summary


def evaluate_model(model, x, y, *, eps, adaptive=None, seed=0, sanity_size=100, batch_size=250, verbose=0,
                   name="model", analyses=(), state_dir=None, adaptive_options=None):
    """Standard suite + sanity checks (+ the adaptive recipe) on one model.

    Args:
      model: a keras.Model (images in [0, 1] → logits).
      x, y: the test points (the same for every model of a claim).
      eps: L∞ radius.
      adaptive: None, "cifs" (``cifs_adaptive_evaluation`` with PGD-20 per loss, full mask path) or "ode"
        (``ode_evaluation``).
      seed, sanity_size, batch_size, verbose: passed to the evaluation.
      analyses: extra analyses on the first ``sanity_size`` points: "unchanged_prediction_ratio" (the share of
        points whose predicted label survives PGD-20 at ``eps``, ``analyses.unchanged_prediction_ratio``).
      adaptive_options: keyword arguments of the adaptive recipe: ``ode_evaluation``'s (``pgd_steps``,
        ``surrogate_steps``, ``square_queries``, ``spsa_steps``, ``spsa_samples``) or, for "cifs", ``steps`` of
        the PGD run per ℓβ loss (default 20).
      state_dir: where the standard suite journals its finished batches (``evaluation.resume``), so a killed
        evaluation resumes within AutoAttack; a state of other settings is discarded (the caller's saved
        result, not this state, says whether an evaluation is finished). The sanity checks and the adaptive
        recipe are redone after a kill. The state is removed when the evaluation is done.

    Returns:
      ``(result, masks)``: ``result`` is JSON-able (clean, rows with accuracy/seconds/mode, AutoAttack
      components, worst case, sanity flags, adaptive rows, the ``strongest`` worst case, seconds); ``masks``
      maps ``STANDARD_KEYS`` + ``STRONGEST`` (+ "adaptive:<row>") to per-point bool arrays.
    """
    if adaptive not in (None, *ADAPTIVE_RECIPES):
        raise TfrobustError(f"unknown adaptive recipe {adaptive!r}; choices: {', '.join(ADAPTIVE_RECIPES)}")
    for analysis in analyses:
        if analysis not in ANALYSES:
            raise TfrobustError(f"unknown analysis {analysis!r}; choices: {', '.join(ANALYSES)}")
    options = dict(adaptive_options or {})
    allowed = {"cifs": ("steps",), "ode": ODE_OPTIONS}.get(adaptive, ())
    if set(options) - set(allowed):
        raise TfrobustError(f"unknown options {sorted(set(options) - set(allowed))} for the adaptive recipe "
                            f"{adaptive!r}; choices: {', '.join(allowed) or 'none'}")
    start = time.perf_counter()
    state = None
    if state_dir is not None:
        identity = command_identity({name: model}, x, y, eps=eps, norm="linf", suite=SUITE, seed=seed,
                                    batch_size=batch_size)
        try:
            state = EvaluationState(state_dir, identity)
        except TfrobustError:  # another evaluation's leftovers: this run's settings decide
            state = EvaluationState(state_dir, identity, restart=True)
    report = evaluate({name: model}, x, y, eps=eps, norm="linf", suite=SUITE, sanity_size=sanity_size,
                      batch_size=batch_size, seed=seed, verbose=verbose, title=name,
                      journal=None if state is None else state.journal("standard"))
    entry = report["models"][0]
    correct = report["correct"][name]
    masks = {key: np.asarray(correct[key], bool) for key in STANDARD_KEYS}
    sanity = entry.get("sanity") or {"flags": []}
    result = {
        "clean": entry["clean"],
        "rows": [{"attack": r["attack"], "accuracy": r["accuracy"], "seconds": r["seconds"], "mode": r["mode"],
                  **({"components": r["components"]} if "components" in r else {})} for r in entry["rows"]],
        "worst_case": entry["worst_case"],
        "sanity_flags": [{"check": f["check"], "flagged": f["flagged"], "detail": f["detail"]}
                         for f in sanity["flags"]],
        "flagged": [f["check"] for f in sanity["flags"] if f["flagged"]],
        "notes": entry.get("notes", []),
    }
    strongest = masks["worst_case"].copy()
    if adaptive == "cifs":
        steps = options.get("steps", 20)
        recipe = cifs_adaptive_evaluation(
            model, x, y, lambda loss: PGD(norm="linf", eps=eps, steps=steps, loss=loss, seed=seed),
            batch_size=batch_size)
        rows = [{"label": r["label"], "accuracy": r["accuracy"], "seconds": r["seconds"]} for r in recipe["rows"]]
        result["adaptive"] = {"recipe": f"cifs ℓβ sweep, PGD-{steps} per loss, full mask path", "rows": rows,
                              "worst_case": recipe["worst_case"], "strongest_row": recipe["strongest"]}
        for label, mask in recipe["correct"].items():
            if label != "clean":
                masks[f"adaptive:{label}"] = np.asarray(mask, bool)
                strongest &= masks[f"adaptive:{label}"]
    elif adaptive == "ode":
        recipe = ode_evaluation(model, x, y, eps=eps, seed=seed, batch_size=batch_size, **options)
        result["adaptive"] = {"recipe": "ODE recipe: white-box PGD, PGD via the fixed-step RK4 surrogate, Square, "
                              f"SPSA ({', '.join(r['attack'] for r in recipe['rows'])})", "options": options,
                              "worst_case": recipe["worst_case"],
                              "rows": [{"label": r["attack"], "accuracy": r["accuracy"], "seconds": r["seconds"],
                                        "mode": r["mode"]} for r in recipe["rows"]]}
        for label, mask in recipe["correct"].items():
            if label not in ("clean", "worst_case"):
                masks[f"adaptive:{label}"] = np.asarray(mask, bool)
                strongest &= masks[f"adaptive:{label}"]
    for analysis in analyses:
        ratio = unchanged_prediction_ratio(model, x[:sanity_size], [eps], batch_size=batch_size)
        result.setdefault("analyses", {})[analysis] = {"eps": eps, "points": int(min(sanity_size, len(x))),
                                                       "ratio": float(ratio["ratio"][-1])}
    masks[STRONGEST] = strongest
    result["strongest"] = float(np.mean(strongest))
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["resumed"] = bool(state is not None and state.resumed)
    if state is not None:
        state.clear()
    return result, masks
