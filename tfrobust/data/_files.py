"""File helpers shared by the loaders: cache keys, in-memory caches and read-only arrays.

Decoded datasets are cached in memory, keyed by ``(absolute path, mtime, size)`` of the files they
came from, so a second ``load`` of the same split is cheap while a rewritten file is read again.
Cached arrays are marked read-only so no caller can corrupt what the next caller receives;
``tfrobust.data.load`` always returns fresh float32 copies anyway.
"""

import functools
import os

import numpy as np

from tfrobust.errors import TfrobustError

_CACHES = []


def memory_cache(maxsize=8):
    """Like ``functools.lru_cache`` but registered so ``clear_cache()`` can empty every cache."""

    def decorate(fn):
        cached = functools.lru_cache(maxsize=maxsize)(fn)
        _CACHES.append(cached)
        return cached

    return decorate


def clear_cache() -> None:
    """Drops every decoded dataset held in memory (files and keras.datasets downloads)."""
    for cached in _CACHES:
        cached.cache_clear()


def stamp(path, what="file"):
    """Returns ``(abspath, mtime_ns, size)`` for cache keys; TfrobustError if ``path`` is missing."""
    path = os.path.abspath(os.fspath(path))
    try:
        st = os.stat(path)
    except OSError as e:
        raise TfrobustError(f"{what} not found: {path} ({e.strerror})") from None
    if not os.path.isfile(path):
        raise TfrobustError(f"{what} is not a regular file: {path}")
    return path, st.st_mtime_ns, st.st_size


def readonly(*arrays):
    """Marks arrays read-only (in place) and returns them, a single array unwrapped."""
    for a in arrays:
        a.flags.writeable = False
    return arrays[0] if len(arrays) == 1 else arrays


def check_data_dir(data_dir, dataset: str) -> str:
    """Returns ``data_dir`` as an absolute path, or raises if it is not an existing directory."""
    path = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    if not os.path.isdir(path):
        raise TfrobustError(f"{dataset}: data_dir {path} is not an existing directory")
    return path


def to_numpy_split(images, labels):
    """Normalises a keras.datasets / TFDS split to (uint8 NHWC, int64 (N,)) read-only arrays."""
    images = np.ascontiguousarray(images)
    if images.ndim == 3:
        images = images[..., None]
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    return readonly(images, labels)
