"""How far a running (or interrupted) evaluation has come, read from its saved state without touching it.

A long evaluation journals every finished batch (``evaluation.resume``; AutoAttack every finished chunk of
every component). ``read_progress(state_folder)`` reads those journals back: per attack, the batches done,
the points still standing and the seconds spent; for AutoAttack, per component, the chunks done and the
points it broke. ``format_progress`` prints it. The standing counts are *provisional*: a point not yet
attacked counts as standing, so they are upper bounds of the final robust accuracy, never results.

The reader works from the records alone: a journal's first record holds the clean predictions and the
points to attack; a batch record the predictions on its points (a point is broken when its prediction
differs from its clean one, which was correct); AutoAttack's own journal (``attack/``) starts with the
points it was given and lists per chunk the points broken. A batch count needs the batch size: an
attack's is the size of its first batch (every batch but the last is full), else the command's
(``command.json``); AutoAttack's chunk size is in its start record.
"""

import json
import math
import os

import numpy as np

from tfrobust.core.journal import Journal

#: The suite's journal of the clean predictions (``run_suite``): it attacks nothing.
CLEAN = "clean"
#: The sub-journal in which an attack that batches itself (AutoAttack) records its chunks.
ATTACK_JOURNAL = "attack"


def read_progress(folder):
    """Every attack journal under ``folder`` (an evaluation's state), in path order.

    Returns a list of dicts: ``journal`` (its path under ``folder``, e.g. "standard/model/pgd-20"), ``points``
    (evaluated points), ``attacked`` (points standing when the attack began; None for the clean journal),
    ``batches_done``, ``batches`` (planned; None when the batch size is unknown), ``standing`` (points still
    standing now), ``finished``, ``seconds`` (recorded work), and for AutoAttack ``components``: per
    component ``name`` (None in a state saved before names were recorded), ``chunks_done``, ``chunks``,
    ``standing`` after its finished chunks, ``seconds`` and ``finished``.
    """
    folder = os.fspath(folder)
    batch_size = _command(folder).get("batch_size")
    entries = []
    for path in _journal_folders(folder):
        records = Journal(path).records()
        if not records:
            continue
        entries.append(_attack_progress(os.path.relpath(path, folder), path, records, batch_size))
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
            if component["chunks"] is None:
                lines.append(f"  {label}: waiting")
                continue
            state = "done" if component["finished"] else "running"
            left = ""
            if not component["finished"] and component["chunks_done"]:  # the mean chunk so far, times those left
                mean = component["seconds"] / component["chunks_done"]
                left = f", ≈ {mean * (component['chunks'] - component['chunks_done']) / 60:.0f} min left"
            lines.append(f"  {label}: {state}, {component['chunks_done']} of {component['chunks']} chunk(s), "
                         f"{component['standing']} standing, {component['seconds']:.0f} s{left}")
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
        directories.sort()
        if "000000.npz" in files and os.path.basename(root) != ATTACK_JOURNAL:
            found.append(root)
    return sorted(found, key=lambda root: (os.path.getmtime(os.path.join(root, "000000.npz")), root))


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
    if inner:  # an attack that batches itself: one batch, its chunks in its own journal
        entry["batches"] = 1
        entry["components"], broken = _components(inner)
        seconds += sum(component["seconds"] for component in entry["components"]) if not batches else 0.0
        entry["seconds"] = seconds
    else:
        # Every batch but the last is full: the first one done gives the size when the command does not.
        size = len(batches[0][1]["y_pred"]) if batches else batch_size
        entry["batches"] = math.ceil(len(standing_index) / size) if size else (0 if not len(standing_index) else None)
        broken, offset = 0, 0
        for _, batch in batches:
            index = standing_index[offset:offset + len(batch["y_pred"])]
            broken += int(np.sum(batch["y_pred"] != clean_pred[index]))
            offset += len(index)
    entry["standing"] = len(standing_index) - broken
    # An attack with no point left to attack has no batch to do: finished by its plan record alone.
    entry["finished"] = entry["batches"] is not None and len(batches) >= entry["batches"]
    return entry


def _components(records):
    """(per-component progress, points broken so far) from AutoAttack's journal."""
    (start, arrays), chunks = records[0], records[1:]
    size, names = int(start["batch_size"]), start.get("components")
    standing = int(np.sum(arrays["robust"]))
    by_component = {}
    for meta, chunk in chunks:
        by_component.setdefault(int(meta["component"]), []).append((meta, chunk))
    count = len(names) if names else max(by_component, default=0) + 1
    components, broken = [], 0
    for index in range(count):
        done = by_component.get(index, [])
        # A component's chunks are cut from the points its predecessor left: unknown until that one finishes.
        known = index == 0 or components[-1]["finished"]
        planned = math.ceil(standing / size) if known else None
        broken_here = sum(len(chunk["broken"]) for _, chunk in done)
        standing -= broken_here
        broken += broken_here
        components.append({"name": names[index] if names else None, "chunks_done": len(done), "chunks": planned,
                           "standing": standing, "seconds": sum(float(meta["seconds"]) for meta, _ in done),
                           "finished": known and len(done) >= planned})
    return components, broken
