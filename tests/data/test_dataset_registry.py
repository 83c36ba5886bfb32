import dataclasses

import numpy as np
import pytest

from tfrobust import data
from tfrobust.data import registry as dataset_registry
from tfrobust.errors import TfrobustError


@pytest.fixture(autouse=True)
def restore_registry():
    """The toy datasets registered here must not leak into later tests (e.g. the scripts' name lists)."""
    saved = dict(dataset_registry._REGISTRY)
    yield
    dataset_registry._REGISTRY.clear()
    dataset_registry._REGISTRY.update(saved)


def test_builtin_names_and_infos():
    assert set(data.names()) >= {"fashion_mnist", "mnist", "cifar10", "cifar100", "svhn"}
    assert data.info("mnist").eps_linf == 0.3 and data.info("mnist").eps_l2 == 2.0
    assert data.info("svhn").eps_linf == 8 / 255 and data.info("cifar100").eps_l2 == 0.5
    assert data.info("cifar100").num_classes == len(data.info("cifar100").class_names) == 100
    assert data.info("svhn").train_size == 73257 and data.info("svhn").image_shape == (32, 32, 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.info("mnist").num_classes = 3


def test_unknown_name_and_split_list_choices():
    with pytest.raises(TfrobustError, match=r"unknown dataset 'imagenet'; valid choices: .*fashion_mnist.*cifar10"):
        data.load("imagenet")
    with pytest.raises(TfrobustError, match=r"unknown dataset 'imagenet'; valid choices"):
        data.info("imagenet")
    with pytest.raises(TfrobustError, match=r"unknown split 'val'; valid choices: train, test"):
        data.load("mnist", "val")


def _toy_info(name="toy", **overrides):
    fields = dict(name=name, image_shape=(2, 2, 1), num_classes=2, class_names=("a", "b"),
                  eps_linf=0.1, eps_l2=0.5, train_size=4, test_size=2)
    fields.update(overrides)
    return data.DatasetInfo(**fields)


def _toy_loader(split, data_dir):
    n = 4 if split == "train" else 2
    return np.arange(n * 4, dtype=np.uint8).reshape(n, 2, 2, 1), np.arange(n) % 2


def test_register_and_size_checks():
    data.register(_toy_info(), _toy_loader, overwrite=True)
    assert "toy" in data.names()
    with pytest.raises(TfrobustError, match="already registered; pass overwrite=True"):
        data.register(_toy_info(), _toy_loader)
    x, y = data.load("toy", "train", size=3)
    np.testing.assert_array_equal(x.ravel(), np.arange(12, dtype=np.float32) / 255)
    np.testing.assert_array_equal(y, [0, 1, 0])
    with pytest.raises(TfrobustError, match=r"size=5 exceeds the 4 images of the toy train split"):
        data.load("toy", "train", size=5)
    with pytest.raises(TfrobustError, match=r"size must be in \[1, inf\), got 0"):
        data.load("toy", "test", size=0)
    with pytest.raises(TfrobustError, match="size must be an integer, got"):
        data.load("toy", "test", size=1.5)


def test_loader_output_is_checked():
    data.register(_toy_info("toy_bad"), lambda s, d: (np.zeros((2, 3, 3, 1), np.uint8), [0, 1]),
                  overwrite=True)
    with pytest.raises(TfrobustError,
                       match=r"toy_bad train split: images have shape \(2, 3, 3, 1\), expected \(N, 2, 2, 1\)"):
        data.load("toy_bad")


def test_dataset_info_validation():
    with pytest.raises(TfrobustError, match="3 class_names for 2 classes"):
        _toy_info(class_names=("a", "b", "c"))
    with pytest.raises(TfrobustError,
                       match=r"unknown DatasetInfo 'toy' augment 'mixup'; valid choices: None, flip_crop, crop"):
        _toy_info(augment="mixup")
