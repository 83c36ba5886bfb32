"""One trained model of a claim: loaded as training selected it, evaluated with the standard AutoAttack suite,
the sanity checks and its defense's adaptive recipe, with every per-point correct mask kept.

Randomised models (IRd): the standard suite runs unchanged — FGSM, PGD-20 and the standard AutoAttack with one
random pass per gradient and per prediction, the setting the verdict rule names "AA" — and the sanity checks'
``stochastic`` flag fires on them. Their adaptive recipe "eot" adds the attacks through the expectation (EOT-PGD
and, at full budget, AutoAttack's "rand" version, APGD-CE + APGD-DLR with EOT-20), whose rows join the per-point
``strongest``. Every row is scored by one random pass per point, so the worst case over rows also counts a
point the defense gets wrong on *any* of those passes (an attacker who may resubmit); each EOT row reports the
expected accuracy over repeated passes beside it.

Built on the public evaluation functions (``evaluation.evaluate`` with keyword arguments,
``defense_analyses``), so the evaluation's own options (progress, resumable state) pass through unchanged.
"""

import inspect
import os
import time

import numpy as np

from tfrobust.attacks import PGD
from tfrobust.attacks.autoattack import RAND_EOT_SAMPLES, AutoAttack
from tfrobust.errors import TfrobustError
from tfrobust.evaluation import evaluate
from tfrobust.evaluation.analyses import unchanged_prediction_ratio
from tfrobust.evaluation.defense_analyses import cifs_adaptive_evaluation, eot_evaluation, ode_evaluation
from tfrobust.evaluation.robustness import robust_accuracy
from tfrobust.evaluation.target import as_target
from tfrobust.evaluation.resume import EvaluationState, command_identity
from tfrobust.export.source import load_source_model
from tfrobust.reproduction.claims import ADAPTIVE_RECIPES as ADAPTIVE_RECIPES  # the registry's lists, re-exported
from tfrobust.reproduction.claims import ANALYSES, RECIPE_OPTIONS, recipe_parts
from tfrobust.reproduction.claims import options_for as options_for

#: The evaluation suite every model gets: FGSM, PGD-20 and the standard AutoAttack.
SUITE = "standard"
#: Mask keys: the standard suite's rows, its worst case, and ``strongest`` (worst case with the adaptive rows).
STANDARD_KEYS = ("clean", "fgsm", "pgd-20", "autoattack", "worst_case")
STRONGEST = "strongest"
#: ``ode_evaluation``'s options a claim may set per scale.
ODE_OPTIONS = RECIPE_OPTIONS["ode"]
#: The "eot" recipe's options (``eot_recipe``), prefixed so that they can sit beside the ODE recipe's.
EOT_OPTIONS = RECIPE_OPTIONS["eot"]


def recipe_settings(adaptive, options):
    """The options a model's recipe(s) run with: its share of a claim's ``options`` (``options_for``) with every
    recipe's defaults (``RECIPE_DEFAULTS``) filled in. The runner records this with a saved evaluation, so a
    change of those defaults is a new evaluation, not a silent reuse of one made under the old ones."""
    defaults = {name: value for part in recipe_parts(adaptive) for name, value in RECIPE_DEFAULTS[part].items()}
    return {**defaults, **options_for(adaptive, options)}


def eot_recipe(model, x, y, *, eps, seed=0, batch_size=250, eot_steps=100, eot_samples=20, eot_repeats=10,
               eot_autoattack=True):
    """The adaptive evaluation of a randomised model (IRd): attacks through the expectation (EOT).

    Rows (each scored, like every other row of the evaluation, by one random pass per point):

    * ``eot-pgd-<steps>x<samples>``: L∞ PGD (``eot_steps`` steps, step 2.5ε/steps, uniform start) whose every
      gradient is the mean of ``eot_samples`` per-pass loss gradients (``EOT(average="loss")``, Athalye et al.
      2018 §4; AutoAttack's ``eot_iter``) — the gradient of the expected loss, which one random pass does not
      give;
    * ``autoattack-rand`` (when ``eot_autoattack``): AutoAttack's version for randomised models, APGD-CE then
      APGD-DLR with 100 iterations, each gradient the mean of 20 passes (``AutoAttack(version="rand")``).

    Also reported: whether the outputs are stochastic (``logits_std``; the sanity checks flag it too), the
    clean accuracy averaged over ``eot_repeats`` passes and, per row, ``expected``: the accuracy on the crafted
    points averaged over ``eot_repeats`` passes (what a paper on a randomised defense reports; a single-pass
    mask is what the per-point worst case needs).

    Returns ``(summary, masks)``: the JSON-able summary (recipe, options, rows, worst case of the recipe,
    stochastic, logits_std, expected clean) and {row label: per-point bool mask}.
    """
    if not isinstance(eot_autoattack, bool):
        raise TfrobustError(f"eot_autoattack must be true or false, got {eot_autoattack!r}")
    for name, value, lowest in (("eot_steps", eot_steps, 1), ("eot_samples", eot_samples, 1),
                                ("eot_repeats", eot_repeats, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
            raise TfrobustError(f"{name} must be an integer >= {lowest}, got {value!r}")
    label = f"eot-pgd-{eot_steps}x{eot_samples}"
    found = eot_evaluation(model, x, y, PGD(norm="linf", eps=eps, steps=eot_steps, seed=seed), samples=eot_samples,
                           average="loss", repeats=eot_repeats, batch_size=batch_size, direct=False)
    (row,) = found["rows"]
    rows = [{"label": label, "accuracy": row["accuracy"], "expected": row["expected"], "seconds": row["seconds"],
             "mode": "white-box through EOT"}]
    masks = {label: np.asarray(found["correct"][row["attack"]], bool)}
    if eot_autoattack:
        target = as_target(model)
        attack = AutoAttack(norm="linf", eps=eps, seed=seed, version="rand", batch_size=batch_size)
        result = robust_accuracy(attack, target.logits_fn, x, y, predict_fn=target.predict, batch_size=batch_size)
        rows.append({"label": "autoattack-rand", "accuracy": result["accuracy"], "seconds": round(result["seconds"], 3),
                     "mode": f"white-box, APGD-CE + APGD-DLR through EOT-{RAND_EOT_SAMPLES}"})
        masks["autoattack-rand"] = np.asarray(result["correct"], bool)
    worst = np.logical_and.reduce(list(masks.values()))
    summary = {"recipe": f"EOT: PGD-{eot_steps} with the mean of {eot_samples} per-pass loss gradients"
                         + (", AutoAttack rand (APGD-CE + APGD-DLR, EOT-20)" if eot_autoattack else ""),
               "options": {"eot_steps": eot_steps, "eot_samples": eot_samples, "eot_repeats": eot_repeats,
                           "eot_autoattack": eot_autoattack},
               "rows": rows, "worst_case": float(np.mean(worst)), "stochastic": bool(found["stochastic"]),
               "logits_std": float(found["logits_std"]), "expected_clean": found["clean"]}
    return summary, masks


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


def _cifs_recipe(model, x, y, *, eps, seed, batch_size, steps=20):
    recipe = cifs_adaptive_evaluation(
        model, x, y, lambda loss: PGD(norm="linf", eps=eps, steps=steps, loss=loss, seed=seed), batch_size=batch_size)
    rows = [{"label": r["label"], "accuracy": r["accuracy"], "seconds": r["seconds"]} for r in recipe["rows"]]
    summary = {"recipe": f"cifs ℓβ sweep, PGD-{steps} per loss, full mask path", "rows": rows,
               "worst_case": recipe["worst_case"], "strongest_row": recipe["strongest"]}
    return summary, {label: mask for label, mask in recipe["correct"].items() if label != "clean"}


def _ode_recipe(model, x, y, *, eps, seed, batch_size, **options):
    recipe = ode_evaluation(model, x, y, eps=eps, seed=seed, batch_size=batch_size, **options)
    summary = {"recipe": "ODE recipe: white-box PGD, PGD via the fixed-step RK4 surrogate, Square, "
               f"SPSA ({', '.join(r['attack'] for r in recipe['rows'])})", "options": options,
               "worst_case": recipe["worst_case"],
               "rows": [{"label": r["attack"], "accuracy": r["accuracy"], "seconds": r["seconds"], "mode": r["mode"]}
                        for r in recipe["rows"]]}
    return summary, {label: mask for label, mask in recipe["correct"].items() if label not in ("clean", "worst_case")}


def _eot_recipe(model, x, y, *, eps, seed, batch_size, **options):
    return eot_recipe(model, x, y, eps=eps, seed=seed, batch_size=batch_size, **options)


_ADAPTIVE = {"cifs": _cifs_recipe, "ode": _ode_recipe, "eot": _eot_recipe}


def _defaults(function, names):
    parameters = inspect.signature(function).parameters
    return {name: parameters[name].default for name in names}


#: Each adaptive recipe's option defaults, read from the signature of the function that runs it (so the saved
#: settings cannot drift from what runs): the "cifs" PGD steps, ``ode_evaluation``'s and ``eot_recipe``'s.
RECIPE_DEFAULTS = {"cifs": _defaults(_cifs_recipe, RECIPE_OPTIONS["cifs"]),
                   "ode": _defaults(ode_evaluation, RECIPE_OPTIONS["ode"]),
                   "eot": _defaults(eot_recipe, RECIPE_OPTIONS["eot"])}
#: The "eot" recipe's defaults (the paper-scale setting; a claim lowers them per scale).
EOT_DEFAULTS = RECIPE_DEFAULTS["eot"]


def evaluate_model(model, x, y, *, eps, adaptive=None, seed=0, sanity_size=100, batch_size=250, verbose=0,
                   name="model", analyses=(), state_dir=None, adaptive_options=None):
    """Standard suite + sanity checks (+ the adaptive recipe) on one model.

    Args:
      model: a keras.Model (images in [0, 1] → logits).
      x, y: the test points (the same for every model of a claim).
      eps: L∞ radius.
      adaptive: None, "cifs" (``cifs_adaptive_evaluation`` with PGD-20 per loss, full mask path), "ode"
        (``ode_evaluation``), "eot" (``eot_recipe``: a randomised model attacked through its expectation), or
        distinct recipes joined by "+" ("ode+eot" for an ODE model with input randomisation: both run, and
        every row of both joins ``strongest``; ``result["adaptive"]`` then holds the rows of both, their joint
        worst case and each recipe's summary under "parts").
      seed, sanity_size, batch_size, verbose: passed to the evaluation.
      analyses: extra analyses on the first ``sanity_size`` points: "unchanged_prediction_ratio" (the share of
        points whose predicted label survives PGD-20 at ``eps``, ``analyses.unchanged_prediction_ratio``).
      adaptive_options: keyword arguments of the adaptive recipe(s): ``ode_evaluation``'s (``pgd_steps``,
        ``surrogate_steps``, ``square_queries``, ``spsa_steps``, ``spsa_samples``), for "cifs" ``steps`` of
        the PGD run per ℓβ loss (default 20), for "eot" ``eot_steps``, ``eot_samples``, ``eot_repeats``,
        ``eot_autoattack`` (defaults ``EOT_DEFAULTS``). ``options_for`` picks a model's share of a claim's.
      state_dir: where the standard suite journals its finished batches (``evaluation.resume``), so a killed
        evaluation resumes within AutoAttack; a state of other settings is discarded (the caller's saved
        result, not this state, says whether an evaluation is finished). The sanity checks and the adaptive
        recipe are redone after a kill. The state is removed when the evaluation is done.

    Returns:
      ``(result, masks)``: ``result`` is JSON-able (clean, rows with accuracy/seconds/mode, AutoAttack
      components, worst case, sanity flags, adaptive rows, the ``strongest`` worst case, seconds); ``masks``
      maps ``STANDARD_KEYS`` + ``STRONGEST`` (+ "adaptive:<row>") to per-point bool arrays.
    """
    parts = recipe_parts(adaptive)
    for analysis in analyses:
        if analysis not in ANALYSES:
            raise TfrobustError(f"unknown analysis {analysis!r}; choices: {', '.join(ANALYSES)}")
    options = dict(adaptive_options or {})
    allowed = [name for part in parts for name in RECIPE_OPTIONS[part]]
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
    found = []
    for part in parts:
        mine = {name: value for name, value in options.items() if name in RECIPE_OPTIONS[part]}
        summary, recipe_masks = _ADAPTIVE[part](model, x, y, eps=eps, seed=seed, batch_size=batch_size, **mine)
        found.append(summary)
        for label, mask in recipe_masks.items():
            key = f"adaptive:{label}"
            if key in masks:
                raise TfrobustError(f"two adaptive rows are called {label!r} (recipes {adaptive})")
            masks[key] = np.asarray(mask, bool)
            strongest &= masks[key]
    if len(found) == 1:
        result["adaptive"] = found[0]
    elif found:  # e.g. "ode+eot": one entry with the rows of both and the worst case over all of them
        recipe_masks = [masks[k] for k in masks if k.startswith("adaptive:")]
        result["adaptive"] = {"recipe": "; ".join(f["recipe"] for f in found), "options": options,
                              "rows": [row for f in found for row in f["rows"]],
                              "worst_case": float(np.mean(np.logical_and.reduce(recipe_masks))),
                              "parts": [{k: v for k, v in f.items() if k != "rows"} for f in found]}
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
