"""CIFAR-10 and CIFAR-100: 32×32 colour images, 50 000 train / 10 000 test.

Local files use the official "python version" layout (https://www.cs.toronto.edu/~kriz/cifar.html):

  * ``cifar-10-batches-py/``: ``data_batch_1`` … ``data_batch_5``, ``test_batch`` and
    ``batches.meta``; each batch is a pickled dict with ``b"data"`` (N×3072 uint8, each row the
    1024 red, then 1024 green, then 1024 blue values of a 32×32 image in row-major order) and
    ``b"labels"``; the meta dict holds ``b"label_names"``.
  * ``cifar-100-python/``: ``train``, ``test`` and ``meta``, with ``b"fine_labels"`` and
    ``b"fine_label_names"`` (the 100-class "fine" labels, the ones robustness papers use).

``data_dir`` may be the batches folder itself or its parent. Without ``data_dir``,
``keras.datasets.cifar10`` / ``cifar100`` (``label_mode="fine"``) downloads the same files once.

The pickles are read with an unpickler that only admits the numpy globals an array needs, so a
stray or malicious file fails with an error instead of executing code.
"""

import io
import os
import pickle

import keras
import numpy as np

from tfrobust.core.messages import one_line
from tfrobust.data._files import check_data_dir, memory_cache, readonly, stamp, to_numpy_split
from tfrobust.data.registry import DatasetInfo, register
from tfrobust.errors import TfrobustError

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")

CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm")

CIFAR10 = DatasetInfo(
    name="cifar10", image_shape=(32, 32, 3), num_classes=10, class_names=CIFAR10_CLASSES,
    eps_linf=8 / 255, eps_l2=0.5, train_size=50000, test_size=10000, augment="flip_crop")

CIFAR100 = DatasetInfo(
    name="cifar100", image_shape=(32, 32, 3), num_classes=100, class_names=CIFAR100_CLASSES,
    eps_linf=8 / 255, eps_l2=0.5, train_size=50000, test_size=10000, augment="flip_crop")

# Per dataset: folder name, files per split, label key, meta file, class-name key.
_LAYOUT = {
    "cifar10": dict(folder="cifar-10-batches-py",
                    files={"train": tuple(f"data_batch_{i}" for i in range(1, 6)),
                           "test": ("test_batch",)},
                    labels="labels", meta="batches.meta", names="label_names"),
    "cifar100": dict(folder="cifar-100-python", files={"train": ("train",), "test": ("test",)},
                     labels="fine_labels", meta="meta", names="fine_label_names"),
}

# Globals a pickled numpy array may reference (numpy 1.x and 2.x module names).
_ALLOWED = {"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray",
                      "numpy.core.numeric", "numpy._core.numeric") and name in _ALLOWED:
            module = module.replace("numpy.core", "numpy._core")
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def _unpickle(path, _mtime, _size):
    try:
        with open(path, "rb") as f:
            obj = _ArrayUnpickler(io.BufferedReader(f), encoding="bytes").load()
    except Exception as e:  # truncated or foreign files fail in many ways
        raise TfrobustError(f"corrupt CIFAR pickle {path}: {one_line(e)}") from None
    if not isinstance(obj, dict):
        raise TfrobustError(f"corrupt CIFAR pickle {path}: expected a dict, got {type(obj).__name__}")
    return obj


def _get(d, key, path):
    """Looks ``key`` up as bytes (official Python-2 pickles) or str (re-pickled files)."""
    for k in (key.encode(), key):
        if k in d:
            return d[k]
    raise TfrobustError(f"corrupt CIFAR pickle {path}: no {key!r} entry")


def resolve_dir(dataset, data_dir):
    """The folder holding ``dataset``'s files: ``data_dir`` itself or its official subfolder."""
    layout = _LAYOUT[dataset]
    folder = check_data_dir(data_dir, dataset)
    markers = layout["files"]["test"] + layout["files"]["train"][:1]
    if any(os.path.isfile(os.path.join(folder, m)) for m in markers):
        return folder
    sub = os.path.join(folder, layout["folder"])
    if os.path.isdir(sub):
        return sub
    raise TfrobustError(
        f"{dataset}: no {' / '.join(markers)} in {folder} or {sub} (expected the official python "
        f"version layout)")


def _decode_batch(path, labels_key):
    d = _unpickle(*stamp(path, "CIFAR file"))
    data, labels = _get(d, "data", path), _get(d, labels_key, path)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise TfrobustError(
            f"corrupt CIFAR pickle {path}: data must be uint8 (N, 3072), got "
            f"{getattr(data, 'dtype', type(data).__name__)} {shape}")
    try:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise TfrobustError(f"corrupt CIFAR pickle {path}: bad labels ({one_line(e)})") from None
    if len(labels) != len(data):
        raise TfrobustError(
            f"corrupt CIFAR pickle {path}: {len(data)} images but {len(labels)} labels")
    # Rows are channel-major (R plane, G plane, B plane): (N, C, H, W) -> (N, H, W, C).
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


@memory_cache(maxsize=4)
def _load_files(paths_and_stamps, labels_key):
    parts = [_decode_batch(path, labels_key) for path, _ in paths_and_stamps]
    images = np.ascontiguousarray(np.concatenate([p[0] for p in parts]))
    labels = np.concatenate([p[1] for p in parts])
    return readonly(images, labels)


def load_cifar_dir(dataset, split, data_dir):
    """Reads ``split`` of ``dataset`` ("cifar10"/"cifar100") from a local folder.

    Returns:
      ``(images, labels)``: read-only uint8 (N, 32, 32, 3) and int64 (N,) arrays.
    """
    layout = _LAYOUT[dataset]
    folder = resolve_dir(dataset, data_dir)
    paths = [os.path.join(folder, name) for name in layout["files"][split]]
    key = tuple((p, stamp(p, f"{dataset} file")) for p in paths)
    return _load_files(key, layout["labels"])


def read_class_names(dataset, data_dir):
    """Class names from ``batches.meta`` / ``meta`` in ``data_dir``, or None if there is no meta file."""
    if data_dir is None:
        return None
    layout = _LAYOUT[dataset]
    path = os.path.join(resolve_dir(dataset, data_dir), layout["meta"])
    if not os.path.isfile(path):
        return None
    names = _get(_unpickle(*stamp(path)), layout["names"], path)
    try:
        return tuple(n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names)
    except (TypeError, UnicodeDecodeError) as e:
        raise TfrobustError(f"corrupt CIFAR meta file {path}: {one_line(e)}") from None


@memory_cache(maxsize=None)
def _keras_splits(dataset):
    module = getattr(keras.datasets, dataset)
    kwargs = {"label_mode": "fine"} if dataset == "cifar100" else {}
    (x_train, y_train), (x_test, y_test) = module.load_data(**kwargs)
    return {"train": to_numpy_split(x_train, y_train), "test": to_numpy_split(x_test, y_test)}


def _make_loader(dataset):
    def loader(split, data_dir=None):
        if data_dir is not None:
            return load_cifar_dir(dataset, split, data_dir)
        try:
            return _keras_splits(dataset)[split]
        except Exception as e:
            raise TfrobustError(
                f"{dataset}: keras.datasets.{dataset} download failed ({one_line(e)}); pass "
                f"data_dir= a folder with the official python-version files") from None

    loader.__name__ = f"load_{dataset}"
    loader.__doc__ = (f"Registry loader for {dataset}: the pickle files in ``data_dir``, else "
                      f"``keras.datasets.{dataset}``.")
    return loader


load_cifar10 = _make_loader("cifar10")
load_cifar100 = _make_loader("cifar100")

register(CIFAR10, load_cifar10, class_names_reader=lambda d: read_class_names("cifar10", d))
register(CIFAR100, load_cifar100, class_names_reader=lambda d: read_class_names("cifar100", d))
