"""Datasets for tfrobust: a registry of loaders returning [0, 1] float images, and tf.data pipelines.

Typical use::

    from tfrobust import data
    x, y = data.load("fashion_mnist", "test", size=1000)   # first 1000 test points
    eps = data.info("fashion_mnist").eps_linf                 # 0.1
    ds = data.make_dataset(x, y, 128, shuffle=True, seed=0, augment="crop")

Built-in datasets: ``fashion_mnist`` (embedded default, read offline from Debian's
``dataset-fashion-mnist``), ``mnist``, ``cifar10``, ``cifar100``, ``svhn``. Each loader reads the
official file layout from ``data_dir`` and otherwise falls back to ``keras.datasets`` (or
``tensorflow_datasets`` for SVHN). New datasets are added with ``register(info, loader)``.
"""

from tfrobust.data._files import clear_cache
from tfrobust.data import denoising, image_folder  # image folders and (noisy, clean) patches for denoisers
from tfrobust.data.augment import AUGMENTATIONS, random_flip, random_pad_crop
from tfrobust.data.idx import read_idx
from tfrobust.data.pipeline import make_dataset
from tfrobust.data.registry import SPLITS, DatasetInfo, info, load, load_splits, names, register
from tfrobust.data.validation import validate_images, validate_labels

# Importing the loader modules registers the built-in datasets (fashion_mnist first: the default).
from tfrobust.data import mnist as _mnist  # noqa: F401  isort: skip
from tfrobust.data import cifar as _cifar  # noqa: F401  isort: skip
from tfrobust.data import svhn as _svhn  # noqa: F401  isort: skip

__all__ = [
    "AUGMENTATIONS", "SPLITS", "DatasetInfo", "clear_cache", "info", "load", "load_splits",
    "make_dataset", "names", "random_flip", "random_pad_crop", "read_idx", "register",
    "validate_images", "validate_labels", "denoising", "image_folder",
]
