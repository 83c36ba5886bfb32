"""MNIST and Fashion-MNIST: 28×28 grayscale, 10 classes, 60 000 train / 10 000 test images.

Both ship as the same four IDX files (``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``), read by ``tfrobust.data.idx``.

Sources, in order:
  * ``data_dir`` if given: a folder with the four files (gzip or not). A ``data_dir`` without the
    files is an error rather than a silent download: the caller asked for those files.
  * Fashion-MNIST only: ``/usr/share/datasets/fashion-mnist/`` from Debian's
    ``dataset-fashion-mnist`` package — the embedded default, so demos and tests run offline.
  * ``keras.datasets.<name>.load_data()``, which downloads to ``~/.keras/datasets`` once
    (logged, since it needs the network).
"""

import logging
import os

import keras

from tfrobust.core.messages import one_line
from tfrobust.data._files import check_data_dir, memory_cache, to_numpy_split
from tfrobust.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from tfrobust.data.registry import DatasetInfo, register
from tfrobust.errors import TfrobustError

logger = logging.getLogger(__name__)

#: Where Debian's ``dataset-fashion-mnist`` package installs the IDX files.
DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

_PREFIX = {"train": "train", "test": "t10k"}

MNIST = DatasetInfo(
    name="mnist", image_shape=(28, 28, 1), num_classes=10,
    class_names=tuple(str(d) for d in range(10)),
    eps_linf=0.3, eps_l2=2.0, train_size=60000, test_size=10000, augment=None)

FASHION_MNIST = DatasetInfo(
    name="fashion_mnist", image_shape=(28, 28, 1), num_classes=10,
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot"),
    eps_linf=0.1, eps_l2=2.0, train_size=60000, test_size=10000, augment=None)


def idx_file(folder, split, kind):
    """Path of the ``kind`` ("images"/"labels") IDX file of ``split`` in ``folder``, or None.

    Accepts the official names gzip-compressed or not, and the ``train-images.idx3-ubyte``
    spelling used by some mirrors.
    """
    rank = 3 if kind == "images" else 1
    stem = f"{_PREFIX[split]}-{kind}"
    for name in (f"{stem}-idx{rank}-ubyte.gz", f"{stem}-idx{rank}-ubyte", f"{stem}.idx{rank}-ubyte"):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return None


def has_idx_files(folder, split) -> bool:
    """Whether ``folder`` holds both IDX files of ``split``."""
    return all(idx_file(folder, split, kind) for kind in ("images", "labels"))


def load_idx_split(folder, split, dataset="dataset"):
    """Reads one split from a folder of MNIST-layout IDX files.

    Returns:
      ``(images, labels)``: read-only uint8 (N, H, W, 1) and uint8 (N,) arrays.
    """
    paths = {}
    for kind in ("images", "labels"):
        paths[kind] = idx_file(folder, split, kind)
        if paths[kind] is None:
            rank = 3 if kind == "images" else 1
            raise TfrobustError(
                f"{dataset}: {_PREFIX[split]}-{kind}-idx{rank}-ubyte[.gz] not found in {folder}")
    images = read_idx(paths["images"], IMAGES_MAGIC)
    labels = read_idx(paths["labels"], LABELS_MAGIC)
    if len(images) != len(labels):
        raise TfrobustError(
            f"{dataset}: {len(images)} images in {paths['images']} but {len(labels)} labels in "
            f"{paths['labels']}")
    return images[..., None], labels


@memory_cache(maxsize=None)
def _keras_splits(name):
    (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    return {"train": to_numpy_split(x_train, y_train), "test": to_numpy_split(x_test, y_test)}


def _keras_split(name, split):
    return _keras_splits(name)[split]


def load_mnist(split, data_dir=None):
    """Registry loader for MNIST: IDX files in ``data_dir``, else ``keras.datasets.mnist``."""
    if data_dir is not None:
        return load_idx_split(check_data_dir(data_dir, "mnist"), split, "mnist")
    logger.info("mnist: no data_dir given; using keras.datasets.mnist (downloads once to "
                "~/.keras/datasets)")
    try:
        return _keras_split("mnist", split)
    except Exception as e:
        raise TfrobustError(
            f"mnist: keras.datasets.mnist download failed ({one_line(e)}); pass data_dir= a folder "
            f"with the IDX files") from None


def load_fashion_mnist(split, data_dir=None):
    """Registry loader for Fashion-MNIST: ``data_dir``, else the Debian package, else keras."""
    if data_dir is not None:
        return load_idx_split(check_data_dir(data_dir, "fashion_mnist"), split, "fashion_mnist")
    if has_idx_files(DEBIAN_FASHION_MNIST_DIR, split):
        return load_idx_split(DEBIAN_FASHION_MNIST_DIR, split, "fashion_mnist")
    logger.warning(
        "fashion_mnist: Debian package dataset-fashion-mnist not found in %s; downloading with "
        "keras.datasets.fashion_mnist instead (`apt-get install dataset-fashion-mnist` avoids the "
        "download)", DEBIAN_FASHION_MNIST_DIR)
    try:
        return _keras_split("fashion_mnist", split)
    except Exception as e:
        raise TfrobustError(
            f"fashion_mnist unavailable: {DEBIAN_FASHION_MNIST_DIR} is missing (run `apt-get install "
            f"dataset-fashion-mnist`) and the keras.datasets download failed ({one_line(e)})"
        ) from None


register(FASHION_MNIST, load_fashion_mnist)
register(MNIST, load_mnist)
