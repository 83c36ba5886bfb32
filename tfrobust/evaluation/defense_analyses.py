"""Evaluations and analyses specific to the thesis' defenses (Yan, chapters 3–4).

Honest evaluation recipes — each defense is attacked the way its failure modes require:

* ``cifs_adaptive_evaluation``: CIFS computes a gradient inside its forward pass; attack it through
  the full mask path with the adaptive loss ℓβ over final + probe logits for every
  β_atk ∈ {0, 0.1, 1, 2, 10, 100, ∞} (and each probe alone), worst case per point (thesis §4.4.1).
* ``ode_evaluation``: ODE solvers can mask gradients; white-box PGD + PGD crafted on a fixed-step RK4
  surrogate (exact backprop gradients) + Square + SPSA, worst case per point.
* ``eot_evaluation``: a randomised model (IRd) is attacked through ``EOT`` (the gradient of its
  expectation) as well as directly; reports whether its outputs are stochastic (the sanity flag).

Analyses (thesis figures/tables):

* ``channel_activations`` / ``plot_channel_activations``: mean activation per channel at the
  penultimate layer, natural vs adversarial, sorted by the last linear layer's weights for a class
  (fig. 4.1/4.3, App. 4.6.1);
* ``top_k_accuracy``: top-k accuracy under attack (Table 4.4);
* ``accuracy_nfe_vs_tolerance`` / ``plot_accuracy_nfe_vs_tolerance``: accuracy (clean, optionally under
  attack) and NFE of an ODE model versus the DormandPrince tolerance.

``save_json`` writes any of these results (NumPy arrays and ``inf`` included) as JSON.
"""

import math

import numpy as np
import tensorflow as tf

from tfrobust.attacks import EOT, PGD, SPSA, Square
from tfrobust.attacks.eot import logits_std
from tfrobust.attacks.losses import AuxiliaryLoss
from tfrobust.attacks.transfer import Transfer
from tfrobust.core.files import write_json
from tfrobust.core.layer_needs import collect_diagnostics
from tfrobust.core.plotting import pyplot, save_figure
from tfrobust.errors import TfrobustError
from tfrobust.evaluation.robustness import predict_labels, robust_accuracy
from tfrobust.evaluation.sanity import EXPLANATIONS
from tfrobust.evaluation.suite import run_suite
from tfrobust.evaluation.target import as_target
from tfrobust.layers.cifs import probe_keys, probed_model, set_mask_path
from tfrobust.layers.ode_block import STAGES, ode_blocks, with_solver

#: The thesis' attacker choices of β in ℓβ (§4.4.1); ∞ attacks the probes only.
BETAS = (0.0, 0.1, 1.0, 2.0, 10.0, 100.0, float("inf"))
#: Logit spread above which a model counts as stochastic (the ``stochastic`` sanity check's threshold).
STOCHASTIC_THRESHOLD = 1e-5


def _prepare(x, y):
    return np.asarray(x, np.float32), np.asarray(y).astype(np.int64)


# -- CIFS ---------------------------------------------------------------------------------------------
def cifs_adaptive_evaluation(model, x, y, make_attack, *, betas=BETAS, per_probe=True, base_loss="ce",
                             mask_path="full", batch_size=250):
    """Worst case over the thesis' adaptive ℓβ attacks on a CIFS model.

    Args:
      model: a Keras model with CIFS layers (``images → logits``; e.g. ``cifs_resnet10``).
      x, y: images in [0, 1] and labels.
      make_attack: ``make_attack(loss) -> attack`` building the attack for one loss, e.g.
        ``lambda loss: PGD(eps=0.1, steps=20, loss=loss)`` (any attack taking ``loss=``).
      betas: the β_atk values (``AuxiliaryLoss.beta``; ``inf`` = probes only).
      per_probe: also attack each probe alone (the thesis' "∞-1", "∞-2").
      base_loss: the per-output loss ("ce", or "margin" for a C&W-style attack).
      mask_path: "full" (default: input gradients through the CIFS masks — the stronger attack, also
        for models trained "detached") or "detached" (the reference code's gradient).
      batch_size: points per attack batch.

    Returns:
      dict: ``clean``, ``rows`` ([{label, beta, accuracy, seconds}], one per attack loss),
      ``worst_case`` (a point is robust only if it survived every row), ``strongest`` (label of the
      lowest row) and ``correct`` (per-point bool arrays by label).
    """
    x, y = _prepare(x, y)
    attack_model = set_mask_path(model, mask_path)
    view = probed_model(attack_model)
    keys = probe_keys(attack_model)
    target = as_target(model)
    craft_fn = lambda images: view(images, training=False)
    losses = [(f"beta={beta:g}", beta, AuxiliaryLoss.beta(beta, keys, base=base_loss)) for beta in betas]
    if per_probe and len(keys) > 1:
        losses += [(f"beta=inf:{key}", float("inf"), AuxiliaryLoss({key: 1.0}, base_loss, logits_weight=0.0))
                   for key in keys]
    clean = robust_accuracy(None, None, x, y, predict_fn=target.predict, batch_size=batch_size)
    worst = clean["correct"].copy()
    rows, correct = [], {"clean": clean["correct"]}
    for label, beta, loss in losses:
        result = robust_accuracy(make_attack(loss), craft_fn, x, y, predict_fn=target.predict,
                                 batch_size=batch_size)
        worst &= result["correct"]
        correct[label] = result["correct"]
        rows.append({"label": label, "beta": beta, "accuracy": result["accuracy"],
                     "seconds": round(result["seconds"], 3)})
    strongest = min(rows, key=lambda row: row["accuracy"])["label"] if rows else None
    return {"clean": clean["accuracy"], "rows": rows, "worst_case": float(np.mean(worst)),
            "strongest": strongest, "mask_path": mask_path, "correct": correct}


# -- ODE models ---------------------------------------------------------------------------------------
def ode_surrogate(model, steps=None):
    """The fixed-step RK4 copy of an ODE model used for gradients: ``steps`` per block, default the
    model's own step count for fixed-grid blocks and 8 for DormandPrince blocks."""
    blocks = ode_blocks(model)
    if not blocks:
        raise TfrobustError(f"model {model.name!r} has no ODEBlock layers")
    if steps is None:
        steps = max(b.steps if b.solver in STAGES else 8 for b in blocks)
    return with_solver(model, "rk4", steps=steps)


def ode_evaluation(model, x, y, *, eps, norm="linf", pgd_steps=20, surrogate_steps=None, square_queries=1000,
                   spsa_steps=100, spsa_samples=128, seed=0, batch_size=250):
    """The ODE evaluation recipe: white-box PGD, PGD crafted on the fixed-step surrogate and evaluated
    on the model, Square and SPSA (prediction-only); worst case per point (``run_suite`` output)."""
    x, y = _prepare(x, y)
    surrogate = ode_surrogate(model, surrogate_steps)
    threat = dict(norm=norm, eps=eps, seed=seed)
    surrogate_name = f"fixed-step rk4 surrogate ({ode_blocks(surrogate)[0].steps} steps)"
    attacks = {
        f"pgd-{pgd_steps}": PGD(steps=pgd_steps, **threat),
        f"pgd-{pgd_steps} via {surrogate_name}": Transfer(
            PGD(steps=pgd_steps, **threat), lambda images: surrogate(images, training=False),
            f"the {surrogate_name}"),
        f"square-{square_queries}": Square(queries=square_queries, **threat),
        f"spsa-{spsa_steps}": SPSA(steps=spsa_steps, samples=spsa_samples, **threat),
    }
    return run_suite(model, x, y, attacks, batch_size=batch_size)


def accuracy_nfe_vs_tolerance(model, x, y, tolerances=(1e-1, 1e-2, 1e-3, 1e-4), *, attack=None,
                              batch_size=250):
    """Accuracy and NFE of an ODE model solved by DormandPrince at each tolerance (rtol = atol).

    Returns [{tolerance, clean, nfe (mean evaluations per forward pass, summed over the ODE blocks),
    robust (under ``attack``, white-box on that solver, if given)}]. A robust accuracy that rises as the
    tolerance loosens while clean accuracy holds is a gradient-masking signature.
    """
    x, y = _prepare(x, y)
    rows = []
    for tolerance in tolerances:
        solved = with_solver(model, "dopri5", rtol=float(tolerance), atol=float(tolerance))
        target = as_target(solved)
        predictions, evaluations = [], []
        for i in range(0, len(x), batch_size):
            predictions.append(np.argmax(target.predict(x[i:i + batch_size]), axis=-1))
            evaluations.append(collect_diagnostics(solved)["nfe"])
        row = {"tolerance": float(tolerance), "clean": float(np.mean(np.concatenate(predictions) == y)),
               "nfe": float(np.mean(evaluations))}
        if attack is not None:
            row["robust"] = robust_accuracy(attack, target.logits_fn, x, y, predict_fn=target.predict,
                                            batch_size=batch_size)["accuracy"]
        rows.append(row)
    return rows


def plot_accuracy_nfe_vs_tolerance(rows, path, title=None):
    """PNG of ``accuracy_nfe_vs_tolerance`` rows: clean and robust accuracy (left axis) and NFE (right
    axis) against the tolerance (log scale, loosest on the left). Returns ``path``."""
    if not rows:
        raise TfrobustError("plot_accuracy_nfe_vs_tolerance needs at least one row")
    plt = pyplot()

    tolerances = [row["tolerance"] for row in rows]
    figure, accuracy = plt.subplots(figsize=(6, 4))
    accuracy.plot(tolerances, [row["clean"] for row in rows], "o-", color="tab:blue", label="clean")
    if all("robust" in row for row in rows):
        accuracy.plot(tolerances, [row["robust"] for row in rows], "s-", color="tab:red", label="under attack")
    accuracy.set(xscale="log", xlabel="DormandPrince tolerance (rtol = atol)", ylabel="accuracy", ylim=(0, 1),
                 title=title or "accuracy and NFE vs tolerance")
    accuracy.invert_xaxis()
    nfe = accuracy.twinx()
    nfe.plot(tolerances, [row["nfe"] for row in rows], "^--", color="gray", label="NFE")
    nfe.set(ylabel="function evaluations per forward pass")
    handles = accuracy.get_legend_handles_labels()[0] + nfe.get_legend_handles_labels()[0]
    accuracy.legend(handles=handles, fontsize=8, loc="lower left")
    return save_figure(figure, path)


def save_json(result, path):
    """Writes an analysis or evaluation result as JSON (atomically: a temp file, then rename): NumPy
    arrays and scalars become lists and numbers, ``inf``/``nan`` become the strings "inf"/"nan" (strict
    JSON has no such numbers). Returns ``path``."""

    def plain(value):
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, np.ndarray):
            return plain(value.tolist())
        if isinstance(value, np.generic):
            return plain(value.item())
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        return value

    return write_json(path, plain(result), allow_nan=False)


# -- randomised models ----------------------------------------------------------------------------------
def eot_evaluation(model, x, y, attack, *, samples=10, average="logits", repeats=4, batch_size=250, direct=True):
    """A randomised model under ``attack`` run directly and through ``EOT(samples)``.

    Args:
      model: the randomised model (keras.Model, Artifact, callable or Target).
      x, y: images in [0, 1] and labels.
      attack: the attack (crafted once on the model itself, once on ``EOT(model, samples, average)``).
      samples, average: the ``EOT`` wrapper's passes and averaging ("loss" is AutoAttack's ``eot_iter``).
      repeats: passes of the stochasticity check and of the expected accuracies.
      batch_size: points per attack batch.
      direct: also run the attack without EOT (the contrast row); False runs the EOT row only.

    Returns dict: ``stochastic`` (the sanity flag: logit spread over ``repeats`` identical calls above
    1e-5) with ``logits_std`` and its explanation, ``clean`` (accuracy averaged over ``repeats``
    random passes), ``rows`` (direct and EOT robust accuracy, each scored by one random pass per point
    as ``robust_accuracy`` does, with ``expected``: the accuracy on the same crafted points averaged over
    ``repeats`` further passes, the number a randomised defense's paper reports), ``worst_case`` per
    point and ``correct`` (per-point bool arrays: "clean" and each row's attack label).
    """
    x, y = _prepare(x, y)
    target = as_target(model)
    spread = logits_std(target.logits_fn, tf.constant(x[:batch_size]), repeats)
    clean_passes = [predict_labels(target.predict, x, batch_size) == y for _ in range(repeats)]
    clean = float(np.mean(clean_passes))
    crafted = [("direct", target.logits_fn)] if direct else []
    crafted.append((f"EOT-{samples} ({average})", EOT(target.logits_fn, samples=samples, average=average)))
    rows, correct = [], {"clean": clean_passes[0]}
    worst = np.ones(len(y), bool)
    for label, craft_fn in crafted:
        result = robust_accuracy(attack, craft_fn, x, y, predict_fn=target.predict, batch_size=batch_size,
                                 keep_adversarial=True)
        expected = float(np.mean([predict_labels(target.predict, result["x_adv"], batch_size) == y
                                  for _ in range(repeats)]))
        rows.append({"attack": label, "accuracy": result["accuracy"], "expected": expected,
                     "seconds": round(result["seconds"], 3)})
        correct[label] = result["correct"]
        worst &= result["correct"]
    return {"stochastic": spread > STOCHASTIC_THRESHOLD, "logits_std": spread,
            "explanation": EXPLANATIONS["stochastic"], "clean": clean, "rows": rows,
            "worst_case": float(np.mean(worst)), "correct": correct}


# -- analyses ---------------------------------------------------------------------------------------------
def _pooled_features(model, layer, x, batch_size):
    import keras

    features = keras.Model(model.input, model.get_layer(layer).output)
    pooled = [tf.reduce_mean(tf.cast(features(x[i:i + batch_size], training=False), tf.float32), axis=[1, 2]).numpy()
              for i in range(0, len(x), batch_size)]
    return np.concatenate(pooled) if pooled else np.zeros((0, features.output.shape[-1]), np.float32)


def channel_activations(model, x, y, class_index, *, x_adv=None, layer="features", classifier="logits",
                        threshold=0.01, batch_size=250):
    """Channel-wise activations of one class at ``layer`` (thesis App. 4.6.1, fig. 4.1/4.3).

    The feature map is globally average-pooled per channel; over the test points of ``class_index``
    the mean activation per channel and the activated frequency (share of points where the channel
    exceeds ``threshold`` × that point's largest channel) are computed for natural and (if given)
    adversarial images. Channels are sorted by the ``classifier`` Dense layer's weight for the class,
    descending; mean activations are divided by the largest absolute mean over natural and adversarial
    (so their levels stay comparable).

    Returns dict: ``order`` (channel indices), ``weights`` (sorted), ``natural`` / ``adversarial``
    ({``mean``, ``frequency``}, sorted; adversarial None without ``x_adv``), ``count``.
    """
    x, y = _prepare(x, y)
    selected = y == class_index
    if not np.any(selected):
        raise TfrobustError(f"no test points of class {class_index}")
    weights = np.asarray(model.get_layer(classifier).kernel)[:, class_index]
    order = np.argsort(-weights)
    results = {}
    for name, images in (("natural", x), ("adversarial", x_adv)):
        if images is None:
            results[name] = None
            continue
        pooled = _pooled_features(model, layer, np.asarray(images, np.float32)[selected], batch_size)
        if pooled.shape[1] != len(weights):
            raise TfrobustError(f"layer {layer!r} has {pooled.shape[1]} channels but {classifier!r} takes "
                                f"{len(weights)} inputs")
        peak = np.max(np.abs(pooled), axis=1, keepdims=True)
        frequency = np.mean(np.abs(pooled) > threshold * peak, axis=0)
        results[name] = {"mean": np.mean(pooled, axis=0)[order], "frequency": frequency[order]}
    scale = max(np.max(np.abs(r["mean"])) for r in results.values() if r is not None) or 1.0
    for r in results.values():
        if r is not None:
            r["mean"] = r["mean"] / scale
    return {"order": order, "weights": weights[order], "count": int(np.sum(selected)), **results}


def plot_channel_activations(result, path, title=None):
    """Fig. 4.1-style PNG: normalised mean activations (natural vs adversarial), the sorted classifier
    weights and the activated frequencies, against the sorted channel index. Returns ``path``."""
    plt = pyplot()

    channels = np.arange(len(result["order"]))
    figure, (means, weights, frequency) = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
    for name, style in (("natural", "tab:blue"), ("adversarial", "tab:red")):
        if result.get(name) is not None:
            means.bar(channels, result[name]["mean"], color=style, alpha=0.6, label=name, width=1.0)
            frequency.bar(channels, result[name]["frequency"], color=style, alpha=0.6, label=name, width=1.0)
    weights.bar(channels, result["weights"], color="gray", width=1.0)
    means.set(ylabel="mean activation\n(normalised)", title=title or f"{result['count']} test points")
    weights.set(ylabel="classifier weight")
    frequency.set(ylabel="activated\nfrequency", xlabel="channel (sorted by weight)", ylim=(0, 1))
    means.legend(fontsize=8)
    return save_figure(figure, path)


def top_k_accuracy(model, x, y, attack=None, ks=(1, 2, 3), batch_size=250):
    """Top-k accuracies under ``attack`` (clean if None) over every point (thesis Table 4.4): the share of
    points whose label is among the k largest logits of the attacked image. Returns {k: accuracy}."""
    x, y = _prepare(x, y)
    target = as_target(model)
    logits = []
    for i in range(0, len(x), batch_size):
        batch = x[i:i + batch_size]
        if attack is not None:
            batch = np.asarray(attack(target.logits_fn, batch, y[i:i + batch_size]))
        logits.append(target.predict(batch))
    logits = np.concatenate(logits)
    ranks = np.sum(logits > logits[np.arange(len(y)), y][:, None], axis=1)  # classes strictly above the label
    return {int(k): float(np.mean(ranks < k)) for k in ks}
