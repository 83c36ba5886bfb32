"""Where a model to export comes from: a ``.keras`` file, or a training run folder (``summary.json`` +
``checkpoints/last.weights.h5`` written by ``tfrobust.training``; layout: ``tfrobust.core.run_layout``)."""

import json
import os

from tfrobust.core.messages import first_line
from tfrobust.core.run_layout import RunLayout
from tfrobust.errors import ArtifactError


def load_source_model(source):
    """Returns ``(model, run_summary_or_None)`` for a ``.keras`` file or a run folder.

    A run folder is rebuilt from its recorded dataset, model name and options, then its last checkpoint
    is loaded, so the exported model is exactly what training left behind.
    """
    import keras

    from tfrobust import data, models

    if not os.path.exists(source):
        raise ArtifactError(f"no model at {source}")
    if os.path.isfile(source):
        if not source.endswith(".keras"):
            raise ArtifactError(f"{source}: expected a .keras file or a training run folder")
        try:
            return keras.saving.load_model(source), None
        except Exception as error:  # Keras raises many types for a bad file; re-raised as one
            raise ArtifactError(f"cannot load {source}: {first_line(error)}") from error
    layout = RunLayout(source)
    summary_path, weights_path = layout.summary, layout.last_weights
    for path in (summary_path, weights_path):
        if not os.path.isfile(path):
            raise ArtifactError(f"{source} is not a finished training run: {path} is missing")
    try:
        with open(summary_path, encoding="utf-8") as handle:
            summary = json.load(handle)
        info = data.info(summary["dataset"])
        model = models.build(summary["model"], info.image_shape, info.num_classes, **summary["model_options"])
        model.load_weights(weights_path)
    except (ValueError, KeyError, OSError) as error:
        raise ArtifactError(f"cannot restore the run in {source}: {first_line(error)}") from error
    return model, summary
