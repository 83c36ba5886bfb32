"""Write-then-rename, so a reader never picks up a half-written export.

A crash mid-export leaves only a hidden ``.tmp-*`` sibling, never a partial file or directory under the
final name; a rename within one directory is atomic on POSIX file systems.
"""

import contextlib
import os
import shutil
import tempfile

from tfrobust.errors import ArtifactError


@contextlib.contextmanager
def atomic_path(final_path, *, directory):
    """Yields a temporary path beside ``final_path``; on success renames it to ``final_path``.

    Args:
      final_path: where the result must appear. It must not exist yet (exports are immutable: TF-Serving
        versions and released files are never rewritten in place).
      directory: True if the writer produces a directory, False for a single file.
    """
    final_path = os.path.abspath(final_path)
    if os.path.exists(final_path):
        raise ArtifactError(f"{final_path} already exists; exports are never overwritten")
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
