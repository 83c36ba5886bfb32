"""Exports appear atomically and are never overwritten (write-then-rename: ``tfrobust.core.files``)."""

import contextlib
import os

from tfrobust.core import files
from tfrobust.errors import ArtifactError


@contextlib.contextmanager
def atomic_path(final_path, *, directory):
    """Yields a temporary path beside ``final_path``; on success renames it to ``final_path``.

    Args:
      final_path: where the result must appear. It must not exist yet (exports are immutable: TF-Serving
        versions and released files are never rewritten in place).
      directory: True if the writer produces a directory, False for a single file.
    """
    if os.path.exists(os.path.abspath(final_path)):
        raise ArtifactError(f"{os.path.abspath(final_path)} already exists; exports are never overwritten")
    with files.atomic_path(final_path, directory=directory) as temp_path:
        yield temp_path
