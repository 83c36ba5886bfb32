import os
import pickle

import numpy as np
import pytest

from tfrobust import data
from tfrobust.errors import TfrobustError


def _images(n, offset):
    """uint8 (n, 32, 32, 3) whose three channels differ everywhere, so a wrong reshape shows."""
    i, h, w, c = np.meshgrid(np.arange(n), np.arange(32), np.arange(32), np.arange(3),
                             indexing="ij")
    return ((offset + 11 * i + 3 * h + 5 * w + 85 * c) % 256).astype(np.uint8)


def _rows(images):
    """Official CIFAR row layout: (N, C, H, W) flattened."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), 3072)


@pytest.fixture
def cifar10_dir(tmp_path, pickle_writer):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    train, labels = [], []
    for b in range(1, 6):
        images, y = _images(2, 17 * b), [b % 10, (b + 3) % 10]
        pickle_writer(folder / f"data_batch_{b}", {b"data": _rows(images), b"labels": y,
                                                   b"batch_label": b"training batch"})
        train.append(images)
        labels += y
    test = _images(2, 200)
    pickle_writer(folder / "test_batch", {b"data": _rows(test), b"labels": [9, 0]})
    names = [f"class{k}".encode() for k in range(10)]
    pickle_writer(folder / "batches.meta", {b"label_names": names, b"num_vis": 3072})
    return tmp_path, np.concatenate(train), np.array(labels), test


def test_cifar10_exact_pixels_labels_and_names(cifar10_dir):
    parent, train, train_labels, test = cifar10_dir
    for data_dir in (parent, parent / "cifar-10-batches-py"):  # parent or batches folder
        x, y = data.load("cifar10", "train", data_dir=data_dir)
        assert x.shape == (10, 32, 32, 3) and x.dtype == np.float32
        np.testing.assert_array_equal(x, train.astype(np.float32) / 255)
        np.testing.assert_array_equal(y, train_labels)
    x, y = data.load("cifar10", "test", data_dir=parent)
    np.testing.assert_array_equal(x, test.astype(np.float32) / 255)
    np.testing.assert_array_equal(y, [9, 0])
    meta = data.info("cifar10", data_dir=parent)
    assert meta.class_names == tuple(f"class{k}" for k in range(10))
    assert data.info("cifar10").class_names[0] == "airplane"
    assert data.info("cifar10").eps_linf == 8 / 255


def test_cifar100_fine_labels_and_meta(tmp_path, pickle_writer):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    train, test = _images(3, 1), _images(2, 99)
    # Re-pickled files with str keys are accepted as well as the official bytes keys.
    pickle_writer(folder / "train", {"data": _rows(train), "fine_labels": [0, 57, 99],
                                     "coarse_labels": [1, 2, 3]})
    pickle_writer(folder / "test", {b"data": _rows(test), b"fine_labels": [42, 5]})
    pickle_writer(folder / "meta", {b"fine_label_names": [f"f{k}".encode() for k in range(100)]})
    (x, y), (xt, yt) = data.load_splits("cifar100", data_dir=folder)
    np.testing.assert_array_equal(x, train.astype(np.float32) / 255)
    np.testing.assert_array_equal(y, [0, 57, 99])
    np.testing.assert_array_equal(xt, test.astype(np.float32) / 255)
    np.testing.assert_array_equal(yt, [42, 5])
    assert data.info("cifar100", data_dir=tmp_path).class_names[99] == "f99"
    assert data.info("cifar100").class_names[:2] == ("apple", "aquarium_fish")


def test_cifar_corrupt_files_name_path(cifar10_dir, pickle_writer):
    parent, *_ = cifar10_dir
    batch = parent / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(batch.read_bytes()[:100])
    with pytest.raises(TfrobustError, match=r"corrupt CIFAR pickle .*test_batch"):
        data.load("cifar10", "test", data_dir=parent)
    pickle_writer(batch, {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    with pytest.raises(TfrobustError, match=r"test_batch: data must be uint8 \(N, 3072\)"):
        data.load("cifar10", "test", data_dir=parent)
    pickle_writer(batch, {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]})
    with pytest.raises(TfrobustError, match=r"labels must be in \[0, 10\)"):
        data.load("cifar10", "test", data_dir=parent)


def test_cifar_refuses_foreign_pickle_globals(cifar10_dir):
    parent, *_ = cifar10_dir
    batch = parent / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(pickle.dumps({b"data": os.getcwd, b"labels": []}))
    with pytest.raises(TfrobustError, match=r"refusing to load global posix.getcwd"):
        data.load("cifar10", "test", data_dir=parent)


def test_cifar_missing_files(tmp_path, cifar10_dir):
    parent, *_ = cifar10_dir
    with pytest.raises(TfrobustError, match=r"cifar100: no test / train in"):
        data.load("cifar100", "test", data_dir=parent)
    os.remove(parent / "cifar-10-batches-py" / "data_batch_4")
    with pytest.raises(TfrobustError, match=r"cifar10 file not found: .*data_batch_4"):
        data.load("cifar10", "train", data_dir=parent)
