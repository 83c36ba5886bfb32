"""``tf.data`` input pipelines over in-memory image arrays.

``make_dataset`` keeps the images as one tensor and shuffles *indices*, then gathers each batch:
the shuffle buffer holds integers instead of images (a full-dataset shuffle of CIFAR-10 would
otherwise copy 600 MB into the buffer) and batches are gathered in one op instead of per example.
Shuffling covers the whole dataset (an exact permutation per epoch), is reproducible for a given
``seed`` and reshuffles every epoch. Augmentation runs on whole batches with per-batch stateless
seeds (see ``tfrobust.data.augment``), so a seeded pipeline yields the same batches on every run.
"""

import numpy as np
import tensorflow as tf

from tfrobust.data.augment import AUGMENTATIONS, augment_batch
from tfrobust.data.validation import validate_images, validate_labels
from tfrobust.errors import check_choice, check_int


def make_dataset(x, y, batch_size, *, shuffle=False, seed=None, augment=None, repeat=False,
                 drop_remainder=False) -> tf.data.Dataset:
    """Builds a batched ``tf.data.Dataset`` of ``(images, labels)``.

    Args:
      x: float32 images (N, H, W, C) in [0, 1], e.g. from ``tfrobust.data.load``.
      y: integer labels (N,).
      batch_size: examples per batch (>= 1).
      shuffle: shuffle the whole dataset, with a new order each epoch (iteration).
      seed: integer seed for shuffling and augmentation; None is nondeterministic. The same seed
        gives the same sequence of batches, epoch after epoch, in every run.
      augment: None, ``"flip_crop"`` (random horizontal flip + 4-pixel pad-and-crop, for natural
        images) or ``"crop"`` (pad-and-crop only, for digits). Usually ``info(name).augment``.
      repeat: repeat forever (epochs run back to back, each reshuffled); use with
        ``steps_per_epoch``.
      drop_remainder: drop the last partial batch so every batch has ``batch_size`` examples
        (static batch shape, e.g. for TPUs or compiled attacks).

    Returns:
      A dataset yielding ``(float32 (B, H, W, C) images in [0, 1], int64 (B,) labels)``,
      prefetched with AUTOTUNE.

    Raises:
      TfrobustError: invalid images or labels, batch_size < 1, unknown augment or bad seed.
    """
    x = validate_images(x, "x", dtype=np.float32)
    y = validate_labels(y, "y", num_examples=len(x))
    check_int("batch_size", batch_size, 1)
    check_choice("augment", augment, AUGMENTATIONS)
    if seed is not None:
        check_int("seed", seed)
    seed = None if seed is None else int(seed)

    n = len(x)
    images, labels = tf.constant(x), tf.constant(y)
    ds = tf.data.Dataset.range(n)
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
    ds = ds.map(lambda idx: (tf.gather(images, idx), tf.gather(labels, idx)),
                num_parallel_calls=tf.data.AUTOTUNE)
    if augment is not None:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip(ds, seeds).map(
            lambda batch, s: (augment_batch(batch[0], s, augment), batch[1]),
            num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
