"""Analyses from the seed papers: error amplification per block, unchanged-prediction ratio, per-layer
spectral norms, attention maps. Each returns a JSON-able dict; each ``plot_*`` writes a PNG (matplotlib Agg).

* ``error_amplification``   EVPNet fig. 4: γ = ‖f(x) − f(x′)‖₂ / ‖f(x)‖₂ per residual block, clean x vs
                             adversarial x′ (the paper: 64 test images, PGD-40).
* ``unchanged_prediction_ratio``   feature-map paper Table II: the fraction of points whose *predicted*
                             label survives an attack of budget ε (correctness ignored).
* ``spectral_norms``         ConvNorm report fig. 1: the operator norm of every convolution (and Dense) layer.
* ``attention_maps``         attention paper fig. 3: the softmax weights of every ``AttentionPooling`` layer.

Plot functions take one result or a ``{label: result}`` dict (several models in one figure).
"""


import keras
import numpy as np
import tensorflow as tf

from tfrobust.core import files
from tfrobust.core.plotting import pyplot, save_figure
from tfrobust.errors import TfrobustError
from tfrobust.layers import AttentionPooling, ConvNorm2D, EVPConv


def _integer_ticks():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _labelled(results):
    """``{label: result}`` from one result dict or a dict of them."""
    if isinstance(results, dict) and "analysis" in results:
        return {results.get("model", "model"): results}
    return dict(results)


def _save(fig, path):
    return save_figure(fig, path, dpi=120, layout="bbox")


def write_json(result, path):
    """Writes ``result`` as indented JSON (atomically); returns the path."""
    return files.write_json(path, result)


def _batches(n, batch_size):
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


# -- error amplification (EVPNet fig. 4) ---------------------------------------------------------------
def block_output_names(model):
    """Names of the residual-block outputs (``*_out`` layers, in model order)."""
    return [layer.name for layer in model.layers if layer.name.endswith("_out")]


def error_amplification(model, images, adversarial_images, *, layers=None, batch_size=64):
    """γ = ‖f(x) − f(x′)‖₂ / ‖f(x)‖₂ at each layer in ``layers``, averaged over the images.

    Args:
      model: a functional ``keras.Model``.
      images, adversarial_images: clean and adversarial images, same shape, in [0, 1].
      layers: layer names (default: every residual block output ``*_out``).
      batch_size: images per forward pass.

    Returns:
      ``{"analysis": "error_amplification", "model", "layers", "gamma" (mean per layer), "gamma_std",
      "num_images"}``.

    Reference: Sun, Li & Zhang, "Extreme Value Preserving Networks", §5.1 "Analysis" and fig. 4 (after
    Liao et al. 2018's error-amplification analysis).
    """
    x, x_adv = np.asarray(images, np.float32), np.asarray(adversarial_images, np.float32)
    if x.shape != x_adv.shape or x.ndim != 4 or not len(x):
        raise TfrobustError(f"images and adversarial_images must be equal non-empty (N, H, W, C) arrays, "
                            f"got {x.shape} and {x_adv.shape}")
    layers = list(layers) if layers is not None else block_output_names(model)
    if not layers:
        raise TfrobustError(f"model {model.name!r} has no '*_out' block outputs; pass layers=[names]")
    features = keras.Model(model.input, [model.get_layer(name).output for name in layers])
    gammas = []
    for part in _batches(len(x), batch_size):
        clean = features(x[part], training=False)
        adv = features(x_adv[part], training=False)
        clean, adv = (clean, adv) if isinstance(clean, (list, tuple)) else ([clean], [adv])
        rows = []
        for c, a in zip(clean, adv):
            c = tf.reshape(tf.cast(c, tf.float32), [tf.shape(c)[0], -1])
            a = tf.reshape(tf.cast(a, tf.float32), [tf.shape(a)[0], -1])
            rows.append((tf.norm(c - a, axis=1) / tf.maximum(tf.norm(c, axis=1), 1e-12)).numpy())
        gammas.append(np.stack(rows, axis=1))
    gammas = np.concatenate(gammas)
    return {"analysis": "error_amplification", "model": model.name, "layers": layers,
            "gamma": gammas.mean(axis=0).tolist(), "gamma_std": gammas.std(axis=0).tolist(), "num_images": len(x)}


def plot_error_amplification(results, path):
    """γ per block, one line per model (EVPNet fig. 4); returns ``path``."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, result in _labelled(results).items():
        ax.plot(range(1, len(result["gamma"]) + 1), result["gamma"], marker="o", label=label)
    ax.xaxis.set_major_locator(_integer_ticks())
    ax.set_xlabel("block")
    ax.set_ylabel("normalised distance γ")
    ax.set_title("error amplification: ‖f(x) − f(x′)‖ / ‖f(x)‖")
    ax.legend()
    return _save(fig, path)


# -- unchanged-prediction ratio (feature-map paper Table II) --------------------------------------------
def default_attack(eps):
    """PGD-20, step 0.25·ε, random start (the feature-map paper's evaluation attack)."""
    from tfrobust.attacks import PGD

    return PGD(eps=eps, steps=20, step_size=0.25 * eps)


def unchanged_prediction_ratio(model, images, epsilons, *, attack_factory=default_attack, batch_size=256):
    """Fraction of images whose predicted label is unchanged by an attack of each budget ε.

    The attack targets the model's own clean prediction (untargeted), so the ratio measures resistance to
    perturbation regardless of correctness. ε = 0 gives 1 without running an attack.

    Args:
      model: a callable images → logits (a ``keras.Model``).
      images: [N, H, W, C] in [0, 1].
      epsilons: budgets, e.g. ``[0, 2/255, 4/255, 8/255]``.
      attack_factory: ``eps → attack`` (default: PGD-20 with step 0.25·ε).
      batch_size: images per attack batch.

    Returns:
      ``{"analysis": "unchanged_prediction_ratio", "model", "epsilons", "ratio", "attack" (config at the
      largest ε), "num_images"}``.

    Reference: Xu & Yang, "Understanding Adversarial Robustness from Feature Maps of Convolutional Layers",
    §V-B "Anti-perturbation ability", Table II.
    """
    x = np.asarray(images, np.float32)
    model_fn = lambda t: model(t, training=False)
    clean = np.concatenate([np.argmax(model_fn(x[p]), axis=-1) for p in _batches(len(x), batch_size)])
    ratios, config = [], None
    for eps in epsilons:
        if eps == 0:
            ratios.append(1.0)
            continue
        attack = attack_factory(float(eps))
        config = attack.get_config()
        same = []
        for p in _batches(len(x), batch_size):
            x_adv = attack(model_fn, x[p], clean[p])
            same.append(np.argmax(model_fn(x_adv), axis=-1) == clean[p])
        ratios.append(float(np.mean(np.concatenate(same))))
    return {"analysis": "unchanged_prediction_ratio", "model": getattr(model, "name", "model"),
            "epsilons": [float(e) for e in epsilons], "ratio": ratios, "attack": config, "num_images": len(x)}


def plot_unchanged_prediction(results, path):
    """Unchanged-prediction ratio vs ε, one line per model; returns ``path``."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for label, result in _labelled(results).items():
        ax.plot(result["epsilons"], [100 * r for r in result["ratio"]], marker="o", label=label)
    ax.set_xlabel("ε (L∞)")
    ax.set_ylabel("unchanged predictions (%)")
    ax.legend()
    return _save(fig, path)


# -- spectral norms (ConvNorm report fig. 1) -------------------------------------------------------------
def _max_singular_value(blocks):
    """Largest singular value over a stack of complex matrices [..., a, b] (one SVD per frequency). Cost
    grows with the cube of the width: 0.26 s for a 64-channel 3×3 layer on a 32×32 grid (measured on the
    shared 2-core machine), so ≈ 64× that per 256-channel layer of a WRN-16-4."""
    return float(np.linalg.svd(blocks.reshape(-1, *blocks.shape[-2:]), compute_uv=False).max())


def conv_spectral_norm(kernel, size):
    """Largest singular value of the circular convolution with ``kernel`` [k, k, C_in, C_out] on an
    ``size`` = (H, W) grid: max over frequencies of σ_max(K̂(f)) (Sedghi, Gupta & Long, ICLR 2019). The
    kernel is real, so K̂(−f) = conj(K̂(f)) has the same singular values: half the grid (rfft2) suffices."""
    kernel = np.asarray(kernel, np.float64)
    grid = (max(size[0], kernel.shape[0]), max(size[1], kernel.shape[1]))
    return _max_singular_value(np.fft.rfft2(kernel, s=grid, axes=(0, 1)))  # [H, W // 2 + 1, C_in, C_out]


def _conv_norm_spectra(layer):
    """(σ of the normalised operator Q, σ of Q followed by the affine step) for a built ConvNorm2D, on the
    half (rfft2) frequency grid: every factor is the transform of a real kernel."""
    kernel = layer.kernel.numpy().astype(np.float64)
    n, m = layer.full_size
    spectrum = np.fft.rfft2(kernel, s=(n, m), axes=(0, 1))  # [N, M // 2 + 1, C_in, C_out]
    v = np.asarray(layer.running_v.numpy(), np.float64)
    if layer.kernel_size == 1:
        v_half = np.broadcast_to(v, (n, m // 2 + 1, v.shape[0]))
    else:  # V̄ as the layer applies it: irfft2d keeps only its Hermitian part
        v_half = np.real(np.fft.rfft2(np.fft.irfft2(v, s=(n, m)), axes=(1, 2))).transpose(1, 2, 0)
    normalised = spectrum * v_half[:, :, None, :]
    q_norm = _max_singular_value(normalised)
    if not layer.affine:
        return q_norm, q_norm
    response = np.fft.rfft2(layer.affine_kernel.numpy()[..., 0].astype(np.float64), s=(n, m), axes=(0, 1))
    return q_norm, _max_singular_value(normalised * response[:, :, None, :])


def spectral_norms(model):
    """Operator norm of every convolution and Dense layer of ``model`` (in model order).

    Convolutions are treated as circular on their input's H×W grid (exact for circular padding, the
    usual approximation for zero padding; strides ignored: the stride-1 norm bounds the strided one).
    ConvNorm2D layers report the layer's linear map on its full N×M grid with the running estimate V̄:
    ``normalised_spectral_norm`` (Q; each channel's Q_k has norm 1, so 1 ≤ ‖Q‖ ≤ sqrt(C_out), report
    Proposition 3.1) and ``spectral_norm`` (Q followed by the depthwise affine step). Convolutions inside an
    EVPConv are listed as ``<name>/conv``. BatchNorm scales are not included.

    Returns:
      ``{"analysis": "spectral_norms", "model", "layers": [{"name", "type", "spectral_norm", …}]}``.

    Reference: O'Hanlon, "Adversarial Robustness of Convolutional Networks" (2021), §3, fig. 1 and
    Proposition 3.1; Sedghi et al., "The Singular Values of Convolutional Layers" (ICLR 2019).
    """
    rows = []
    for layer in model.layers:
        if isinstance(layer, ConvNorm2D):
            q_norm, full = _conv_norm_spectra(layer)
            rows.append({"name": layer.name, "type": "ConvNorm2D", "spectral_norm": full,
                         "normalised_spectral_norm": q_norm, "bound": float(np.sqrt(layer.filters))})
        elif isinstance(layer, (keras.layers.Conv2D, EVPConv)):
            conv = layer.conv if isinstance(layer, EVPConv) else layer
            size = tuple(layer.input.shape[1:3])
            rows.append({"name": layer.name + ("/conv" if conv is not layer else ""), "type": type(conv).__name__,
                         "spectral_norm": conv_spectral_norm(conv.kernel.numpy(), size)})
        elif isinstance(layer, keras.layers.Dense):
            rows.append({"name": layer.name, "type": "Dense",
                         "spectral_norm": float(np.linalg.svd(layer.kernel.numpy(), compute_uv=False).max())})
    return {"analysis": "spectral_norms", "model": model.name, "layers": rows}


def plot_spectral_norms(results, path):
    """Spectral norm per layer (log scale), one line per model (report fig. 1); returns ``path``."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for label, result in _labelled(results).items():
        norms = [row["spectral_norm"] for row in result["layers"]]
        ax.plot(range(1, len(norms) + 1), norms, marker="o", label=label)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(_integer_ticks())
    ax.set_xlabel("layer")
    ax.set_ylabel("spectral norm")
    ax.legend()
    return _save(fig, path)


# -- attention maps (attention paper fig. 3) ---------------------------------------------------------------
def attention_maps(model, images):
    """The attention weights of every ``AttentionPooling`` layer for ``images``.

    Returns:
      ``{"analysis": "attention_maps", "model", "layers": [names], "maps": {name: [N][H][W] lists}}``; each
      map is ≥ 0 and sums to 1 over positions.
    """
    layers = [layer for layer in model.layers if isinstance(layer, AttentionPooling)]
    if not layers:
        raise TfrobustError(f"model {model.name!r} has no AttentionPooling layer")
    probe = keras.Model(model.input, [list(layer.input) for layer in layers])
    inputs = probe(np.asarray(images, np.float32), training=False)
    maps = {}
    for layer, (local, global_feature) in zip(layers, inputs):
        _, weights = layer([local, global_feature], return_attention_scores=True)
        maps[layer.name] = np.asarray(weights, np.float64).tolist()
    return {"analysis": "attention_maps", "model": model.name, "layers": [layer.name for layer in layers],
            "maps": maps}


def plot_attention_maps(images, result, path, max_images=8):
    """One row per image: the image, then each layer's attention map over it; returns ``path``."""
    plt = pyplot()
    images = np.asarray(images, np.float32)[:max_images]
    names = result["layers"]
    fig, axes = plt.subplots(len(images), 1 + len(names), figsize=(2 * (1 + len(names)), 2 * len(images)),
                             squeeze=False)
    for i, image in enumerate(images):
        shown = image[..., 0] if image.shape[-1] == 1 else image
        axes[i, 0].imshow(shown, cmap="gray" if image.shape[-1] == 1 else None)
        for j, name in enumerate(names, 1):
            axes[i, j].imshow(shown, cmap="gray" if image.shape[-1] == 1 else None)
            axes[i, j].imshow(np.asarray(result["maps"][name][i]), cmap="jet", alpha=0.5,
                              extent=(-0.5, image.shape[1] - 0.5, image.shape[0] - 0.5, -0.5))
            if i == 0:
                axes[i, j].set_title(name)
        for ax in axes[i]:
            ax.axis("off")
    return _save(fig, path)


__all__ = ["attention_maps", "block_output_names", "conv_spectral_norm", "default_attack", "error_amplification",
           "plot_attention_maps", "plot_error_amplification", "plot_spectral_norms", "plot_unchanged_prediction",
           "spectral_norms", "unchanged_prediction_ratio", "write_json"]
