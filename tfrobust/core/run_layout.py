"""The layout of a training run folder, defined once: what ``tfrobust.training`` writes and what
``tfrobust.export.source`` (and the scripts) read back.

```
<model_dir>/summary.json                  the run summary (dataset, model, options, accuracies, exports)
<model_dir>/history.csv                   one row per epoch, across resumes
<model_dir>/backup/                       BackupAndRestore state (removed when training completes)
<model_dir>/checkpoints/last.weights.h5   the served model's weights after the last good epoch
<model_dir>/logs/                         TensorBoard
<model_dir>/workers/<type>_<index>/       the same layout for non-chief multi-worker tasks
```
"""

import dataclasses
import os

SUMMARY_FILE = "summary.json"
HISTORY_FILE = "history.csv"
BACKUP_DIR = "backup"
CHECKPOINT_DIR = "checkpoints"
LAST_WEIGHTS_FILE = "last.weights.h5"
LOG_DIR = "logs"
WORKERS_DIR = "workers"


@dataclasses.dataclass(frozen=True)
class RunLayout:
    """The paths of one run folder ``root``."""

    root: str

    @property
    def summary(self):
        return os.path.join(self.root, SUMMARY_FILE)

    @property
    def history(self):
        return os.path.join(self.root, HISTORY_FILE)

    @property
    def backup(self):
        return os.path.join(self.root, BACKUP_DIR)

    @property
    def last_weights(self):
        return os.path.join(self.root, CHECKPOINT_DIR, LAST_WEIGHTS_FILE)

    @property
    def logs(self):
        return os.path.join(self.root, LOG_DIR)

    def worker(self, task_type, task_index):
        """The layout of a non-chief worker's own folder."""
        return RunLayout(os.path.join(self.root, WORKERS_DIR, f"{task_type}_{task_index}"))
