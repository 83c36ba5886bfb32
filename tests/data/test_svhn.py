import numpy as np
import pytest
import scipy.io

from tfrobust import data
from tfrobust.errors import TfrobustError


def _write(folder, split, images, labels):
    """Official layout: X (32, 32, 3, N) uint8, y (N, 1) with 10 meaning digit 0."""
    scipy.io.savemat(folder / f"{split}_32x32.mat",
                     {"X": images.transpose(1, 2, 3, 0), "y": np.asarray(labels, np.uint8)[:, None]})


def test_svhn_mat_images_and_label_10_is_zero(tmp_path, rng):
    train = rng.integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
    test = rng.integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    _write(tmp_path, "train", train, [10, 1, 9, 10])
    _write(tmp_path, "test", test, [5, 10, 2])
    x, y = data.load("svhn", "train", data_dir=tmp_path)
    assert x.shape == (4, 32, 32, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(x, train.astype(np.float32) / 255)
    np.testing.assert_array_equal(y, [0, 1, 9, 0])
    x, y = data.load("svhn", "test", size=2, data_dir=tmp_path)
    np.testing.assert_array_equal(x, test[:2].astype(np.float32) / 255)
    np.testing.assert_array_equal(y, [5, 0])


def test_svhn_missing_and_corrupt(tmp_path, rng):
    with pytest.raises(TfrobustError, match=r"train_32x32\.mat not found; download"):
        data.load("svhn", "train", data_dir=tmp_path)
    (tmp_path / "test_32x32.mat").write_bytes(b"MATLAB garbage")
    with pytest.raises(TfrobustError, match=r"corrupt SVHN file .*test_32x32\.mat"):
        data.load("svhn", "test", data_dir=tmp_path)
    scipy.io.savemat(tmp_path / "train_32x32.mat", {"X": np.zeros((28, 28, 1, 2), np.uint8),
                                                     "y": np.ones((2, 1))})
    with pytest.raises(TfrobustError, match=r"X must be uint8 \(32, 32, 3, N\)"):
        data.load("svhn", "train", data_dir=tmp_path)


def test_svhn_without_files_or_tfds_explains(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tfds(name, *args, **kwargs):
        if name == "tensorflow_datasets":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tfds)
    with pytest.raises(TfrobustError, match=r"data_dir= .*train_32x32\.mat.*tensorflow-datasets"):
        data.load("svhn", "test")
