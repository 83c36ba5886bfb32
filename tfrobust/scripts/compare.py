"""Attack exported artifacts themselves and compare them under one attack suite.

  python export/compare.py --artifacts=runs/export/cnn,runs/export/cnn_int8.tflite \
      --dataset=fashion_mnist --eps=0.1 --test_size=1000 --suite=quick --out_dir=runs/compare
  python export/compare.py --artifacts=runs/export/cnn --eps=0.05,0.1,0.2 \
      --suite=pgd,square --attack_option=pgd.steps=50 --out_dir=runs/compare_sweep

(or ``tfrobust-compare`` with the same flags, the console script installed with the package)

SavedModel and .keras artifacts are attacked white-box and get the gradient-masking sanity checks;
TFLite artifacts and served models (``http://host:8501/v1/models/cnn[/versions/2]``,
``grpc://host:8500/cnn``, see docs/SERVING.md) are attacked by prediction-only attacks on themselves
(Square, also inside AutoAttack) and by transfer from a differentiable surrogate for the gradient attacks
(``--transfer_from``, default the same model's SavedModel). Labels are ``<model>[@<version>]:<format>``
(e.g. ``cnn@2:saved_model``, ``cnn@2:served_grpc``) unless ``--labels`` names the artifacts. Writes
``report.md``, ``report.json``, ``report.html``, ``curves.png``, ``correct.npz`` (per-point masks),
``agreement.png``, ``leaderboard/``, ``tensorboard/`` and, with ``--save_adversarial``, ``adversarial/<model>/
<attack>.npz`` (x_adv, y_pred) into ``--out_dir`` (refused if another run's report
is there, unless ``--overwrite``) and prints the table.
Without ``--dataset``, the dataset is the one the SavedModels record in ``assets.extra/tfrobust.json``.
``--attack_option=<attack>.<parameter>=<value>`` (repeatable) sets an attack's parameters; several ``--eps``
run the suite at each ε: one full report per ε in ``eps_<ε>/`` and, on top, ``report.md`` with the
accuracy-vs-ε table (every attack), ``report.json`` and ``accuracy_vs_eps.png``.

The number to publish is the worst case of ``--suite=standard`` (AutoAttack, the RobustBench protocol).
The default "quick" suite (FGSM, PGD-20, Square-1000) takes minutes on a CPU but its worst case is an
upper bound, and the report says so next to it ("not AutoAttack — an upper bound").
``--verbose=0|1|2``: silent, a progress bar per attack (default), one line per attack. The same command plus
``--status`` prints how far a running or interrupted comparison has come and exits.
"""

import os

from absl import flags

from tfrobust import data, export
from tfrobust.errors import TfrobustError
from tfrobust.evaluation import check_out_dir, label_of
from tfrobust.evaluation.compare import choose_surrogate
from tfrobust.evaluation.distributed import EvaluationSpec
from tfrobust.scripts import run_program
from tfrobust.scripts.suite_flags import (customary_eps, define_suite_flags, evaluate_and_report, evaluation_state,
                                         parse_suite_flags, print_status)

FLAGS = flags.FLAGS


def define_flags():
    """Defines this program's flags (once, when it runs)."""
    flags.DEFINE_list("artifacts", None, "Exported artifacts: SavedModel dirs (or TF-Serving bases), "
                      ".keras or .tflite files, served models (http://…/v1/models/<name>, grpc://host:port/<name>).")
    flags.DEFINE_list("labels", None, "One label per artifact, in order (default: <model>[@<version>]:<format>).")
    flags.DEFINE_integer("serving_max_batch", 128, "Most images per request to a served model.", lower_bound=1)
    flags.DEFINE_float("serving_timeout", 30.0, "Seconds a request to a served model may take.", lower_bound=0.001)
    flags.DEFINE_string("dataset", None, f"Dataset whose test split is attacked: {', '.join(data.names())} "
                        "(default: the one the artifacts record in assets.extra/tfrobust.json).")
    flags.DEFINE_string("data_dir", None, "Dataset folder, if not the default location.")
    flags.DEFINE_integer("test_size", 1000, "First N test points.", lower_bound=1)
    define_suite_flags()
    flags.DEFINE_integer("sanity_size", 200, "Points used by the gradient-masking checks (0: skip them).",
                         lower_bound=0)
    flags.DEFINE_string("transfer_from", None, "Label of the surrogate for TFLite and served artifacts.")
    flags.DEFINE_integer("batch_size", 250, "Attack batch size.", lower_bound=1)
    flags.DEFINE_integer("seed", 0, "Attack seed.", lower_bound=0)
    flags.DEFINE_string("out_dir", "runs/compare", "Where report.md and report.json go.")
    flags.DEFINE_bool("overwrite", False, "Replace a report another run left in --out_dir.")
    flags.mark_flag_as_required("artifacts")


def recorded_dataset(artifacts):
    """The dataset the artifacts' descriptions (``assets.extra/tfrobust.json``, SavedModels) record; an
    error when none records one or they disagree (TFLite files and served models record none)."""
    recorded = {label: (artifact.description or {}).get("dataset") for label, artifact in artifacts.items()}
    datasets = sorted({name for name in recorded.values() if name})
    if not datasets:
        raise TfrobustError(f"--dataset is needed: no artifact records its dataset in assets.extra/tfrobust.json "
                            f"(datasets: {', '.join(data.names())})")
    if len(datasets) > 1:
        raise TfrobustError("--dataset is needed: the artifacts record different datasets ("
                            + ", ".join(f"{label}: {name}" for label, name in recorded.items() if name) + ")")
    return datasets[0]


def serving_options(path):
    """The client options of a served model's URL ({} for a file)."""
    served = path.startswith(("http://", "https://", "grpc://"))
    return {"max_batch": FLAGS.serving_max_batch, "timeout": FLAGS.serving_timeout} if served else {}


def main(argv):
    del argv
    overrides, eps_values = parse_suite_flags()  # fail on a bad suite, option or ε before loading anything
    if FLAGS.status:
        print_status(FLAGS.out_dir)
        return
    if FLAGS.labels is not None and len(FLAGS.labels) != len(FLAGS.artifacts):
        raise TfrobustError(f"--labels names {len(FLAGS.labels)} artifacts but --artifacts lists "
                            f"{len(FLAGS.artifacts)}")
    check_out_dir(FLAGS.out_dir, FLAGS.overwrite)  # and on another run's report before attacking
    artifacts = {}
    for i, path in enumerate(FLAGS.artifacts):
        artifact = export.load(path, **serving_options(path))
        label = FLAGS.labels[i] if FLAGS.labels else label_of(artifact)
        if label in artifacts:
            raise TfrobustError(f"two artifacts share the label {label}: {artifacts[label].path} and {path}")
        artifacts[label] = artifact
    dataset = FLAGS.dataset or recorded_dataset(artifacts)
    info = data.info(dataset)
    x, y = data.load(dataset, "test", size=FLAGS.test_size, data_dir=FLAGS.data_dir)
    for label, artifact in artifacts.items():
        if tuple(artifact.input_shape) != tuple(info.image_shape):
            raise TfrobustError(f"{label} takes images of shape {artifact.input_shape}, "
                                f"but {dataset} has {info.image_shape}")
    eps_values = eps_values or [customary_eps(info)]
    state = evaluation_state(FLAGS.out_dir, artifacts, x, y, eps_values=eps_values, overrides=overrides,
                             transfer_from=FLAGS.transfer_from, sanity_size=FLAGS.sanity_size,
                             batch_size=FLAGS.batch_size, seed=FLAGS.seed)
    spec = EvaluationSpec(
        sources={label: ("artifact", path if serving_options(path) else os.path.abspath(path), serving_options(path))
                 for label, path in zip(artifacts, FLAGS.artifacts)},
        suite=FLAGS.suite, norm=FLAGS.norm, seed=FLAGS.seed, overrides=overrides,
        surrogates={label: choose_surrogate(label, artifacts, FLAGS.transfer_from)
                    for label, artifact in artifacts.items() if not artifact.differentiable})
    evaluate_and_report(artifacts, x, y, spec=spec, state=state, eps_values=eps_values, overrides=overrides,
                        dataset=dataset, out_dir=FLAGS.out_dir, transfer_from=FLAGS.transfer_from,
                        title=f"Robustness of exported artifacts on {dataset}")


def run():
    """The ``tfrobust-compare`` console script."""
    run_program(define_flags, main, __doc__)
