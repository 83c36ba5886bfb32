import logging
import os

import numpy as np
import pytest

from tfrobust import data
from tfrobust.data import mnist as mnist_module
from tfrobust.errors import TfrobustError

DEBIAN = mnist_module.DEBIAN_FASHION_MNIST_DIR
needs_debian = pytest.mark.skipif(
    not os.path.isfile(os.path.join(DEBIAN, "t10k-images-idx3-ubyte.gz")),
    reason="Debian package dataset-fashion-mnist not installed")


@needs_debian
def test_debian_fashion_mnist_full_splits():
    meta = data.info("fashion_mnist")
    assert meta.num_classes == 10 and meta.class_names[0] == "T-shirt/top"
    assert meta.class_names[-1] == "Ankle boot" and meta.eps_linf == 0.1
    for split, n in (("train", 60000), ("test", 10000)):
        x, y = data.load("fashion_mnist", split)
        assert x.shape == (n, 28, 28, 1) and x.dtype == np.float32
        assert x.min() == 0.0 and x.max() == 1.0
        assert y.dtype == np.int64 and set(np.unique(y)) == set(range(10))
        assert len(x) == getattr(meta, f"{split}_size")


@needs_debian
def test_first_n_subset_matches_full_split():
    x_full, y_full = data.load("fashion_mnist", "test")
    x, y = data.load("fashion_mnist", "test", size=100)
    np.testing.assert_array_equal(x, x_full[:100])
    np.testing.assert_array_equal(y, y_full[:100])
    (xtr, ytr), (xte, yte) = data.load_splits("fashion_mnist", train_size=3, test_size=100)
    assert xtr.shape == (3, 28, 28, 1) and len(ytr) == 3
    np.testing.assert_array_equal(xte, x_full[:100])


def test_keras_fallback_logs_then_errors(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(mnist_module, "DEBIAN_FASHION_MNIST_DIR", str(tmp_path / "missing"))
    data.clear_cache()

    def offline():
        raise OSError("network unreachable")

    monkeypatch.setattr(mnist_module.keras.datasets.fashion_mnist, "load_data", offline)
    with caplog.at_level(logging.WARNING, logger="tfrobust.data.mnist"):
        with pytest.raises(TfrobustError) as err:
            data.load("fashion_mnist", "test")
    assert "apt-get install dataset-fashion-mnist" in caplog.text
    message = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in message and "network unreachable" in message
    assert "\n" not in message

    tiny = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    monkeypatch.setattr(mnist_module.keras.datasets.fashion_mnist, "load_data",
                        lambda: ((tiny, np.array([1, 2])), (tiny[:1], np.array([3]))))
    x, y = data.load("fashion_mnist", "train")
    np.testing.assert_array_equal(x[..., 0], tiny.astype(np.float32) / 255)
    np.testing.assert_array_equal(y, [1, 2])
    data.clear_cache()
