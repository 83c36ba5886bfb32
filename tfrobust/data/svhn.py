"""SVHN cropped digits: 32×32 colour house-number digits, 10 classes, 73 257 train / 26 032 test.

Local files are the official MATLAB files ``train_32x32.mat`` and ``test_32x32.mat`` from
http://ufldl.stanford.edu/housenumbers/ (the ``extra`` split is not used), each holding ``X`` of
shape (32, 32, 3, N) uint8 and ``y`` of shape (N, 1) with labels 1…10, where 10 stands for the
digit 0; we map 10 → 0 so labels equal digits, as TFDS and robustness papers do.

Sources, in order: ``data_dir`` (a folder with the .mat files, read by ``scipy.io.loadmat``), else
``tensorflow_datasets``' ``svhn_cropped`` if that package is installed, else an error saying how
to provide the files. There is no keras.datasets copy of SVHN.
"""

import os

import numpy as np

from tfrobust.core.messages import one_line
from tfrobust.data._files import check_data_dir, memory_cache, readonly, stamp, to_numpy_split
from tfrobust.data.registry import DatasetInfo, register
from tfrobust.errors import TfrobustError

URL = "http://ufldl.stanford.edu/housenumbers/"

SVHN = DatasetInfo(
    name="svhn", image_shape=(32, 32, 3), num_classes=10,
    class_names=tuple(str(d) for d in range(10)),
    eps_linf=8 / 255, eps_l2=0.5, train_size=73257, test_size=26032, augment="crop")


def mat_file(split) -> str:
    """Official file name of ``split``: ``train_32x32.mat`` or ``test_32x32.mat``."""
    return f"{split}_32x32.mat"


@memory_cache(maxsize=2)
def _read_mat(path, _mtime, _size):
    import scipy.io  # deferred: only needed for local SVHN files

    try:
        mat = scipy.io.loadmat(path, variable_names=("X", "y"))
    except Exception as e:  # truncated / non-MATLAB files fail in many ways
        raise TfrobustError(f"corrupt SVHN file {path}: {one_line(e)}") from None
    if "X" not in mat or "y" not in mat:
        raise TfrobustError(f"corrupt SVHN file {path}: expected variables X and y")
    x, y = mat["X"], mat["y"]
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise TfrobustError(
            f"corrupt SVHN file {path}: X must be uint8 (32, 32, 3, N), got {x.dtype} {x.shape}")
    y = np.asarray(y).reshape(-1)
    if len(y) != x.shape[3]:
        raise TfrobustError(f"corrupt SVHN file {path}: {x.shape[3]} images but {len(y)} labels")
    if y.size and (y.min() < 0 or y.max() > 10 or not np.all(y == np.round(y))):
        raise TfrobustError(f"corrupt SVHN file {path}: labels must be integers in 1..10")
    labels = y.astype(np.int64)
    labels[labels == 10] = 0
    images = np.ascontiguousarray(x.transpose(3, 0, 1, 2))  # (H, W, C, N) -> (N, H, W, C)
    return readonly(images, labels)


@memory_cache(maxsize=None)
def _tfds_split(split):
    import tensorflow_datasets as tfds  # optional dependency

    images, labels = tfds.as_numpy(
        tfds.load("svhn_cropped", split=split, batch_size=-1, as_supervised=True))
    return to_numpy_split(images, labels)


def load_svhn(split, data_dir=None):
    """Registry loader for SVHN: .mat files in ``data_dir``, else tensorflow_datasets."""
    if data_dir is not None:
        path = os.path.join(check_data_dir(data_dir, "svhn"), mat_file(split))
        if not os.path.isfile(path):
            raise TfrobustError(f"svhn: {path} not found; download {mat_file(split)} from {URL}")
        return _read_mat(*stamp(path, "SVHN file"))
    try:
        import tensorflow_datasets  # noqa: F401  (only probing whether it is installed)
    except ImportError:
        raise TfrobustError(
            f"svhn needs data_dir= a folder with train_32x32.mat and test_32x32.mat (from {URL}) "
            f"or the tensorflow-datasets package (pip install tensorflow-datasets)") from None
    try:
        return _tfds_split(split)
    except Exception as e:
        raise TfrobustError(
            f"svhn: tensorflow_datasets svhn_cropped failed ({one_line(e)}); pass data_dir= a "
            f"folder with train_32x32.mat and test_32x32.mat from {URL}") from None


register(SVHN, load_svhn)
