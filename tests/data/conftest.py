"""Writers for tiny dataset files in the official on-disk layouts (IDX, CIFAR pickles, SVHN .mat)."""

import gzip
import os
import pickle
import struct

import numpy as np
import pytest


def write_idx(path, array, *, compress=True, magic=None):
    """Writes ``array`` (uint8) as an IDX file, gzip-compressed by default."""
    array = np.asarray(array, dtype=np.uint8)
    magic = magic if magic is not None else 0x00000800 | array.ndim
    payload = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.tobytes()
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(payload)
    return path


def write_idx_dataset(folder, rng, n_train=5, n_test=3, compress=True):
    """Writes the four MNIST-layout IDX files; returns {split: (uint8 images, labels)}."""
    os.makedirs(folder, exist_ok=True)
    out = {}
    suffix = ".gz" if compress else ""
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=(n,), dtype=np.uint8)
        write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte{suffix}"), images,
                  compress=compress)
        write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte{suffix}"), labels,
                  compress=compress)
        out[split] = (images, labels)
    return out


def write_pickle(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def idx_writer():
    return write_idx


@pytest.fixture
def idx_dataset_writer():
    return write_idx_dataset


@pytest.fixture
def pickle_writer():
    return write_pickle
