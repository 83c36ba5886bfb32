"""The threat-model and attack-suite flags ``tfrobust-evaluate`` and ``tfrobust-compare`` share (same names,
same meaning, same checks): ``--norm``, ``--eps`` (one ε or a sweep), ``--suite``, ``--attack_option``,
``--verbose``, ``--save_adversarial``, ``--restart``, ``--status`` and the Ray flags (``--distribute``,
``--ray_address``, ``--workers``, ``--threads_per_worker``, ``--gpus_per_worker``)."""

import contextlib
import os

from absl import flags

from tfrobust import cli
from tfrobust.attacks import registry
from tfrobust.errors import TfrobustError
from tfrobust.evaluation import SUITES
from tfrobust.evaluation import markdown
from tfrobust.evaluation.attack_options import attack_overrides
from tfrobust.evaluation.eps_sweep import evaluate_eps_sweep, html_paths, is_sweep, sweep_markdown, write_sweep_report
from tfrobust.evaluation.progress import PROVISIONAL, format_progress, read_progress
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
    flags.DEFINE_bool("status", False, "Print how far the evaluation saved in <out_dir>/state has come (per attack "
                      "the batches done and the points still standing, provisional; per AutoAttack component its "
                      "chunks) and exit: reads the state, attacks nothing, safe beside the running command.")
    flags.DEFINE_enum("distribute", "none", ["none", "ray"], "Where the attacks' batches run: here, or sharded "
                      "over Ray workers (same seeds, exactly the same numbers; needs tfrobust[distributed]).")
    flags.DEFINE_string("ray_address", None, "With --distribute=ray: the cluster to join ('auto' or host:port); "
                        "default: a local Ray instance on 127.0.0.1, stopped at the end.")
    flags.DEFINE_integer("workers", 2, "With --distribute=ray: workers, each loading its own copy of the models.",
                         lower_bound=1)
    flags.DEFINE_integer("threads_per_worker", 1, "With --distribute=ray: TensorFlow threads (and Ray CPUs) per "
                         "worker.", lower_bound=1)
    flags.DEFINE_integer("gpus_per_worker", 0, "With --distribute=ray: GPUs per worker.", lower_bound=0)


def print_status(out_dir):
    """``--status``: the progress of the evaluation saved in ``<out_dir>/state`` (``evaluation.progress``)."""
    folder = os.path.join(out_dir, STATE_DIR)
    entries = read_progress(folder)
    if not entries:
        print(f"no saved evaluation in {folder}: none has started there, or it finished (its report is in {out_dir})")
        return
    print(f"evaluation saved in {folder} (standing counts of unfinished attacks are provisional: {PROVISIONAL})")
    for line in format_progress(entries):
        print(line)


def parse_suite_flags():
    """Checks the suite flags before anything is loaded; returns (suite overrides, ε values or None for the
    dataset's customary one)."""
    attacks = list(dict.fromkeys(name for _, name, _ in suite_entries(FLAGS.suite)))
    overrides = attack_overrides(cli.parse_options(FLAGS.attack_option, "attack_option"), attacks)
    eps_values = cli.parse_numbers(FLAGS.eps, "eps", lower=0.0) or None
    if FLAGS.distribute == "none":
        ray_only = [name for name in ("ray_address", "workers", "threads_per_worker", "gpus_per_worker")
                    if FLAGS[name].present]
        if ray_only:
            raise TfrobustError(f"--{', --'.join(ray_only)} only apply with --distribute=ray")
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


def executor_for(spec):
    """With ``--distribute=ray`` a ``RayExecutor`` for ``spec`` (a context manager that stops its workers);
    otherwise a null context giving None (the attacks run in this process)."""
    if FLAGS.distribute == "none":
        return contextlib.nullcontext()
    from tfrobust.evaluation.distributed import RayExecutor  # pylint: disable=import-outside-toplevel

    return RayExecutor(spec, workers=FLAGS.workers, address=FLAGS.ray_address, threads=FLAGS.threads_per_worker,
                       gpus=FLAGS.gpus_per_worker)


def evaluate_and_report(models, x, y, *, spec, state, eps_values, overrides, dataset, out_dir, title, **options):
    """The shared end of ``tfrobust-evaluate`` and ``tfrobust-compare``: runs the suite flags' evaluation of
    ``models`` (on Ray workers with ``--distribute=ray``), writes the report into ``out_dir``, removes the saved
    state and prints the table, the workers' jobs and the report's paths. ``options`` go to ``evaluate``."""
    with executor_for(spec) as executor:
        report = evaluate_eps_sweep(models, x, y, eps_values=eps_values, state=state, norm=FLAGS.norm,
                                    suite=FLAGS.suite, suite_overrides=overrides, sanity_size=FLAGS.sanity_size,
                                    batch_size=FLAGS.batch_size, seed=FLAGS.seed, verbose=FLAGS.verbose,
                                    save_adversarial=FLAGS.save_adversarial, title=title, executor=executor,
                                    **options)
        if executor is not None:
            report["distributed"] = executor.stats()
    report["dataset"] = dataset
    for section in report.get("sections", []):
        section["dataset"] = dataset
    path = write_sweep_report(report, out_dir, images=x, overwrite=FLAGS.overwrite)
    state.clear()  # the report holds the results now
    print(sweep_markdown(report) if is_sweep(report) else markdown(report))
    if "distributed" in report:
        stats = report["distributed"]
        print(f"ray: {stats['workers']} workers, jobs per worker {stats['jobs']}, restarts {stats['restarts']}")
    print(f"report: {path}")
    for html in html_paths(report, out_dir):
        print(f"html: {html}")
