"""Evaluating image denoisers: PSNR / SSIM under Gaussian, uniform and ObsAtk noise (thesis Table 2.1),
picture grids (Fig. 2.2 / 2.3), PSNR-vs-ε curves, and the comparison of exported denoisers.

Noise at energy density γ̂² (thesis §2.3.2):
  * ``gaussian``: y = x + N(0, γ̂²);  ``uniform``: y = x + U(−√3·γ̂, √3·γ̂) (the same variance);
  * ``obsatk-e``: y₀ = x + N(0, (γ̂ − e)²), then y = y₀ + ObsAtk(y₀) with budget ε = e·√m, so the
    total noise norm stays within ≈ γ̂·√m (the thesis' "Atk-e");
  * ``zero_mean-e``: the same y₀ plus *random* zero-mean noise of norm exactly e·√m (the baseline
    that shows the attack's direction, not its energy, does the damage).
Observations are clipped into [0, 1]. Quality: ``tf.image.psnr`` and ``tf.image.ssim`` (max value 1,
SSIM's default 11×11 Gaussian window) per image against the clean image, averaged over images.

Targets (``tfrobust.evaluation.target.as_target``: a Keras denoiser, an exported Artifact, a callable)
are attacked white-box when they have gradients; otherwise ObsAtk is transferred from a differentiable
surrogate (``compare.choose_surrogate``: by default the same model's SavedModel) and the query-only
``ObsAtkSPSA`` runs on the target itself. Each row names its mode.
"""

import os

import numpy as np
import tensorflow as tf

from tfrobust.attacks.obsatk import ObsAtk, ZeroMeanNoise
from tfrobust.attacks.obsatk_spsa import ObsAtkSPSA
from tfrobust.attacks.transfer import Transfer
from tfrobust.data.denoising import add_noise, check_images
from tfrobust.core.files import write_json, write_text
from tfrobust.core.plotting import pyplot, save_figure
from tfrobust.errors import TfrobustError, check_int, check_number
from tfrobust.evaluation.compare import choose_surrogate
from tfrobust.evaluation.target import as_target


def center_crop(images, size):
    """Each image cut to its central ``size``×``size`` window (images smaller than that stay whole)."""
    if size is None:
        return list(images)
    check_int("crop", size, 8)
    out = []
    for image in images:
        top, left = max(0, (image.shape[0] - size) // 2), max(0, (image.shape[1] - size) // 2)
        out.append(image[top:top + size, left:left + size])
    return out


def quality(restored, clean):
    """(PSNR dB, SSIM) of one restored image [1, H, W, C] against its clean image, via ``tf.image``."""
    restored = tf.clip_by_value(tf.convert_to_tensor(restored, tf.float32), 0.0, 1.0)
    clean = tf.convert_to_tensor(clean, tf.float32)
    return (float(tf.reduce_mean(tf.image.psnr(restored, clean, max_val=1.0))),
            float(tf.reduce_mean(tf.image.ssim(restored, clean, max_val=1.0))))


#: Salt of the observation-noise streams, so they never coincide with an attack's own [seed, call] stream.
NOISE_SALT = 0x6E6F697365


def observation(clean, kind, level, eps, seed, index=0):
    """The noisy observation of one clean image [1, H, W, C] for noise ``kind`` (see the module doc),
    before any attack: returns y (gaussian/uniform) or y₀ (attack kinds). The noise stream is
    (``seed``, ``index``) salted, independent of the attacks' streams."""
    seed = tf.random.experimental.stateless_fold_in(tf.constant([seed, index], tf.int64), NOISE_SALT)
    if kind == "uniform":
        return add_noise(clean, "uniform", level, seed)
    base = level - eps if kind != "gaussian" else level
    if base < 0:
        raise TfrobustError(f"attack budget {eps * 255:.3g}/255 exceeds the noise level {level * 255:.3g}/255")
    return add_noise(clean, "gaussian", base, seed)


def noise_conditions(levels, attack_eps):
    """The (kind, γ̂, e) conditions of a Table-2.1 style evaluation."""
    conditions = []
    for level in levels:
        conditions += [("gaussian", level, 0.0), ("uniform", level, 0.0)]
        conditions += [("obsatk", level, e) for e in attack_eps]
        conditions += [("zero_mean", level, max(attack_eps))] if attack_eps else []
    return conditions


def evaluate_denoiser(model, images, *, levels=(15 / 255, 25 / 255), attack_eps=(5 / 255, 7 / 255), steps=5,
                      surrogate=None, query_steps=10, query_samples=16, seed=0, keep_examples=1, name=None):
    """PSNR/SSIM of one denoiser on ``images`` under each noise condition.

    Args:
      model: a Keras denoiser, an Artifact (``tfrobust.export.load``) or a ``Target``.
      images: clean (H, W, C) images in [0, 1] (sizes may differ; each is attacked alone).
      levels: noise levels γ̂ (thesis: 15/255 and 25/255).
      attack_eps: ObsAtk budgets per pixel e (thesis: 5/255 and 7/255; ε = e·√m).
      steps: ObsAtk iterations (thesis: 5).
      surrogate: a differentiable target to transfer ObsAtk from when ``model`` has no gradients.
      query_steps, query_samples: ``ObsAtkSPSA`` budget on gradient-free targets.
      keep_examples: keep the first N images' arrays per condition (for ``picture_grid``).

    Returns:
      {"model", "rows": [{"noise", "level", "eps", "mode", "psnr", "ssim", "psnr_per_image"}],
       "examples": {condition: [(clean, noisy, restored)]}}.
    """
    images = check_images(images)
    check_int("steps", steps, 1)
    for level in levels:
        check_number("noise level", level, 0.0, 1.0, low_inclusive=False)
    for e in attack_eps:
        check_number("attack eps", e, 0.0, low_inclusive=False)
    target = as_target(model, name)
    if not target.differentiable and surrogate is not None:
        surrogate = as_target(surrogate)
        if not surrogate.differentiable:
            raise TfrobustError(f"surrogate {surrogate.name} has no gradients")
    rows, examples = [], {}
    for kind, level, e in noise_conditions(levels, attack_eps):
        if kind != "obsatk":
            modes = [("random", None)]
        elif target.differentiable:
            modes = [("white-box", None)]
        else:
            modes = ([("transfer", surrogate)] if surrogate is not None else []) + [("query", None)]
        for mode, source in modes:
            # One attack object per condition: its compiled core is traced once, not once per image.
            perturb = _perturbation(kind, mode, target, source, e, steps, query_steps, query_samples, seed)
            scores = []
            for index, clean in enumerate(images):
                clean = clean[None]
                noisy = observation(tf.constant(clean), kind, level, e, seed, index)
                if perturb is not None:
                    noisy = perturb(noisy, clean)
                noisy = np.asarray(noisy, np.float32)
                restored = target.predict(noisy)
                scores.append(quality(restored, clean))
                if index < keep_examples:
                    examples.setdefault(_condition(kind, level, e, mode), []).append((clean[0], noisy[0], restored[0]))
            psnr = [s[0] for s in scores]
            rows.append({"noise": kind, "level": level, "eps": e, "mode": mode, "psnr": float(np.mean(psnr)),
                         "ssim": float(np.mean([s[1] for s in scores])), "psnr_per_image": psnr})
    return {"model": target.name, "rows": rows, "examples": examples}


def _perturbation(kind, mode, target, surrogate, e, steps, query_steps, query_samples, seed):
    """``perturb(noisy, clean) -> noisy'`` for an attack condition, None for plain noise."""
    if kind == "zero_mean":
        noise = ZeroMeanNoise(eps=e, seed=seed)
        return lambda noisy, clean: noise(None, noisy, clean)
    if kind != "obsatk":
        return None
    if mode == "query":
        query = ObsAtkSPSA(eps=e, steps=query_steps, samples=query_samples, seed=seed)
        return lambda noisy, clean: query(target.predict, noisy, clean)
    attack = ObsAtk(eps=e, steps=steps)
    if mode == "transfer":
        transfer = Transfer(attack, surrogate.logits_fn, surrogate.name)
        return lambda noisy, clean: transfer(target.predict, noisy, clean)
    return lambda noisy, clean: attack(target.logits_fn, noisy, clean)


def _condition(kind, level, e, mode):
    label = {"gaussian": "N", "uniform": "U", "obsatk": f"Atk-{e * 255:g}/255", "zero_mean": f"rand0-{e * 255:g}/255"}
    suffix = f" ({mode})" if kind == "obsatk" and mode != "white-box" else ""
    return f"γ̂={level * 255:g}/255 {label[kind]}{suffix}"


def compare_denoisers(models, images, *, transfer_from=None, **options):
    """``evaluate_denoiser`` for every entry of ``{label: model or Artifact}``; gradient-free ones get
    ObsAtk transferred from ``choose_surrogate`` (``transfer_from`` or the same model's SavedModel) plus
    the query attack. Returns a report dict for ``markdown_table`` / ``write_denoising_report``."""
    if not isinstance(models, dict) or not models:
        raise TfrobustError("compare_denoisers needs a non-empty {label: model} dict")
    targets = {label: as_target(model, label) for label, model in models.items()}
    entries = []
    for label, target in targets.items():
        surrogate = None
        if not target.differentiable:
            surrogate = targets[choose_surrogate(label, targets, transfer_from)]
        entries.append(evaluate_denoiser(target, images, surrogate=surrogate, **options))
    return {"num_images": len(images), "models": entries}


def markdown_table(report, title="Denoising under Gaussian, uniform and ObsAtk noise"):
    """Table 2.1 style: one row per model and γ̂, one column per noise; cells PSNR dB / SSIM."""
    lines = [f"# {title}", "", f"{report['num_images']} images; PSNR (dB) / SSIM, mean over images. "
             "N, U: Gaussian / uniform noise of std γ̂; Atk-e: ObsAtk (5 steps, budget e·√m) on Gaussian noise of "
             "std γ̂ − e; rand0-e: random zero-mean noise of the same norm instead of the attack.", ""]
    for entry in report["models"]:
        levels = sorted({row["level"] for row in entry["rows"]})
        columns = []
        for row in entry["rows"]:
            key = _condition(row["noise"], 0, row["eps"], row["mode"]).split(" ", 1)[1]
            if key not in columns:
                columns.append(key)
        lines += [f"**{entry['model']}**", "", "| γ̂ | " + " | ".join(columns) + " |",
                  "|---" * (len(columns) + 1) + "|"]
        for level in levels:
            cells = {_condition(r["noise"], 0, r["eps"], r["mode"]).split(" ", 1)[1]:
                     f"{r['psnr']:.2f} / {r['ssim']:.3f}" for r in entry["rows"] if r["level"] == level}
            lines.append(f"| {level * 255:g}/255 | " + " | ".join(cells.get(c, "—") for c in columns) + " |")
        lines.append("")
    return "\n".join(lines)


def psnr_vs_eps(model, images, *, level=25 / 255, eps_values=(1 / 255, 3 / 255, 5 / 255, 7 / 255, 9 / 255),
                steps=5, seed=0):
    """Mean PSNR of a differentiable denoiser under ObsAtk-e and under random zero-mean noise of the
    same norm, for each budget e (noise std γ̂ − e underneath): {"eps", "obsatk", "zero_mean"}."""
    target = as_target(model)
    if not target.differentiable:
        raise TfrobustError(f"{target.name} has no gradients: the ε curve is white-box (give its SavedModel)")
    result = {"eps": [float(e) for e in eps_values], "obsatk": [], "zero_mean": []}
    for e in eps_values:
        report = evaluate_denoiser(target, images, levels=(level,), attack_eps=(e,), steps=steps, seed=seed,
                                   keep_examples=0)
        by_kind = {row["noise"]: row["psnr"] for row in report["rows"]}
        result["obsatk"].append(by_kind["obsatk"])
        result["zero_mean"].append(by_kind["zero_mean"])
    return result


def plot_psnr_vs_eps(curves, path, level):
    """PNG of ``{label: psnr_vs_eps(...)}``: solid ObsAtk, dashed random zero-mean noise."""
    plt = pyplot()

    figure, axis = plt.subplots(figsize=(5, 3.6))
    for label, curve in curves.items():
        eps = [255 * e for e in curve["eps"]]
        line, = axis.plot(eps, curve["obsatk"], marker="o", label=f"{label}: ObsAtk")
        axis.plot(eps, curve["zero_mean"], linestyle="--", color=line.get_color(), label=f"{label}: random zero-mean")
    axis.set_xlabel("attack budget e (×1/255, ε = e·√m)")
    axis.set_ylabel("PSNR (dB)")
    axis.set_title(f"total noise energy density ≤ ({255 * level:g}/255)²")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    return save_figure(figure, path, dpi=120)


def picture_grid(report, path, *, level, eps, index=0):
    """Fig. 2.2 / 2.3 style PNG: per model a row clean | noisy N | f(noisy) | noisy + ObsAtk | f(noisy + ObsAtk)."""
    plt = pyplot()

    gaussian, attacked = _condition("gaussian", level, 0, None), _condition("obsatk", level, eps, "white-box")
    entries = [e for e in report["models"] if gaussian in e["examples"] and attacked in e["examples"]]
    if not entries:
        raise TfrobustError(f"no white-box example at γ̂={level * 255:g}/255 and e={eps * 255:g}/255 to draw")
    titles = ["clean x", f"y: N(0, ({level * 255:g}/255)²)", "f(y)", f"y + ObsAtk-{eps * 255:g}/255", "f(y + δ)"]
    figure, axes = plt.subplots(len(entries), 5, figsize=(12, 2.6 * len(entries)), squeeze=False)
    for row, entry in enumerate(entries):
        clean, noisy, restored = entry["examples"][gaussian][index]
        _, noisy_adv, restored_adv = entry["examples"][attacked][index]
        panels = [(clean, None), (noisy, None), (restored, quality(restored[None], clean[None])[0]),
                  (noisy_adv, None), (restored_adv, quality(restored_adv[None], clean[None])[0])]
        for col, (image, psnr) in enumerate(panels):
            axis = axes[row, col]
            axis.imshow(np.clip(image.squeeze(), 0, 1), cmap="gray" if image.shape[-1] == 1 else None, vmin=0, vmax=1)
            axis.set_xticks([])
            axis.set_yticks([])
            title = titles[col] + (f"\n{psnr:.2f} dB" if psnr is not None else "")
            axis.set_title(title, fontsize=8)
        axes[row, 0].set_ylabel(entry["model"], fontsize=8)
    return save_figure(figure, path, dpi=110)


def write_denoising_report(report, out_dir, title="Denoising under Gaussian, uniform and ObsAtk noise"):
    """Writes ``denoising.md`` and ``denoising.json`` (no image arrays) into ``out_dir``; returns the .md path."""
    plain = {"num_images": report["num_images"],
             "models": [{k: v for k, v in entry.items() if k != "examples"} for entry in report["models"]]}
    write_json(os.path.join(out_dir, "denoising.json"), plain)
    return write_text(os.path.join(out_dir, "denoising.md"), markdown_table(report, title) + "\n")


__all__ = ["center_crop", "compare_denoisers", "evaluate_denoiser", "markdown_table", "noise_conditions",
           "observation", "picture_grid", "plot_psnr_vs_eps", "psnr_vs_eps", "quality", "write_denoising_report"]
