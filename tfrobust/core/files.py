"""Write-then-rename, so a reader never picks up a half-written file.

A crash mid-write leaves only a hidden ``.tmp-*`` sibling, never a partial file or directory under the
final name; a rename within one directory is atomic on POSIX file systems.
"""

import contextlib
import json
import os
import shutil
import tempfile

import numpy as np


@contextlib.contextmanager
def atomic_path(final_path, *, directory=False):
    """Yields a temporary path beside ``final_path``; on success renames it to ``final_path``.

    The temporary path has the same basename as ``final_path`` (inside a hidden ``.tmp-*`` directory),
    so writers that check the suffix (``save_weights`` wants ``.weights.h5``) accept it. An existing
    file at ``final_path`` is replaced; callers that must never overwrite check first.

    Args:
      final_path: where the result must appear.
      directory: True if the writer produces a directory, False for a single file.
    """
    final_path = os.path.abspath(final_path)
    parent = os.path.dirname(final_path)
    os.makedirs(parent, exist_ok=True)
    temp_dir = tempfile.mkdtemp(prefix=f".tmp-{os.path.basename(final_path)}-", dir=parent)
    temp_path = temp_dir if directory else os.path.join(temp_dir, os.path.basename(final_path))
    try:
        yield temp_path
        os.replace(temp_path, final_path)
    finally:
        if os.path.exists(temp_dir):
            shutil.rmtree(temp_dir, ignore_errors=True)


def write_text(path, text):
    """Writes ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_path(path) as temp:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(text)
    return path


def write_json(path, value, *, indent=2, allow_nan=True):
    """Writes ``value`` as JSON to ``path`` atomically (parent folders created); returns the path.

    ``allow_nan=False`` refuses NaN/inf (strict JSON) with a ValueError instead of writing them."""
    return write_text(path, json.dumps(value, indent=indent, allow_nan=allow_nan))


def plain(value, *, arrays="drop"):
    """``value`` made JSON-ready: NumPy scalars become Python numbers and bools, tuples lists; NumPy
    arrays inside dicts are dropped (``arrays="drop"``: they live in .npz files beside the JSON) or
    become lists (``arrays="list"``)."""
    if isinstance(value, dict):
        return {key: plain(item, arrays=arrays) for key, item in value.items()
                if arrays != "drop" or not isinstance(item, np.ndarray)}
    if isinstance(value, (list, tuple)):
        return [plain(item, arrays=arrays) for item in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist(), arrays=arrays)
    if isinstance(value, np.generic):
        return value.item()
    return value
