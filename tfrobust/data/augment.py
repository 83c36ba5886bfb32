"""Batched, seeded image augmentations for training pipelines.

Two policies, named as in ``make_dataset(augment=...)``:

  * ``"flip_crop"``: random horizontal flip, then zero-pad 4 pixels and take a random 32×32
    (H×W) crop — the standard CIFAR augmentation of Madry et al. and TRADES
    (torchvision ``RandomCrop(32, padding=4)`` + ``RandomHorizontalFlip``).
  * ``"crop"``: the pad-and-crop only, for digits (SVHN, MNIST) where a flip changes the class.

Choices where Keras' own layers do not fit: ``keras.layers.RandomCrop`` crops a whole batch at one
offset and ``RandomTranslation`` interpolates continuous shifts, while the papers crop every image
independently at a uniform integer offset in [0, 2·padding]. We therefore implement the exact
per-image pad-and-crop with gathers. Randomness is *stateless*: each batch receives its own
``[2]`` seed (from ``tf.data.Dataset.random`` in ``make_dataset``), so augmentation is reproducible,
changes every epoch, and is safe under parallel ``map``.
"""

import tensorflow as tf

from tfrobust.errors import check_choice

AUGMENTATIONS = (None, "flip_crop", "crop")
PADDING = 4


def random_flip(images, seed):
    """Flips each image of an NHWC batch left-right with probability 1/2.

    Args:
      images: float tensor (B, H, W, C).
      seed: int32/int64 tensor of shape [2] (a stateless-random seed).
    """
    flip = tf.random.stateless_uniform(tf.shape(images)[:1], seed) < 0.5
    return tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)


def random_pad_crop(images, seed, padding=PADDING):
    """Zero-pads each image by ``padding`` pixels per side and crops it back at a random offset.

    Every image gets its own offset, uniform over the (2·padding + 1)² integer positions, so the
    result is the input shifted by up to ``padding`` pixels with zeros filling the border.

    Args:
      images: float tensor (B, H, W, C) with static H and W.
      seed: int32/int64 tensor of shape [2].
      padding: maximum shift in pixels.
    """
    height, width = images.shape[1], images.shape[2]
    batch = tf.shape(images)[0]
    padded = tf.pad(images, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    seeds = tf.random.experimental.stateless_split(seed, 2)
    top = tf.random.stateless_uniform([batch], seeds[0], 0, 2 * padding + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([batch], seeds[1], 0, 2 * padding + 1, dtype=tf.int32)
    rows = top[:, None] + tf.range(height)[None, :]  # (B, H)
    cols = left[:, None] + tf.range(width)[None, :]  # (B, W)
    out = tf.gather(padded, rows, axis=1, batch_dims=1)  # (B, H, W + 2p, C)
    return tf.gather(out, cols, axis=2, batch_dims=1)  # (B, H, W, C)


def augment_batch(images, seed, augment):
    """Applies the policy ``augment`` (one of ``AUGMENTATIONS``) to an NHWC batch."""
    check_choice("augment", augment, AUGMENTATIONS)
    if augment is None:
        return images
    flip_seed, crop_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    if augment == "flip_crop":
        images = random_flip(images, flip_seed)
    return random_pad_crop(images, crop_seed)
