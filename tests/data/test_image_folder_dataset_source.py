"""``load_images("dataset:<name>")``: a registry dataset's images as the clean signals of a denoiser."""

import numpy as np
import pytest

from tfrobust import data
from tfrobust.data.image_folder import load_images
from tfrobust.errors import TfrobustError


def test_dataset_source_gives_the_registry_images_in_order():
    images, names = load_images("dataset:fashion_mnist", "test", "gray", size=5)
    x, _ = data.load("fashion_mnist", "test", size=5)
    assert len(images) == 5 and names[0] == "fashion_mnist/test/0" and names[4] == "fashion_mnist/test/4"
    np.testing.assert_array_equal(np.stack(images), x)
    assert images[0].dtype == np.float32 and images[0].shape == (28, 28, 1)
    rgb, _ = load_images("dataset:fashion_mnist", "test", "rgb", size=2)
    assert rgb[0].shape == (28, 28, 3)
    np.testing.assert_array_equal(rgb[1][..., 2], x[1][..., 0])


def test_size_keeps_a_prefix_of_any_source_and_is_checked():
    images, names = load_images("skimage", "test", "gray", size=2)
    assert names == ["camera", "coins"] and len(images) == 2
    with pytest.raises(TfrobustError, match="size must be a positive integer or None"):
        load_images("skimage", "test", "gray", size=0)
    with pytest.raises(TfrobustError, match="unknown dataset"):
        load_images("dataset:nope", "test", "gray")


def test_pattern_is_refused_for_sources_that_are_not_folders():
    for source in ("skimage", "dataset:fashion_mnist"):
        with pytest.raises(TfrobustError, match="selects files of an image folder; .* is not a folder"):
            load_images(source, "test", "gray", pattern="GT_*")
