"""Input checks shared by the whole library: image batches in [0, 1] and integer labels.

Every tfrobust component works on float images in [0, 1] (NHWC) with integer class labels; the
checks here turn the usual mistakes (uint8 pixels, a missing batch axis, NaNs, one-hot labels) into a
one-line ``TfrobustError`` at the boundary instead of a silent wrong answer deep inside an attack.
"""

import numpy as np

from tfrobust.errors import TfrobustError


def validate_images(x, name="images", *, dtype=None) -> np.ndarray:
    """Checks that ``x`` is a batch of images with float pixels in [0, 1].

    Args:
      x: array-like (numpy array or eager tensor) of shape (N, H, W, C).
      name: what to call ``x`` in error messages (e.g. the argument name).
      dtype: if given (e.g. ``np.float32``), ``x`` must have exactly this dtype; otherwise any
        floating dtype is accepted.

    Returns:
      ``x`` as a numpy array (not copied when it already is one).

    Raises:
      TfrobustError: wrong rank, non-float or wrong dtype, empty, NaN/inf, or values outside [0, 1].
    """
    try:
        arr = np.asarray(x)
    except Exception as e:  # e.g. ragged nested lists
        raise TfrobustError(f"{name} must be an array of images, got {type(x).__name__} ({e})") from None
    if arr.ndim != 4:
        raise TfrobustError(
            f"{name} must be 4-D images (N, H, W, C), got shape {tuple(arr.shape)}")
    if not np.issubdtype(arr.dtype, np.floating):
        hint = " (divide uint8 pixels by 255)" if arr.dtype == np.uint8 else ""
        raise TfrobustError(
            f"{name} must have a floating dtype with values in [0, 1], got {arr.dtype}{hint}")
    if dtype is not None and arr.dtype != np.dtype(dtype):
        want = np.dtype(dtype).name
        raise TfrobustError(f"{name} must be {want}, got {arr.dtype} (use .astype('{want}'))")
    if arr.size == 0:
        raise TfrobustError(f"{name} is empty (shape {tuple(arr.shape)})")
    # min/max propagate NaN and expose inf without allocating a boolean array of x's size.
    lo, hi = arr.min(), arr.max()
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise TfrobustError(f"{name} contains NaN or infinite values")
    if lo < 0 or hi > 1:
        raise TfrobustError(f"{name} must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]")
    return arr


def validate_labels(y, name="labels", *, num_examples=None, num_classes=None) -> np.ndarray:
    """Checks that ``y`` holds integer class labels, one per example.

    Args:
      y: array-like of shape (N,) with integer class indices (not one-hot).
      name: what to call ``y`` in error messages.
      num_examples: if given, ``len(y)`` must equal it (the number of images).
      num_classes: if given, labels must lie in [0, num_classes).

    Returns:
      ``y`` as an int64 numpy array.

    Raises:
      TfrobustError: not 1-D, not integer, wrong length or labels out of range.
    """
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise TfrobustError(
            f"{name} must be 1-D integer class indices, got shape {tuple(arr.shape)}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TfrobustError(f"{name} must have an integer dtype, got {arr.dtype}")
    if num_examples is not None and len(arr) != num_examples:
        raise TfrobustError(f"{name} has {len(arr)} entries but there are {num_examples} images")
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or (num_classes is not None and hi >= num_classes):
            bound = f"[0, {num_classes})" if num_classes is not None else ">= 0"
            raise TfrobustError(f"{name} must be in {bound}, got values in [{lo}, {hi}]")
    return arr.astype(np.int64, copy=False)
