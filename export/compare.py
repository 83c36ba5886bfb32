"""Attack exported artifacts themselves and compare them: clean, FGSM and PGD accuracy per artifact.

  python export/compare.py --artifacts=runs/export/cnn,runs/export/cnn_int8.tflite \
      --dataset=fashion_mnist --eps=0.1 --test_size=1000 --out_dir=runs/compare

SavedModel and .keras artifacts are attacked white-box; TFLite artifacts by transfer from a
differentiable surrogate (``--transfer_from``, default the same model's SavedModel). Writes
``report.md`` and ``report.json`` into ``--out_dir`` and prints the table.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from tfrobust import cli, data, export  # noqa: E402
from tfrobust.errors import TfrobustError  # noqa: E402
from tfrobust.evaluation import artifact_label, compare_artifacts, markdown_table, write_report  # noqa: E402

flags.DEFINE_list("artifacts", None, "Exported artifacts: SavedModel dirs (or TF-Serving bases), "
                  ".keras or .tflite files.")
flags.DEFINE_string("dataset", "fashion_mnist", "Dataset whose test split is attacked.")
flags.DEFINE_string("data_dir", None, "Dataset folder, if not the default location.")
flags.DEFINE_integer("test_size", 1000, "First N test points.", lower_bound=1)
flags.DEFINE_enum("norm", "linf", ["linf", "l2"], "Threat model norm.")
flags.DEFINE_float("eps", None, "Budget ε on [0,1] images (default: the dataset's customary ε).",
                   lower_bound=0.0)
flags.DEFINE_integer("pgd_steps", 20, "PGD iterations.", lower_bound=1)
flags.DEFINE_float("pgd_step_size", None, "PGD step (default 2.5·ε/steps).", lower_bound=0.0)
flags.DEFINE_integer("pgd_restarts", 1, "PGD random restarts.", lower_bound=1)
flags.DEFINE_string("transfer_from", None, "Label (model:format) of the surrogate for TFLite artifacts.")
flags.DEFINE_integer("batch_size", 250, "Attack batch size.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Attack seed.", lower_bound=0)
flags.DEFINE_string("out_dir", "runs/compare", "Where report.md and report.json go.")
flags.mark_flag_as_required("artifacts")

FLAGS = flags.FLAGS


def main(argv):
    del argv
    artifacts = {}
    for path in FLAGS.artifacts:
        artifact = export.load(path)
        label = artifact_label(artifact.path, artifact.format)
        if label in artifacts:
            raise TfrobustError(f"two artifacts share the label {label}: {artifacts[label].path} and {path}")
        artifacts[label] = artifact
    info = data.info(FLAGS.dataset)
    eps = info.eps_linf if FLAGS.eps is None and FLAGS.norm == "linf" else FLAGS.eps
    eps = info.eps_l2 if eps is None else eps
    x, y = data.load(FLAGS.dataset, "test", size=FLAGS.test_size, data_dir=FLAGS.data_dir)
    for label, artifact in artifacts.items():
        if tuple(artifact.input_shape) != tuple(info.image_shape):
            raise TfrobustError(f"{label} takes images of shape {artifact.input_shape}, "
                                f"but {FLAGS.dataset} has {info.image_shape}")
    report = compare_artifacts(artifacts, x, y, eps=eps, norm=FLAGS.norm, pgd_steps=FLAGS.pgd_steps,
                               pgd_step_size=FLAGS.pgd_step_size, pgd_restarts=FLAGS.pgd_restarts,
                               transfer_from=FLAGS.transfer_from, batch_size=FLAGS.batch_size, seed=FLAGS.seed)
    report["dataset"] = FLAGS.dataset
    path = write_report(report, FLAGS.out_dir, title=f"Robustness of exported artifacts on {FLAGS.dataset}")
    print(markdown_table(report))
    print(f"\nreport: {path}")


if __name__ == "__main__":
    cli.run(main)
