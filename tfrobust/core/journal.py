"""An append-only log of records on disk, each written atomically: the state of a resumable computation.

A long evaluation appends one record per finished unit of work (a batch of an attack, a chunk of an
AutoAttack component); a re-run reads the records back, replays them and continues after the last one.
Record ``k`` is ``<folder>/<k:06d>.npz`` holding NumPy arrays plus a JSON ``meta`` dict. A record
appears whole or not at all (write-then-rename, ``files.atomic_path``), so a process killed at any
instant leaves a readable log: at worst the unit it was working on is done again.

Why a log of deltas and not one state file rewritten after every batch: rewriting the whole state
(e.g. every adversarial example so far) costs O(points) per batch, O(points²) per attack; a delta costs
O(batch).
"""

import json
import os
import re
import shutil
import zipfile

import numpy as np

from tfrobust.core.files import atomic_path
from tfrobust.errors import TfrobustError

_RECORD = re.compile(r"^(\d{6})\.npz$")
_META = "__meta__"


class Journal:
    """``Journal(folder)``: ``records()`` reads the log, ``append(meta, **arrays)`` adds one record.

    Args:
      folder: where the records live (created on the first ``append``).

    ``child(name)`` is a journal in a sub-folder (e.g. an attack's own log inside a batch's);
    ``clear()`` removes the folder and everything under it.
    """

    def __init__(self, folder):
        self.folder = os.fspath(folder)
        self._count = None  # records on disk, known after the first records() / append()

    def child(self, name):
        """The journal in ``<folder>/<name>``; characters other than letters, digits and ``_.@=+-`` in
        ``name`` become ``_`` (a model label ``cnn@1:saved_model`` → ``cnn@1_saved_model``)."""
        name = re.sub(r"[^A-Za-z0-9_.@=+-]", "_", str(name))
        if name.strip(".") == "":
            raise TfrobustError(f"journal name {name!r} must be a plain file name")
        return Journal(os.path.join(self.folder, name))

    def records(self):
        """[(meta dict, {name: array})] in order, from record 0 up to the first missing one.

        A record that cannot be read (a damaged disk or a hand-edited file; a kill cannot produce one)
        raises a ``TfrobustError`` naming it rather than being skipped, so damage is never silently
        replaced by a different computation."""
        numbers = sorted(int(m.group(1)) for m in map(_RECORD.match, self._names()) if m)
        records = []
        for expected, number in enumerate(numbers):
            if number != expected:
                break  # only a complete prefix counts; a later record without its predecessors is ignored
            path = os.path.join(self.folder, f"{number:06d}.npz")
            try:
                with np.load(path, allow_pickle=False) as data:
                    arrays = {key: data[key] for key in data.files if key != _META}
                    meta = json.loads(str(data[_META]))
            except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as error:
                raise TfrobustError(f"the saved state record {path} is damaged ({type(error).__name__}: "
                                    f"{str(error).splitlines()[0] if str(error) else ''}); remove it or "
                                    "start over (--restart)") from error
            records.append((meta, arrays))
        self._count = len(records)
        return records

    def append(self, meta, **arrays):
        """Writes the next record atomically: ``meta`` (JSON-serialisable dict) and the named arrays."""
        if self._count is None:
            self.records()
        for name in self._names():  # orphans past the complete prefix must not join the log after this record
            match = _RECORD.match(name)
            if match and int(match.group(1)) >= self._count:
                os.remove(os.path.join(self.folder, name))
        path = os.path.join(self.folder, f"{self._count:06d}.npz")
        with atomic_path(path) as temp:
            with open(temp, "wb") as handle:
                np.savez(handle, **{_META: np.array(json.dumps(meta))},
                         **{key: np.asarray(value) for key, value in arrays.items()})
        self._count += 1

    def clear(self):
        """Removes the folder and every record and child journal in it."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self._count = None

    def _names(self):
        return os.listdir(self.folder) if os.path.isdir(self.folder) else []
