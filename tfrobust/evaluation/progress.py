"""How far a running (or interrupted) evaluation has come, read from its saved state without touching it.

A long evaluation journals every finished batch (``evaluation.resume``; AutoAttack every finished chunk of
every component). ``read_progress(state_folder)`` reads those journals back: per attack, the batches done,
the points still standing and the seconds spent; for AutoAttack, per component, the chunks done and the
points it broke. ``format_progress`` prints it. The standing counts are *provisional*: a point not yet
attacked counts as standing, so they are upper bounds of the final robust accuracy, never results.

The reader works from the records alone: a journal's first record holds the clean predictions and the
points to attack; a batch record the predictions on its points (a point is broken when its prediction
differs from its clean one, which was correct); AutoAttack's own journal (``attack/``) starts with the
points it was given and lists per chunk the points broken. A batch count needs the batch size: the plan
record states it (an attack that batches itself has one batch); in a state saved before it did, it is the
size of the first batch (every batch but the last is full), else the command's (``command.json``).
AutoAttack's chunk size is in its start record.
"""

import json
import math
import os

import numpy as np

from tfrobust.core.journal import Journal
from tfrobust.errors import TfrobustError

#: The suite's journal of the clean predictions (``run_suite``): it attacks nothing.
CLEAN = "clean"
#: What makes an unfinished attack's standing count provisional (said beside every such count).
PROVISIONAL = "points not yet attacked count as standing"
#: The sub-journal in which an attack that batches itself (AutoAttack) records its chunks.
ATTACK_JOURNAL = "attack"


def read_progress(folder):
    """Every attack journal under ``folder`` (an evaluation's state), in the order they were started (the
    modification time of their first record; ties by path).

    Returns a list of dicts: ``journal`` (its path under ``folder``, e.g. "standard/model/pgd-20"), ``points``
    (evaluated points), ``attacked`` (points standing when the attack began; None for the clean journal),
    ``batches_done``, ``batches`` (planned; None when the batch size is unknown), ``standing`` (points still
    standing now: once an attack is finished, the evaluation's own count), ``finished``, ``seconds`` (recorded
    work), and for AutoAttack ``components``: per component ``name`` (None in a state saved before names were
    recorded), ``chunks_done``, ``chunks`` (None while the component waits for its predecessor, or when the
    chunk size is unknown), ``standing`` after its finished chunks (AutoAttack's own count, which a randomised
    model's final predictions may not repeat), ``seconds``, ``seconds_left`` (an estimate for a running component:
    its seconds per point so far times the points its remaining chunks hold; None when unknown), ``finished`` and
    ``waiting``.

    Raises:
      TfrobustError: a record is damaged, or a folder holds records this reader does not know.
    """
    folder = os.fspath(folder)
    batch_size = _command(folder).get("batch_size")
    entries = []
    for path in _journal_folders(folder):
        try:
            records = Journal(path).records()
        except TfrobustError:
            if not os.path.isdir(path):  # removed while being read: the evaluation finished and cleared its state
                continue
            raise
        if not records:
            continue
        try:
            entries.append(_attack_progress(os.path.relpath(path, folder), path, records, batch_size))
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise TfrobustError(f"{path} holds records this version cannot read ({type(error).__name__}: "
                                f"{error}); is it an evaluation state?") from error
    return entries


def format_progress(entries):
    """Lines describing ``read_progress``'s entries (provisional standing counts marked as such)."""
    lines = []
    for entry in entries:
        points, name = entry["points"], entry["journal"]
        if entry["attacked"] is None:
            lines.append(f"{name}: {entry['standing']} of {points} correct ({_percent(entry['standing'], points)})")
            continue
        batches = f"{entry['batches_done']} of {entry['batches']}" if entry["batches"] is not None else \
            f"{entry['batches_done']}"
        status = "done" if entry["finished"] else "running"
        provisional = "" if entry["finished"] else ", provisional"
        lines.append(f"{name}: {status}, {batches} batch(es), {entry['standing']} of {points} standing "
                     f"({_percent(entry['standing'], points)}{provisional}), {entry['seconds']:.0f} s")
        for index, component in enumerate(entry.get("components") or []):
            label = component["name"] or f"component {index}"
            if component["waiting"]:
                lines.append(f"  {label}: waiting")
                continue
            state = "done" if component["finished"] else "running"
            chunks = component["chunks_done"] if component["chunks"] is None else \
                f"{component['chunks_done']} of {component['chunks']}"
            left = "" if component["seconds_left"] is None else f", ≈ {component['seconds_left'] / 60:.0f} min left"
            lines.append(f"  {label}: {state}, {chunks} chunk(s), {component['standing']} standing, "
                         f"{component['seconds']:.0f} s{left}")
    return lines


def _percent(count, total):
    return f"{100 * count / total:.1f} %" if total else "n/a"


def _command(folder):
    path = os.path.join(folder, "command.json")
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def _journal_folders(folder):
    """Folders holding a journal (a record 0), AutoAttack's own ``attack/`` journals excepted, in the order
    they were started (the suite's order)."""
    found = []
    for root, directories, files in os.walk(folder):
        # Hidden folders are records being written (``files.atomic_path``'s ``.tmp-*``), not journals.
        directories[:] = sorted(name for name in directories if not name.startswith("."))
        if "000000.npz" in files and os.path.basename(root) != ATTACK_JOURNAL:
            found.append(root)

    def started(root):
        try:
            return os.stat(os.path.join(root, "000000.npz")).st_mtime_ns
        except OSError:  # removed since the walk: read_progress skips it
            return 0

    return sorted(found, key=lambda root: (started(root), root))


def _attack_progress(name, path, records, batch_size):
    (start, arrays), batches = records[0], records[1:]
    clean_pred, correct = arrays["y_pred"], arrays["correct"].astype(bool)
    seconds = sum(float(meta.get("seconds", 0.0)) for meta, _ in records)
    entry = {"journal": name, "points": int(start["points"]), "seconds": seconds}
    if os.path.basename(path) == CLEAN:
        return {**entry, "attacked": None, "batches_done": 0, "batches": 0, "standing": int(correct.sum()),
                "finished": True}
    standing_index = np.flatnonzero(correct)
    entry.update(attacked=len(standing_index), batches_done=len(batches))
    inner = Journal(os.path.join(path, ATTACK_JOURNAL)).records()
    if inner:  # an attack that batches itself (AutoAttack): one batch, its chunks in its own journal
        entry["batches"] = 1
        entry["components"], broken = _components(inner, batch_size)
        if not batches:  # its batch record, with the whole call's time, is written when it returns
            entry["seconds"] += sum(component["seconds"] for component in entry["components"])
    else:
        # The plan record states the size (since it was recorded); else every batch but the last is full, so the
        # first one done gives it; else the command's.
        size = start.get("batch_size") or (len(batches[0][1]["y_pred"]) if batches else batch_size)
        entry["batches"] = (math.ceil(len(standing_index) / size) if size else
                            0 if not len(standing_index) else None)
    if batches or not inner:
        # The batch records hold the predictions the evaluation scores: a point is broken when its prediction
        # differs from its clean one (which was its label).
        broken, offset = 0, 0
        for _, batch in batches:
            index = standing_index[offset:offset + len(batch["y_pred"])]
            broken += int(np.sum(batch["y_pred"] != clean_pred[index]))
            offset += len(index)
    entry["standing"] = len(standing_index) - broken
    # An attack with no point left to attack has no batch to do: finished by its plan record alone.
    entry["finished"] = entry["batches"] is not None and len(batches) >= entry["batches"]
    return entry


def _components(records, batch_size):
    """(per-component progress, points broken so far) from AutoAttack's journal; ``batch_size`` is the
    command's, for a start record saved before AutoAttack recorded its own."""
    (start, arrays), chunks = records[0], records[1:]
    size, names = start.get("batch_size", batch_size), start.get("components")
    standing = int(np.sum(arrays["robust"]))
    by_component = {}
    for meta, chunk in chunks:
        by_component.setdefault(int(meta["component"]), []).append((meta, chunk))
    count = len(names) if names else max(by_component, default=0) + 1
    components, broken = [], 0
    for index in range(count):
        done = by_component.get(index, [])
        # A component's chunks are cut from the points its predecessor left: unknown until that one finishes.
        waiting = index > 0 and not components[-1]["finished"]
        planned = math.ceil(standing / size) if size and not waiting else None
        seconds = sum(float(meta["seconds"]) for meta, _ in done)
        # Chunk k holds points [k·size, (k + 1)·size) of those standing at the component's start (the last one
        # fewer): the time left is the time per point so far times the points left, not per chunk.
        points_done = sum(min(size, standing - int(meta["chunk"]) * size) for meta, _ in done) if planned else 0
        seconds_left = (seconds / points_done * (standing - points_done) if points_done and len(done) < planned
                        else None)
        broken_here = sum(len(chunk["broken"]) for _, chunk in done)
        standing -= broken_here
        broken += broken_here
        components.append({"name": names[index] if names else None, "chunks_done": len(done), "chunks": planned,
                           "standing": standing, "seconds": seconds, "seconds_left": seconds_left,
                           "finished": planned is not None and len(done) >= planned, "waiting": waiting})
    return components, broken
