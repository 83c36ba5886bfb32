"""Dataset registry: what each dataset is (``DatasetInfo``) and how to load it.

``load(name, split, size)`` is the single entry point used by training and evaluation. It returns
numpy arrays, not a ``tf.data.Dataset``, because robustness evaluation needs random access to a
fixed, ordered set of points (RobustBench-style "first n test points") and because attacks batch
the data themselves; ``tfrobust.data.make_dataset`` turns the arrays into a training pipeline.

A loader is any callable ``loader(split, data_dir) -> (images, labels)`` returning the *whole*
split as uint8 NHWC images (or float images already in [0, 1]) and integer labels. The registry
checks shapes and label ranges, takes the first ``size`` points and converts to float32 in [0, 1],
so loaders stay small and every dataset obeys the same contract. New datasets are added with
``register(info, loader)``.
"""

import dataclasses
from collections.abc import Callable

import numpy as np

from tfrobust.core.registry import Registry
from tfrobust.data.validation import validate_images, validate_labels
from tfrobust.errors import TfrobustError, check_choice, check_int, check_number

SPLITS = ("train", "test")

Loader = Callable[[str, str | None], tuple]
ClassNamesReader = Callable[[str | None], tuple | None]


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Static description of a dataset.

    Attributes:
      name: registry name, e.g. ``"cifar10"``.
      image_shape: (H, W, C) of one image.
      num_classes: number of classes; labels lie in [0, num_classes).
      class_names: one human-readable name per label, in label order.
      eps_linf: the customary L∞ radius on [0, 1] images for this dataset in the robustness
        literature (0.3 MNIST, 0.1 Fashion-MNIST, 8/255 CIFAR and SVHN).
      eps_l2: the customary L2 radius (2.0 for 28×28 digits/clothes, 0.5 for 32×32 colour images).
      train_size: number of images in the official train split.
      test_size: number of images in the official test split.
      augment: the customary training augmentation for ``make_dataset`` (``"flip_crop"`` for
        natural images, ``"crop"`` where flips change the class, None where papers use none).
    """

    name: str
    image_shape: tuple
    num_classes: int
    class_names: tuple
    eps_linf: float
    eps_l2: float
    train_size: int
    test_size: int
    augment: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "image_shape", tuple(int(d) for d in self.image_shape))
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise TfrobustError(
                f"DatasetInfo {self.name!r}: image_shape must be (H, W, C) with positive sizes, "
                f"got {self.image_shape}")
        check_int(f"DatasetInfo {self.name!r} num_classes", self.num_classes, 2)
        if len(self.class_names) != self.num_classes:
            raise TfrobustError(
                f"DatasetInfo {self.name!r}: {len(self.class_names)} class_names for "
                f"{self.num_classes} classes")
        check_number(f"DatasetInfo {self.name!r} eps_linf", self.eps_linf, 0, 1, low_inclusive=False)
        check_number(f"DatasetInfo {self.name!r} eps_l2", self.eps_l2, 0, low_inclusive=False)
        check_choice(f"DatasetInfo {self.name!r} augment", self.augment, (None, "flip_crop", "crop"))


@dataclasses.dataclass(frozen=True)
class _Entry:
    info: DatasetInfo
    loader: Loader
    class_names_reader: ClassNamesReader | None


_REGISTRY = Registry("dataset", callable_entries=False)


def register(info: DatasetInfo, loader: Loader, *, class_names_reader=None,
             overwrite=False) -> None:
    """Adds a dataset to the registry.

    Args:
      info: the dataset's ``DatasetInfo``; ``info.name`` becomes the registry key.
      loader: ``loader(split, data_dir) -> (images, labels)`` for ``split`` in ("train", "test"),
        returning the whole split (uint8 or [0, 1] float NHWC images, integer labels).
        ``data_dir`` is None when the caller gave none (use the loader's default source).
      class_names_reader: optional ``reader(data_dir) -> tuple of str or None`` that reads class
        names shipped with the files (e.g. CIFAR's ``batches.meta``); used by ``info``.
      overwrite: replace an existing registration of the same name instead of raising.

    Raises:
      TfrobustError: ``info`` is not a DatasetInfo, ``loader`` is not callable, or the name is taken.
    """
    if not isinstance(info, DatasetInfo):
        raise TfrobustError(f"register expects a DatasetInfo, got {type(info).__name__}")
    if not callable(loader):
        raise TfrobustError(f"register({info.name!r}): loader must be callable")
    _REGISTRY.register(info.name, _Entry(info, loader, class_names_reader), overwrite=overwrite)


def names() -> tuple:
    """Registered dataset names, in registration order."""
    return tuple(_REGISTRY)


def _entry(name) -> _Entry:
    return _REGISTRY.lookup(name)


def info(name: str, data_dir=None) -> DatasetInfo:
    """Returns the ``DatasetInfo`` of dataset ``name``.

    Args:
      name: a registered dataset name (see ``names()``).
      data_dir: optional local folder; if the dataset ships class names with its files
        (CIFAR's ``batches.meta`` / ``meta``) and they are present, those names are returned.

    Raises:
      TfrobustError: unknown name (the message lists the valid ones).
    """
    entry = _entry(name)
    if data_dir is not None and entry.class_names_reader is not None:
        found = entry.class_names_reader(data_dir)
        if found is not None:
            if len(found) != entry.info.num_classes:
                raise TfrobustError(
                    f"{name}: class-name file in {data_dir} lists {len(found)} names, "
                    f"expected {entry.info.num_classes}")
            return dataclasses.replace(entry.info, class_names=tuple(found))
    return entry.info


def load(name: str, split: str = "train", size=None, data_dir=None):
    """Loads a dataset split as numpy arrays.

    Args:
      name: a registered dataset name (see ``names()``).
      split: ``"train"`` or ``"test"``.
      size: if given, keep only the first ``size`` points of the split. Taking a prefix (not a
        random sample) makes subsets deterministic and comparable across runs and papers, as in
        RobustBench's "first n test points" evaluation.
      data_dir: local folder with the dataset's files in their official layout; None uses the
        dataset's default source (see each loader module).

    Returns:
      ``(x, y)``: ``x`` float32 of shape (N, H, W, C) in [0, 1]; ``y`` int64 of shape (N,) in
      [0, num_classes). Both are fresh arrays the caller may modify.

    Raises:
      TfrobustError: unknown name or split, ``size`` out of range, or missing/corrupt files.
    """
    entry = _entry(name)
    check_choice("split", split, SPLITS)
    images, labels = entry.loader(split, data_dir)
    images, labels = np.asarray(images), np.asarray(labels).reshape(-1)
    meta = entry.info
    where = f"{name} {split} split"
    if images.ndim != 4 or images.shape[1:] != meta.image_shape:
        dims = ", ".join(map(str, meta.image_shape))
        raise TfrobustError(f"{where}: images have shape {images.shape}, expected (N, {dims})")
    labels = validate_labels(labels, f"{where} labels", num_examples=len(images),
                             num_classes=meta.num_classes)
    n = len(images)
    if size is not None:
        check_int("size", size, 1)
        if size > n:
            raise TfrobustError(f"size={size} exceeds the {n} images of the {where}")
        images, labels = images[:size], labels[:size]
    if images.dtype == np.uint8:
        x = images.astype(np.float32)
        x /= np.float32(255)
    else:
        x = np.array(validate_images(images, f"{where} images"), dtype=np.float32, copy=True)
    return x, np.array(labels, dtype=np.int64, copy=True)


def load_splits(name: str, train_size=None, test_size=None, data_dir=None):
    """Loads both splits: ``((x_train, y_train), (x_test, y_test))``, like ``keras.datasets``.

    Args:
      name: a registered dataset name.
      train_size: first-n subset of the train split (None: all).
      test_size: first-n subset of the test split (None: all).
      data_dir: as in ``load``.
    """
    return (load(name, "train", train_size, data_dir),
            load(name, "test", test_size, data_dir))
