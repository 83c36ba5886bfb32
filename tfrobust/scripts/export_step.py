"""The training programs' last step: export the trained run as the flags ask, record it, list the files.

Shared by ``train.py`` and ``train_denoiser.py``, which both define ``--model_dir``, ``--export_dir``,
``--export_name`` and ``--export_formats``.
"""

import os

from absl import flags

from tfrobust.export import export_all
from tfrobust.training import record_exports

FLAGS = flags.FLAGS


def export_run(run, description=None):
    """Exports ``run`` (a ``TrainedRun``) under ``--export_dir`` when given; returns its summary with the
    exports recorded (the summary unchanged without ``--export_dir``)."""
    if not FLAGS.export_dir:
        return run.summary
    name = FLAGS.export_name or os.path.basename(os.path.normpath(FLAGS.model_dir))
    return record_exports(run, export_all(run.model, FLAGS.export_dir, name, FLAGS.export_formats,
                                          representative_images=run.representative_images,
                                          description=description))


def print_exports(summary):
    for fmt, path in summary.get("exports", {}).items():
        print(f"exported {fmt}: {path}")
