import numpy as np
import pytest

from tfrobust.data import validate_images, validate_labels
from tfrobust.errors import TfrobustError

OK = np.full((2, 4, 4, 1), 0.5, np.float32)


def test_accepts_valid_images():
    assert validate_images(OK, "x") is OK


@pytest.mark.parametrize("bad, message", [
    (np.where(np.arange(32).reshape(2, 4, 4, 1) == 3, np.nan, 0.5).astype(np.float32),
     "x contains NaN or infinite values"),
    (np.full((2, 4, 4, 1), np.inf, np.float32), "x contains NaN or infinite values"),
    (OK * 3 - 0.2, r"x must lie in \[0, 1\], got values in \[1.3, 1.3\]"),
    (OK[0], r"x must be 4-D images \(N, H, W, C\), got shape \(4, 4, 1\)"),
    (np.zeros((2, 4, 4, 1), np.uint8), r"x must have a floating dtype .*got uint8 \(divide uint8 pixels by 255\)"),
    (np.zeros((0, 4, 4, 1), np.float32), r"x is empty"),
])
def test_rejects_bad_images(bad, message):
    with pytest.raises(TfrobustError, match=message):
        validate_images(bad, "x")


def test_exact_dtype():
    with pytest.raises(TfrobustError, match=r"x must be float32, got float64 \(use .astype\('float32'\)\)"):
        validate_images(OK.astype(np.float64), "x", dtype=np.float32)


def test_labels():
    assert validate_labels([1, 0], num_examples=2, num_classes=2).dtype == np.int64
    with pytest.raises(TfrobustError, match=r"y must be 1-D integer class indices, got shape \(2, 3\)"):
        validate_labels(np.zeros((2, 3), np.int64), "y")
    with pytest.raises(TfrobustError, match="y must have an integer dtype, got float32"):
        validate_labels(np.zeros(2, np.float32), "y")
    with pytest.raises(TfrobustError, match="y has 3 entries but there are 2 images"):
        validate_labels([0, 1, 1], "y", num_examples=2)
    with pytest.raises(TfrobustError, match=r"y must be in \[0, 2\), got values in \[-1, 2\]"):
        validate_labels([-1, 2], "y", num_classes=2)
