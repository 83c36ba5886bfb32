"""Denoising data: seeded patch sampling, synthetic noise, and ``(noisy, clean)`` ``tf.data`` pipelines.

Training a γ-denoiser (Yan, thesis §2.2): clean patches x, noisy observations y = x + v with
v ~ N(0, σ²I) and σ ~ U(0, γ) drawn *per patch* (the family Q^γ_N). Evaluation at energy density γ̂²:
Gaussian N(0, γ̂²) or uniform U(−√3·γ̂, √3·γ̂) noise (both have variance γ̂²).

Choice: noisy observations are clipped into [0, 1]. The thesis is silent; Algorithm 1 ends with a clip
to [p_min, p_max], which presumes observations in that range, and every tfrobust model and export
takes [0, 1] images. Clipping makes the noise of saturated pixels slightly non-zero-mean.
"""

import numpy as np
import tensorflow as tf

from tfrobust.data.validation import validate_images
from tfrobust.errors import TfrobustError, check_choice, check_int, check_number

NOISE_KINDS = ("gaussian", "uniform")


def check_images(images, name="images"):
    """A list of float (H, W, C) arrays in [0, 1] (or a 4-D array); returns a list of float32 arrays."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        images = list(images)
    if not isinstance(images, (list, tuple)) or not images:
        raise TfrobustError(f"{name} must be a non-empty list of (H, W, C) images")
    checked = []
    for i, image in enumerate(images):
        image = np.asarray(image)
        if image.ndim != 3:
            raise TfrobustError(f"{name}[{i}] must be (H, W, C), got shape {image.shape}")
        if not np.issubdtype(image.dtype, np.floating):
            raise TfrobustError(f"{name}[{i}] must be float in [0, 1], got dtype {image.dtype}")
        if not np.all(np.isfinite(image)) or image.min() < 0 or image.max() > 1:
            raise TfrobustError(f"{name}[{i}] must lie in [0, 1], got values in "
                                f"[{np.nanmin(image):.4g}, {np.nanmax(image):.4g}]")
        if image.shape[-1] != np.asarray(images[0]).shape[-1]:
            raise TfrobustError(f"{name} mix channel counts: {images[0].shape[-1]} and {image.shape[-1]}")
        checked.append(image.astype(np.float32, copy=False))
    return checked


def sample_patches(images, patch_size, num_patches, seed=0, augment=True):
    """``num_patches`` random ``patch_size``² crops as float32 ``(N, p, p, C)``, reproducible per ``seed``.

    Each patch picks an image with probability proportional to its number of crop positions (so every
    position of every image is equally likely), then a uniform position; with ``augment`` one of the 8
    flips/rotations (DnCNN's augmentation modes, Zhang et al. 2017).

    Raises:
      TfrobustError: bad arguments or a patch larger than an image (naming the image).
    """
    images = check_images(images)
    check_int("patch_size", patch_size, 1)
    check_int("num_patches", num_patches, 1)
    check_int("seed", seed, 0)
    for i, image in enumerate(images):
        if image.shape[0] < patch_size or image.shape[1] < patch_size:
            raise TfrobustError(f"patch_size {patch_size} is larger than image {i} of shape {image.shape[:2]}")
    positions = np.array([(im.shape[0] - patch_size + 1) * (im.shape[1] - patch_size + 1) for im in images],
                         np.float64)
    rng = np.random.default_rng(seed)
    which = rng.choice(len(images), size=num_patches, p=positions / positions.sum())
    patches = np.empty((num_patches, patch_size, patch_size, images[0].shape[-1]), np.float32)
    for n, i in enumerate(which):
        image = images[i]
        top = rng.integers(0, image.shape[0] - patch_size + 1)
        left = rng.integers(0, image.shape[1] - patch_size + 1)
        patch = image[top:top + patch_size, left:left + patch_size]
        if augment:
            mode = rng.integers(8)
            patch = np.rot90(patch, k=mode % 4)
            if mode >= 4:
                patch = patch[:, ::-1]
        patches[n] = patch
    return patches


def add_noise(clean, kind, level, seed):
    """``clip(clean + v, 0, 1)`` in TF ops, per-image stateless seed stream ``seed`` ([2] ints).

    Args:
      clean: float32 images [N, H, W, C].
      kind: "gaussian" (v ~ N(0, level²)) or "uniform" (v ~ U(−√3·level, √3·level): the same variance).
      level: the noise standard deviation: a scalar or a [N] tensor (one σ per image).
    """
    check_choice("noise kind", kind, NOISE_KINDS)
    level = tf.reshape(tf.cast(level, tf.float32), [-1, 1, 1, 1])
    if kind == "gaussian":
        noise = tf.random.stateless_normal(tf.shape(clean), seed)
    else:
        noise = tf.random.stateless_uniform(tf.shape(clean), seed, -np.sqrt(3.0), np.sqrt(3.0))
    return tf.clip_by_value(clean + level * noise, 0.0, 1.0)


def make_denoising_dataset(patches, batch_size, *, gamma, seed=0, shuffle=True, noise="gaussian"):
    """``(noisy, clean)`` batches of ``patches`` for training a γ-denoiser.

    Every epoch draws fresh noise: per patch σ ~ U(0, γ), then ``add_noise`` (from a
    ``tf.data.Dataset.random`` stream re-randomised each epoch, so a seeded pipeline repeats exactly
    across runs).

    Args:
      patches: float32 (N, p, p, C) in [0, 1] (``sample_patches``).
      gamma: the largest noise level γ > 0 (25/255 in the thesis).
    """
    patches = validate_images(patches, "patches")
    check_number("gamma", gamma, 0.0, low_inclusive=False)
    check_int("batch_size", batch_size, 1)
    check_int("seed", seed, 0)
    check_choice("noise", noise, NOISE_KINDS)
    n = len(patches)
    clean = tf.constant(patches, tf.float32)
    ds = tf.data.Dataset.range(n)
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    # Training draws fresh noise every epoch; evaluation (shuffle=False) sees the same noisy images each
    # pass, so epoch-to-epoch validation PSNR compares like with like.
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=shuffle).batch(2)

    def noisy_batch(index, batch_seed):
        x = tf.gather(clean, index)
        sigma = tf.random.stateless_uniform(tf.shape(index), batch_seed, 0.0, float(gamma))
        y = add_noise(x, noise, sigma, tf.random.experimental.stateless_fold_in(batch_seed, 1))
        return y, x

    return tf.data.Dataset.zip(ds, seeds).map(noisy_batch, num_parallel_calls=tf.data.AUTOTUNE) \
        .prefetch(tf.data.AUTOTUNE)


__all__ = ["NOISE_KINDS", "add_noise", "check_images", "make_denoising_dataset", "sample_patches"]
