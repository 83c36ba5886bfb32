"""Train an image classifier with Keras ``fit`` and export it.

Example (Fashion-MNIST, small CNN, 2 epochs, then SavedModel + TFLite):

  python trainers/train.py --dataset=fashion_mnist --model=small_cnn --epochs=2 \
      --model_dir=runs/cnn --export_dir=runs/export

Re-running the same command after an interruption resumes from the last completed epoch
(BackupAndRestore in ``<model_dir>/backup``). ``--flagfile=trainers/configs/X.flags`` replays a
recorded experiment.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from tfrobust import cli  # noqa: E402
from tfrobust.training import OPTIMIZERS, PRECISIONS, SCHEDULES  # noqa: E402
from tfrobust.training.standard import train_and_export  # noqa: E402

flags.DEFINE_string("dataset", "fashion_mnist", "Dataset name (see tfrobust.data.names()).")
flags.DEFINE_string("data_dir", None, "Folder with the dataset's files in its own on-disk format.")
flags.DEFINE_integer("train_size", None, "Use the first N training images.", lower_bound=1)
flags.DEFINE_integer("test_size", None, "Use the first N test images.", lower_bound=1)
flags.DEFINE_string("model", "small_cnn", "Model name (see tfrobust.models.names()).")
flags.DEFINE_multi_string("model_option", [], "Builder option key=value, repeatable "
                          "(e.g. --model_option=strides=1-1-2-2).")
flags.DEFINE_integer("epochs", 10, "Training epochs.", lower_bound=1)
flags.DEFINE_integer("batch_size", 128, "Global batch size.", lower_bound=1)
flags.DEFINE_enum("optimizer", "sgd", OPTIMIZERS, "Optimizer.")
flags.DEFINE_float("learning_rate", 0.05, "Initial learning rate.", lower_bound=0.0)
flags.DEFINE_float("momentum", 0.9, "SGD momentum.", lower_bound=0.0, upper_bound=0.999)
flags.DEFINE_float("weight_decay", 5e-4, "Decoupled weight decay.", lower_bound=0.0)
flags.DEFINE_enum("schedule", "cosine", SCHEDULES, "Learning-rate schedule.")
flags.DEFINE_list("lr_boundaries", [], "Epochs where 'piecewise' multiplies the rate by --lr_factor.")
flags.DEFINE_float("lr_factor", 0.1, "Piecewise decay factor.", lower_bound=0.0)
flags.DEFINE_enum("augment", "none", ["none", "crop", "flip_crop"], "Training augmentation.")
flags.DEFINE_enum("mixed_precision", "none", list(PRECISIONS), "Compute precision policy.")
flags.DEFINE_integer("seed", 0, "Seed for weights, shuffling and augmentation.", lower_bound=0)
flags.DEFINE_string("model_dir", None, "Run folder: checkpoints, backup for resume, logs, summary.")
flags.DEFINE_string("export_dir", None, "If set, export here when training is done.")
flags.DEFINE_string("export_name", None, "Exported model name (default: the model_dir's basename).")
flags.DEFINE_list("export_formats", ["saved_model", "keras", "tflite_fp32", "tflite_int8"],
                  "Formats to export (SavedModel is always written).")
flags.mark_flag_as_required("model_dir")
flags.register_validator("learning_rate", lambda value: value > 0, "--learning_rate must be > 0")
flags.register_validator("lr_boundaries", lambda value: all(v.strip().isdigit() for v in value),
                         "--lr_boundaries must be a comma-separated list of epoch numbers")

FLAGS = flags.FLAGS


def main(argv):
    del argv
    summary = train_and_export(
        dataset=FLAGS.dataset, data_dir=FLAGS.data_dir, train_size=FLAGS.train_size,
        test_size=FLAGS.test_size, model=FLAGS.model,
        model_options=cli.parse_options(FLAGS.model_option, "model_option"), epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size, optimizer=FLAGS.optimizer, learning_rate=FLAGS.learning_rate,
        momentum=FLAGS.momentum, weight_decay=FLAGS.weight_decay, schedule=FLAGS.schedule,
        lr_boundaries=[int(b) for b in FLAGS.lr_boundaries], lr_factor=FLAGS.lr_factor,
        augment=None if FLAGS.augment == "none" else FLAGS.augment,
        mixed_precision=FLAGS.mixed_precision, seed=FLAGS.seed, model_dir=FLAGS.model_dir,
        export_dir=FLAGS.export_dir, export_name=FLAGS.export_name, export_formats=FLAGS.export_formats)
    print(f"test accuracy {100 * summary['test_accuracy']:.2f}% after {summary['epochs']} epochs "
          f"({summary['train_seconds']:.0f} s); summary: {summary['summary_path']}")
    for fmt, path in summary.get("exports", {}).items():
        print(f"exported {fmt}: {path}")


if __name__ == "__main__":
    cli.run(main)
