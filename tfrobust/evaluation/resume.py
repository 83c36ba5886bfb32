"""The saved state of a long evaluation, so a killed run continues where it stopped.

An evaluation given ``EvaluationState(<out_dir>/state, identity)`` records as it goes (``core.journal``):
per ε section, per model, per attack, the plan (clean predictions, points to attack) and every finished
batch — for AutoAttack every finished chunk of every component — with the per-point results, the
adversarial examples when they are kept, counts, seconds and target queries. Re-running the same
command replays the records and attacks only what is left; since batch b of an attack always draws
the attack's random stream b (``Attack.set_stream``), the resumed run ends with exactly the numbers of
an uninterrupted one. What is not recorded is redone: the gradient-masking sanity checks (seeded, so
they repeat exactly) and a batch that was running when the process died. Counts and target queries add
the recorded parts to the new ones, so they equal an uninterrupted run's; a row's ``seconds`` do too,
except that the batch running at the kill counts from the restart (AutoAttack is one such batch: its
per-component seconds, kept per chunk, include the chunks finished before the kill).

``command.json`` holds the command's identity (``command_identity``: threat model, ε values, suite and
its options, seed, batch size, the evaluated points' hash, every model's fingerprint). A state left by a
different command is refused with an error naming what changed, unless ``restart`` discards it. The
scripts remove the state once the report is written.
"""

import hashlib
import json
import os

import keras
import numpy as np

from tfrobust.core.files import plain, write_json
from tfrobust.core.journal import Journal
from tfrobust.errors import TfrobustError
from tfrobust.export import Artifact

STATE_DIR = "state"


def array_digest(*arrays):
    """16 hex digits of SHA-256 over the arrays' dtypes, shapes and bytes."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def model_fingerprint(model):
    """What identifies a model's weights: a SavedModel's fingerprint, a model file's SHA-256, a served
    model's URL and version, a live Keras model's weights' digest; else its type name."""
    if isinstance(model, Artifact):
        if model.fingerprint:
            return f"saved_model:{model.fingerprint}"
        if os.path.isfile(model.path):
            digest = hashlib.sha256()
            with open(model.path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            return f"{model.format}:{digest.hexdigest()[:16]}"
        return f"{model.format}:{model.path}@{model.version}"
    if isinstance(model, keras.Model):
        return f"keras:{array_digest(*[np.asarray(w) for w in model.weights])}"
    return f"callable:{type(model).__name__}"


def command_identity(models, x, y, **settings):
    """The identity a saved state must match: ``settings`` (threat model, ε values, suite, options, seed…,
    JSON-ready), the points (``array_digest`` of x and y) and ``{label: model_fingerprint}``."""
    return plain({**settings, "points": {"count": int(len(y)), "digest": array_digest(np.asarray(x, np.float32),
                                                                                      np.asarray(y, np.int64))},
                  "models": {label: model_fingerprint(model) for label, model in models.items()}}, arrays="list")


class EvaluationState:
    """``EvaluationState(folder, identity, restart=False)``: the journals of one evaluation command.

    Args:
      folder: where the state lives (``<out_dir>/state``).
      identity: ``command_identity(...)`` of this command.
      restart: discard a state left by any earlier command instead of resuming or refusing it.

    Raises:
      TfrobustError: the folder holds the state of a different command (and not ``restart``); the error
        names the settings that differ.
    """

    def __init__(self, folder, identity, *, restart=False):
        self.folder = os.fspath(folder)
        self.identity = json.loads(json.dumps(identity))  # as it reads back from command.json
        path = os.path.join(self.folder, "command.json")
        if restart:
            Journal(self.folder).clear()
        self.resumed = os.path.isfile(path)
        if self.resumed:
            try:
                with open(path, encoding="utf-8") as handle:
                    saved = json.load(handle)
            except (OSError, ValueError) as error:
                raise TfrobustError(f"{path} is damaged ({type(error).__name__}); pass --restart to start "
                                    "over") from error
            changed = sorted(key for key in set(saved) | set(self.identity) if saved.get(key) != self.identity.get(key))
            if changed:
                raise TfrobustError(f"{self.folder} holds the state of a different evaluation (changed: "
                                    f"{', '.join(changed)}); rerun that command to finish it, or pass --restart "
                                    "to discard it")
        else:
            write_json(path, self.identity)

    def journal(self, *parts):
        """The journal under ``folder/part/…`` (e.g. ``journal("eps_0.1")``)."""
        journal = Journal(self.folder)
        for part in parts:
            journal = journal.child(part)
        return journal

    def clear(self):
        """Removes the state (after the report is written)."""
        Journal(self.folder).clear()
