import numpy as np
import pytest

from tfrobust import data
from tfrobust.errors import TfrobustError

N = 20
X = (np.arange(N * 8 * 8 * 3, dtype=np.float32).reshape(N, 8, 8, 3) % 251) / 250
Y = np.arange(N, dtype=np.int64)  # labels double as example ids


def _epochs(ds, n=2):
    return [np.concatenate([y.numpy() for _, y in ds]) for _ in range(n)]


def test_batches_in_order():
    batches = list(data.make_dataset(X, Y, 8))
    assert [b[0].shape[0] for b in batches] == [8, 8, 4]
    images, labels = batches[0]
    assert images.dtype.name == "float32" and labels.dtype.name == "int64"
    np.testing.assert_array_equal(images.numpy(), X[:8])
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), Y)
    dropped = list(data.make_dataset(X, Y, 8, drop_remainder=True))
    assert len(dropped) == 2
    assert tuple(data.make_dataset(X, Y, 8, drop_remainder=True).element_spec[0].shape) == (8, 8, 8, 3)


def test_seeded_shuffle_reproducible():
    a = _epochs(data.make_dataset(X, Y, 8, shuffle=True, seed=1))
    b = _epochs(data.make_dataset(X, Y, 8, shuffle=True, seed=1))
    c = _epochs(data.make_dataset(X, Y, 8, shuffle=True, seed=2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[0], a[1])  # reshuffled each epoch
    assert sorted(a[0]) == list(range(N))  # an exact permutation


def test_images_follow_labels_when_shuffled():
    for images, labels in data.make_dataset(X, Y, 8, shuffle=True, seed=3):
        np.testing.assert_array_equal(images.numpy(), X[labels.numpy()])


def test_repeat():
    ds = data.make_dataset(X, Y, 8, shuffle=True, seed=0, repeat=True)
    labels = np.concatenate([y.numpy() for _, y in ds.take(5)])
    assert len(labels) == 40 and sorted(labels[:N]) == list(range(N))


@pytest.mark.parametrize("augment", ["flip_crop", "crop"])
def test_augment_keeps_shape_range_and_is_seeded(augment):
    def run(seed):
        ds = data.make_dataset(X, Y, 8, shuffle=True, seed=seed, augment=augment)
        return [np.concatenate([x.numpy() for x, _ in ds]) for _ in range(2)]

    a, b, c = run(5), run(5), run(6)
    assert a[0].shape == X.shape and a[0].dtype == np.float32
    assert a[0].min() >= 0 and a[0].max() <= 1
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[0], a[1])


def _shift_of(src, dst, pad):
    """(dy, dx) such that dst is src shifted with zero fill, or None."""
    padded = np.pad(src, ((pad, pad), (pad, pad), (0, 0)))
    h, w = src.shape[:2]
    for dy in range(-pad, pad + 1):
        for dx in range(-pad, pad + 1):
            if np.array_equal(dst, padded[pad + dy:pad + dy + h, pad + dx:pad + dx + w]):
                return dy, dx
    return None


def test_pad_crop_is_a_per_image_integer_shift():
    import tensorflow as tf

    src = X[:8] * 0.9 + 0.05  # strictly positive, so the zero border is recognisable
    out = data.random_pad_crop(tf.constant(src), tf.constant([1, 2]), padding=2).numpy()
    shifts = [_shift_of(a, b, 2) for a, b in zip(src, out)]
    assert None not in shifts, "output is not a shifted copy of the input"
    assert len(set(shifts)) > 1  # offsets differ between images of one batch


@pytest.mark.parametrize("augment", ["crop", "flip_crop"])
def test_crop_never_flips_and_flip_crop_does(augment):
    src = X * 0.9 + 0.05
    ds = data.make_dataset(src, Y, 10, seed=0, augment=augment)
    flipped = 0
    for images, labels in ds:
        for img, k in zip(images.numpy(), labels.numpy()):
            if _shift_of(src[k], img, 4) is None:
                assert augment == "flip_crop", "crop must only shift"
                assert _shift_of(src[k][:, ::-1], img, 4) is not None
                flipped += 1
    assert (flipped > 0) == (augment == "flip_crop")


def test_bad_arguments():
    with pytest.raises(TfrobustError, match=r"batch_size must be in \[1, inf\), got 0"):
        data.make_dataset(X, Y, 0)
    with pytest.raises(TfrobustError, match="batch_size must be an integer, got 2.5"):
        data.make_dataset(X, Y, 2.5)
    with pytest.raises(TfrobustError, match=r"unknown augment 'mixup'; valid choices: None, flip_crop, crop"):
        data.make_dataset(X, Y, 4, augment="mixup")
    with pytest.raises(TfrobustError, match="x must be float32, got float64"):
        data.make_dataset(X.astype(np.float64), Y, 4)
    with pytest.raises(TfrobustError, match="x must lie in"):
        data.make_dataset(X * 2, Y, 4)
    with pytest.raises(TfrobustError, match="y has 19 entries but there are 20 images"):
        data.make_dataset(X, Y[:-1], 4)
