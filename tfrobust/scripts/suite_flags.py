"""The threat-model and attack-suite flags ``tfrobust-evaluate`` and ``tfrobust-compare`` share (same names,
same meaning, same checks): ``--norm``, ``--eps`` (one ε or a sweep), ``--suite``, ``--attack_option``,
``--verbose``, ``--save_adversarial`` and ``--restart``."""

import os

from absl import flags

from tfrobust import cli
from tfrobust.attacks import registry
from tfrobust.evaluation import SUITES
from tfrobust.evaluation.attack_options import attack_overrides
from tfrobust.evaluation.resume import STATE_DIR, EvaluationState, command_identity
from tfrobust.evaluation.suite import suite_entries

FLAGS = flags.FLAGS
NORMS = ["linf", "l2"]


def define_suite_flags():
    flags.DEFINE_enum("norm", "linf", NORMS, "Threat model norm.")
    flags.DEFINE_list("eps", None, "Budget ε on [0,1] images; several (--eps=0.05,0.1,0.2) run the suite at each "
                      "and add an accuracy-vs-ε table and plot (default: the dataset's customary ε).")
    flags.DEFINE_string("suite", "quick", f"Attack suite: {', '.join(SUITES)}, or a comma-separated list of attacks: "
                        f"{', '.join(registry.names())}. Publish 'standard' (AutoAttack); 'quick' gives an upper "
                        "bound.")
    flags.DEFINE_multi_string("attack_option", [], "Attack parameter <attack>.<parameter>=<value>, repeatable "
                              "(e.g. --attack_option=pgd.steps=50); the attack must be in the suite.")
    flags.DEFINE_integer("verbose", 1, "Progress: 0 silent, 1 a progress bar per attack (batches, points still "
                         "standing, elapsed/ETA), 2 one line per attack.", lower_bound=0, upper_bound=2)
    flags.DEFINE_bool("save_adversarial", False, "Also write every attack's adversarial examples and predicted "
                      "labels to <out_dir>/adversarial/<model>/<attack>.npz (x_adv, y_pred).")
    flags.DEFINE_bool("restart", False, "Discard the saved state of an unfinished evaluation in <out_dir>/state "
                      "instead of resuming it (a run killed part-way resumes when the same command is run again; "
                      "a different command is refused without --restart).")


def parse_suite_flags():
    """Checks the suite flags before anything is loaded; returns (suite overrides, ε values or None for the
    dataset's customary one)."""
    attacks = list(dict.fromkeys(name for _, name, _ in suite_entries(FLAGS.suite)))
    overrides = attack_overrides(cli.parse_options(FLAGS.attack_option, "attack_option"), attacks)
    eps_values = cli.parse_numbers(FLAGS.eps, "eps", lower=0.0) or None
    return overrides, eps_values


def customary_eps(info):
    """The dataset's customary ε for ``--norm``."""
    return info.eps_linf if FLAGS.norm == "linf" else info.eps_l2


def evaluation_state(out_dir, models, x, y, *, eps_values, overrides, **settings):
    """The resumable state of this command in ``<out_dir>/state``: its identity is the suite flags, the
    evaluated points, the models' fingerprints and ``settings`` (the script's other flags that change
    numbers)."""
    identity = command_identity(models, x, y, norm=FLAGS.norm, eps=eps_values, suite=FLAGS.suite,
                                attack_options=overrides, save_adversarial=FLAGS.save_adversarial, **settings)
    return EvaluationState(os.path.join(out_dir, STATE_DIR), identity, restart=FLAGS.restart)
