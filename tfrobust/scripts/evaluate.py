"""Evaluate a trained model (a training run folder or a .keras file) under an attack suite.

  python trainers/evaluate.py --source=runs/cnn --suite=standard --eps=0.1 --test_size=1000 \
      --out_dir=runs/cnn/eval

(or ``tfrobust-evaluate`` with the same flags, the console script installed with the package)

White-box attacks use the live model's gradients; the gradient-masking sanity checks run on the first
``--sanity_size`` points. Writes report.md, report.json, report.html, curves.png, leaderboard/ and
tensorboard/, correct.npz (per-point correct masks, keys ``<model>/<attack>``) and, with --save_adversarial,
adversarial/<model>/<attack>.npz (x_adv, y_pred) (refused if another run's report is in --out_dir, unless
--overwrite). ``--verbose=0|1|2``: silent, a progress bar per attack (default), one line per attack. To attack exported
artifacts (SavedModel, TFLite) use export/compare.py.
``--status`` (with the same --source/--out_dir) prints how far a running or interrupted evaluation has come.
``--attack_option=<attack>.<parameter>=<value>`` (repeatable, e.g. ``pgd.steps=50``) sets an attack's
parameters; ``--eps=0.05,0.1,0.2`` runs the suite at each ε (one full report per ε in ``eps_<ε>/``, and on
top the accuracy-vs-ε table of every attack and its plot).
"""

import os

from absl import flags

from tfrobust import data
from tfrobust.evaluation import check_out_dir
from tfrobust.evaluation.distributed import EvaluationSpec
from tfrobust.export.source import load_source_model
from tfrobust.scripts import run_program
from tfrobust.scripts.suite_flags import (customary_eps, define_suite_flags, evaluate_and_report, evaluation_state,
                                         parse_suite_flags, print_status)

FLAGS = flags.FLAGS


def define_flags():
    """Defines this program's flags (once, when it runs)."""
    flags.DEFINE_string("source", None, "Training run folder or .keras file.")
    flags.DEFINE_string("dataset", None, f"Dataset: {', '.join(data.names())} (default: the run's).")
    flags.DEFINE_string("data_dir", None, "Dataset folder, if not the default location.")
    flags.DEFINE_integer("test_size", 1000, "First N test points.", lower_bound=1)
    define_suite_flags()
    flags.DEFINE_integer("sanity_size", 200, "Points for the gradient-masking checks (0: skip).", lower_bound=0)
    flags.DEFINE_integer("batch_size", 250, "Attack batch size (AutoAttack's chunk size too: the unit a "
                         "resumed evaluation keeps).", lower_bound=1)
    flags.DEFINE_integer("seed", 0, "Attack seed.", lower_bound=0)
    flags.DEFINE_string("out_dir", None, "Where the report goes (default: <source>/eval or ./eval).")
    flags.DEFINE_bool("overwrite", False, "Replace a report another run left in --out_dir.")
    flags.mark_flag_as_required("source")


def main(argv):
    del argv
    overrides, eps_values = parse_suite_flags()  # fail on a bad suite, option or ε before loading anything
    default_out = os.path.join(FLAGS.source, "eval") if os.path.isdir(FLAGS.source) else "eval"
    out_dir = FLAGS.out_dir or default_out
    if FLAGS.status:
        print_status(out_dir)
        return
    check_out_dir(out_dir, FLAGS.overwrite)  # and on another run's report before attacking
    model, summary = load_source_model(FLAGS.source)
    dataset = FLAGS.dataset or (summary or {}).get("dataset") or "fashion_mnist"
    info = data.info(dataset)
    x, y = data.load(dataset, "test", size=FLAGS.test_size, data_dir=FLAGS.data_dir)
    name = os.path.basename(os.path.normpath(FLAGS.source))
    eps_values = eps_values or [customary_eps(info)]
    state = evaluation_state(out_dir, {name: model}, x, y, eps_values=eps_values, overrides=overrides,
                             sanity_size=FLAGS.sanity_size, batch_size=FLAGS.batch_size, seed=FLAGS.seed)
    spec = EvaluationSpec(sources={name: ("run", os.path.abspath(FLAGS.source), {})}, suite=FLAGS.suite,
                          norm=FLAGS.norm, seed=FLAGS.seed, overrides=overrides)
    evaluate_and_report({name: model}, x, y, spec=spec, state=state, eps_values=eps_values, overrides=overrides,
                        dataset=dataset, out_dir=out_dir, title=f"Robustness of {name} on {dataset}")


def run():
    """The ``tfrobust-evaluate`` console script."""
    run_program(define_flags, main, __doc__)
