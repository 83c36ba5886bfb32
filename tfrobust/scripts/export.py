"""Export a trained model as a TF-Serving SavedModel, ``.keras`` and TFLite (fp32 / dynamic / int8).

  python export/export.py --source=runs/cnn --export_dir=runs/export --export_name=cnn

(or ``tfrobust-export`` with the same flags, the console script installed with the package)

``--source`` is a training run folder (trainers/train.py's --model_dir) or a ``.keras`` file. int8
calibration uses the first images of the training split of ``--dataset`` (default: the run's dataset).
"""

import os

from absl import flags

from tfrobust import data
from tfrobust.errors import TfrobustError
from tfrobust.export import EXPORT_FORMATS, export_all
from tfrobust.export.source import load_source_model
from tfrobust.scripts import run_program

FLAGS = flags.FLAGS


def define_flags():
    """Defines this program's flags (once, when it runs)."""
    flags.DEFINE_string("source", None, "Training run folder or .keras file.")
    flags.DEFINE_string("export_dir", None, "Base folder of the exports.")
    flags.DEFINE_string("export_name", None, "Model name (default: the source's basename).")
    flags.DEFINE_integer("version", None, "SavedModel version (default: next free).", lower_bound=1)
    flags.DEFINE_list("export_formats", ["saved_model", "keras", "tflite_fp32", "tflite_dynamic", "tflite_int8"],
                      f"Formats: {', '.join(EXPORT_FORMATS)} (SavedModel is always written).")
    # The names tfrobust-train uses for the same things; the old short names stay as aliases.
    flags.DEFINE_alias("name", "export_name")
    flags.DEFINE_alias("formats", "export_formats")
    flags.DEFINE_string("dataset", None, f"Dataset ({', '.join(data.names())}) for int8 calibration, warm-up "
                        "requests and the export's description (default: the run's).")
    flags.DEFINE_string("data_dir", None, "Dataset folder, if not the default location.")
    flags.DEFINE_integer("calibration_size", 200, "Training images used for int8 calibration.", lower_bound=1)
    flags.mark_flags_as_required(["source", "export_dir"])


def main(argv):
    del argv
    model, summary = load_source_model(FLAGS.source)
    name = FLAGS.export_name or os.path.splitext(os.path.basename(os.path.normpath(FLAGS.source)))[0]
    dataset = FLAGS.dataset or (summary or {}).get("dataset")
    representative, description = None, {"method": (summary or {}).get("method")}
    if dataset is not None:  # calibration images for int8 and the SavedModel's warm-up requests
        representative, _ = data.load(dataset, "train", size=FLAGS.calibration_size, data_dir=FLAGS.data_dir)
        description.update(dataset=dataset, class_names=data.info(dataset).class_names)
    elif any(fmt == "tflite_int8" for fmt in FLAGS.export_formats):
        raise TfrobustError("int8 export of a .keras file needs --dataset for calibration images")
    paths = export_all(model, FLAGS.export_dir, name, FLAGS.export_formats, representative_images=representative,
                       version=FLAGS.version, description=description)
    for fmt, path in paths.items():
        print(f"{fmt}: {path}")


def run():
    """The ``tfrobust-export`` console script."""
    run_program(define_flags, main, __doc__)
