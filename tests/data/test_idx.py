import os

import numpy as np
import pytest

from tfrobust import data
from tfrobust.data import idx
from tfrobust.errors import TfrobustError


@pytest.mark.parametrize("compress", [True, False])
def test_mnist_from_idx_dir_exact(tmp_path, rng, idx_dataset_writer, compress):
    written = idx_dataset_writer(tmp_path, rng, compress=compress)
    for split in ("train", "test"):
        x, y = data.load("mnist", split, data_dir=tmp_path)
        images, labels = written[split]
        assert x.dtype == np.float32 and x.shape == images.shape + (1,)
        np.testing.assert_array_equal(x[..., 0], images.astype(np.float32) / 255)
        assert y.dtype == np.int64
        np.testing.assert_array_equal(y, labels)


def test_fashion_mnist_data_dir_overrides_debian(tmp_path, rng, idx_dataset_writer):
    written = idx_dataset_writer(tmp_path, rng, n_train=4, n_test=2)
    x, y = data.load("fashion_mnist", "test", data_dir=str(tmp_path))
    assert x.shape == (2, 28, 28, 1)
    np.testing.assert_array_equal(y, written["test"][1])


def test_read_idx_generic_and_cached_readonly(tmp_path, idx_writer):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = idx_writer(tmp_path / "a.gz", arr)
    out = data.read_idx(path, idx.IMAGES_MAGIC)
    np.testing.assert_array_equal(out, arr)
    assert not out.flags.writeable
    assert data.read_idx(path, idx.IMAGES_MAGIC) is out  # cached per file


def test_loaded_arrays_do_not_share_cache(tmp_path, rng, idx_dataset_writer):
    idx_dataset_writer(tmp_path, rng)
    x1, y1 = data.load("mnist", "train", data_dir=tmp_path)
    x1[:] = 0.5
    y1[:] = 7
    x2, y2 = data.load("mnist", "train", data_dir=tmp_path)
    assert not np.all(x2 == 0.5) and not np.all(y2 == 7)


def test_truncated_idx_names_path(tmp_path, idx_writer):
    path = tmp_path / "t.idx"
    idx_writer(path, np.zeros((3, 4, 4), np.uint8), compress=False)
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(TfrobustError, match=r"truncated IDX file .*t\.idx"):
        data.read_idx(path)


def test_truncated_gzip_names_path(tmp_path, idx_writer):
    path = tmp_path / "t.gz"
    idx_writer(path, np.zeros((3, 4, 4), np.uint8))
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(TfrobustError, match=r"t\.gz"):
        data.read_idx(path)


def test_trailing_bytes_rejected(tmp_path, idx_writer):
    path = tmp_path / "long.idx"
    idx_writer(path, np.zeros((2,), np.uint8), compress=False)
    path.write_bytes(path.read_bytes() + b"xx")
    with pytest.raises(TfrobustError, match=r"2 unexpected trailing bytes.*long\.idx"):
        data.read_idx(path)


def test_wrong_magic_names_path(tmp_path, idx_writer, idx_dataset_writer, rng):
    bad = tmp_path / "bad.gz"
    idx_writer(bad, np.zeros((2, 2), np.uint8), magic=0x12345678)
    with pytest.raises(TfrobustError, match=r"bad magic 0x12345678.*bad\.gz"):
        data.read_idx(bad)
    # A labels file where images are expected: valid IDX, wrong magic for the role.
    idx_dataset_writer(tmp_path, rng)
    images = tmp_path / "train-images-idx3-ubyte.gz"
    idx_writer(images, np.zeros((5,), np.uint8))
    with pytest.raises(TfrobustError, match=r"expected 0x00000803: .*train-images-idx3-ubyte\.gz"):
        data.load("mnist", "train", data_dir=tmp_path)


def test_count_mismatch_and_missing_files(tmp_path, rng, idx_dataset_writer, idx_writer):
    idx_dataset_writer(tmp_path, rng)
    idx_writer(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros((7,), np.uint8))
    with pytest.raises(TfrobustError, match=r"3 images in .* but 7 labels"):
        data.load("mnist", "test", data_dir=tmp_path)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(TfrobustError, match=r"t10k-labels-idx1-ubyte\[\.gz\] not found in"):
        data.load("mnist", "test", data_dir=tmp_path)
    with pytest.raises(TfrobustError, match="is not an existing directory"):
        data.load("mnist", "test", data_dir=tmp_path / "nope")
