"""Where a claim's models are trained and evaluated, and whether a run is new, to resume or finished.

```
<work_dir>/<claim>/<scale>/<model>_seed<N>/            the trainers/train.py run folder (run_layout)
    reproduce_training.json                            the training flags this folder belongs to
    reproduce_evaluation.json + reproduce_masks.npz    the finished evaluation (written atomically; per-image
                                                       PSNR arrays instead of masks for a PSNR claim)
    reproduce_evaluation_state/                        the running evaluation's journal (a kill resumes it)
```

A folder records its training flags before training starts; a re-run with the same flags resumes the
training (``trainers/train.py``'s BackupAndRestore) or, once ``summary.json`` exists, does not retrain. A folder
holding a different run's flags is refused rather than overwritten.
"""

import json
import os
import re

import numpy as np

from tfrobust.core.files import atomic_path, write_json
from tfrobust.core.run_layout import RunLayout
from tfrobust.errors import TfrobustError
from tfrobust.evaluation.progress import PROVISIONAL, format_progress, read_progress
from tfrobust.evaluation.suite import SUITES

TRAINING_RECORD = "reproduce_training.json"
EVALUATION_FILE = "reproduce_evaluation.json"
MASKS_FILE = "reproduce_masks.npz"
#: The standard suite's journal while it runs (``evaluation.resume``), removed when the evaluation is saved.
EVALUATION_STATE = "reproduce_evaluation_state"
NEW, RESUME, FINISHED = "new", "resume", "finished"


def run_dir(work_dir, claim, scale, model, seed):
    return os.path.join(work_dir, claim, scale, f"{model}_seed{seed}")


def seeds_on_disk(work_dir, claim, scale, model):
    """The seeds of ``model`` that have a folder under ``<work_dir>/<claim>/<scale>``, ascending."""
    root = os.path.join(work_dir, claim, scale)
    pattern = re.compile(rf"^{re.escape(model)}_seed(\d+)$")
    names = os.listdir(root) if os.path.isdir(root) else []
    return sorted(int(match.group(1)) for match in map(pattern.match, names) if match)


def training_argv(flags, directory, seed):
    """The full ``trainers/train.py`` argument list of a model: its recipe flags, the folder and the seed."""
    return [*flags, f"--model_dir={directory}", f"--seed={seed}"]


def training_state(directory, argv):
    """NEW (nothing there), RESUME (started with these flags, not finished) or FINISHED (``summary.json``
    written by a run with these flags); raises if the folder belongs to another run."""
    record = os.path.join(directory, TRAINING_RECORD)
    if not os.path.exists(record):
        if os.path.isdir(directory) and os.listdir(directory):
            raise TfrobustError(f"{directory} holds files but no {TRAINING_RECORD}: not a reproduction run; "
                                "choose another --work_dir")
        return NEW
    with open(record, encoding="utf-8") as handle:
        recorded = json.load(handle).get("argv")
    if recorded != list(argv):
        raise TfrobustError(f"{directory} was trained with other flags ({' '.join(recorded or [])}); "
                            "choose another --work_dir or remove that folder")
    return FINISHED if os.path.isfile(RunLayout(directory).summary) else RESUME


def record_training(directory, argv):
    os.makedirs(directory, exist_ok=True)
    write_json(os.path.join(directory, TRAINING_RECORD), {"argv": list(argv)})


def save_evaluation(directory, settings, result, masks):
    """Writes the evaluation (its ``settings`` included, so a changed setting is not reused) and the masks."""
    with atomic_path(os.path.join(directory, MASKS_FILE)) as temporary:
        with open(temporary, "wb") as handle:
            np.savez_compressed(handle, **masks)
    write_json(os.path.join(directory, EVALUATION_FILE), {"settings": settings, "result": result})


def load_evaluation(directory, settings, dtype=bool):
    """``(result, masks)`` of a finished evaluation with the same ``settings``, else None; the arrays as
    ``dtype`` (bool masks; float64 for a PSNR claim's per-image dB)."""
    path = os.path.join(directory, EVALUATION_FILE)
    masks_path = os.path.join(directory, MASKS_FILE)
    if not (os.path.isfile(path) and os.path.isfile(masks_path)):
        return None
    with open(path, encoding="utf-8") as handle:
        saved = json.load(handle)
    if saved.get("settings") != settings:
        return None
    with np.load(masks_path) as stored:
        masks = {key: stored[key].astype(dtype) for key in stored.files}
    return saved["result"], masks


def add_invocation(directory, seconds):
    """Appends one training invocation's wall time to the folder's record."""
    path = os.path.join(directory, TRAINING_RECORD)
    with open(path, encoding="utf-8") as handle:
        record = json.load(handle)
    record.setdefault("wall_seconds", []).append(round(float(seconds), 1))
    write_json(path, record)


def invocations(directory):
    """The wall times (s) of the training invocations that ran in ``directory`` (resumes are separate)."""
    path = os.path.join(directory, TRAINING_RECORD)
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return json.load(handle).get("wall_seconds", [])


#: The last attack of the standard suite (``model_evaluation.SUITE``): once every journal is finished and this one
#: too, what is left of a model's evaluation (sanity checks, analyses, adaptive recipe) is not journalled.
SUITE_LAST_ATTACK = SUITES["standard"][-1][0]


def status_lines(directory, settings=None):
    """What a model's folder holds, for ``--status``: not started, training (epochs logged), trained, its saved
    evaluation's headline, or the progress of its running evaluation (``evaluation.progress``; provisional).

    ``settings``: the evaluation settings of the command asking; a saved evaluation of other settings (which that
    command would redo) is named as such, followed by the progress of any evaluation under way."""
    if not os.path.isfile(os.path.join(directory, TRAINING_RECORD)):
        return ["not started"]
    layout = RunLayout(directory)
    if not os.path.isfile(layout.summary):
        epochs = 0
        if os.path.isfile(layout.history):
            with open(layout.history, encoding="utf-8") as handle:
                epochs = max(sum(1 for line in handle if line.strip()) - 1, 0)  # the header line aside
        return [f"training: {epochs} epoch(s) logged in {layout.history}"]
    evaluation = os.path.join(directory, EVALUATION_FILE)
    saved = None
    if os.path.isfile(evaluation):
        try:
            with open(evaluation, encoding="utf-8") as handle:
                saved = json.load(handle)
            result = saved["result"]
        except (OSError, ValueError, KeyError) as error:
            raise TfrobustError(f"{evaluation} is damaged ({type(error).__name__}); remove it to evaluate again") \
                from error
        if settings is None or saved.get("settings") == settings:
            return [f"evaluated: {_headline(result)}; flags: {', '.join(result.get('flagged', [])) or 'none'} "
                    f"({evaluation})"]
    trained = "trained" if saved is None else f"trained; its saved evaluation ({evaluation}) has other settings, " \
                                              "which this command evaluates again"
    state = os.path.join(directory, EVALUATION_STATE)
    entries = read_progress(state)
    if not entries:
        return [trained if saved is not None else "trained, not evaluated yet"]
    lines = [f"{trained}; evaluation running or interrupted (provisional: {PROVISIONAL}):", *format_progress(entries)]
    if all(entry["finished"] for entry in entries) and any(
            entry["journal"].rsplit("/", 1)[-1] == SUITE_LAST_ATTACK for entry in entries):
        lines.append("the standard suite is done; the sanity checks, analyses and any adaptive recipe follow it "
                     "unjournalled (an interrupted run does them again, then writes the evaluation)")
    return lines


def _headline(result):
    """A saved evaluation in a few figures: clean, AutoAttack and strongest accuracy, or a denoiser's PSNRs."""
    rows = {row["attack"]: row for row in result.get("rows", [])}
    if "clean" not in result:  # a PSNR claim's denoiser
        return ", ".join(f"{name} {row['psnr']:.2f} dB" for name, row in rows.items() if "psnr" in row)
    headline = f"clean {100 * result['clean']:.1f} %"
    if "autoattack" in rows:
        headline += f", AutoAttack {100 * rows['autoattack']['accuracy']:.1f} %"
    if "strongest" in result:
        headline += f", strongest {100 * result['strongest']:.1f} %"
    return headline
