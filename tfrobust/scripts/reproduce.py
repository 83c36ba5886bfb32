"""Re-run a seed paper's claim: train every model of it, evaluate each with the standard AutoAttack suite, the
sanity checks and the defense's adaptive recipe, and judge the claim with the verdict rule of
docs/results/reproductions.md.

  python trainers/reproduce.py --claim=cifs --scale=cpu

(or ``tfrobust-reproduce`` with the same flags, from a repository checkout: the recipes are the flagfiles of
``trainers/configs/``). Writes ``<out_dir>/<claim>.md`` and ``<claim>.json`` (the paper's numbers beside ours,
paired comparisons with McNemar's test, sanity flags, seeds, wall times and the exact commands) after every
model, and updates the claim's row in ``--summary``.

A PSNR claim (denoisers, e.g. ``denoising_hat``) trains its models with ``trainers/train_denoiser.py`` and
evaluates each by PSNR under Gaussian noise, the paper's ObsAtk and the strongest ObsAtk run
(``reproduction.denoiser_evaluation``), comparing per-image PSNR on the same noisy images.

Each model is trained by its claim's program in ``<work_dir>/<claim>/<scale>/<model>_seed<N>``; re-running the
same command continues: an interrupted training resumes from its last epoch, a finished model is not retrained
and a finished evaluation (same points, ε and seed) is not redone. ``--seeds=auto`` runs seed 0 and, for every
pair whose AutoAttack difference lies within 3 standard errors of zero, seed 1 (the rule); ``--seeds=0,1``
runs exactly those seeds. ``--train_flag=--epochs=1`` (repeatable) appends a flag to every model's training
(a different run: recorded in the result). ``--list`` prints the claims. ``--status`` prints where each model
stands (not started, training, trained, evaluated, or its running evaluation's progress) and changes nothing, so
it is safe beside the running command.
"""

import dataclasses
import json
import os
import shlex
import subprocess
import sys
import time

from absl import flags

from tfrobust import data
from tfrobust.core.run_layout import RunLayout
from tfrobust.errors import TfrobustError
from tfrobust.reproduction import claims, runs
from tfrobust.reproduction.denoiser_evaluation import evaluate_denoiser_psnr, load_denoiser, load_test_images
from tfrobust.reproduction.model_evaluation import SUITE, evaluate_model, load_trained, recipe_settings
from tfrobust.reproduction.results import claim_report, headline_difference, update_summary, write_claim
from tfrobust.reproduction.verdict import needs_second_seed
from tfrobust.scripts import run_program

FLAGS = flags.FLAGS
#: The repository checkout this package lives in (the recipes' flagfiles are relative to it).
REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN_PROGRAM = os.path.join("trainers", "train.py")  # the accuracy claims'; a claim names its own
#: --batch_size of the attacks; only another value is recorded with an evaluation (see evaluation_settings).
DEFAULT_BATCH_SIZE = 250


def define_flags():
    """Defines this program's flags (once, when it runs)."""
    flags.DEFINE_string("claim", None, f"Claim to re-run: {', '.join(claims.names())}.")
    flags.DEFINE_bool("list", False, "Print the claims with their models and pairs, then exit.")
    flags.DEFINE_bool("status", False, "Print where each model of --claim stands at --scale (not started, training, "
                      "trained, evaluated, or its running evaluation's progress, provisional) and exit: reads the "
                      "run folders, trains and attacks nothing, safe beside the running command.")
    flags.DEFINE_enum("scale", "cpu", list(claims.SCALES), "cpu: Fashion-MNIST, small models, ~40 min on 2 cores; "
                      "paper: the paper's setting (accelerators).")
    flags.DEFINE_list("seeds", ["auto"], "auto (seed 0, then seed 1 where the rule asks for it) or a list of seeds.")
    flags.DEFINE_string("out_dir", "docs/results/reproductions", "Where <claim>.md and <claim>.json go.")
    flags.DEFINE_string("work_dir", "runs/reproductions", "Where the models are trained and evaluated.")
    flags.DEFINE_string("summary", "docs/results/reproductions.md", "Summary file whose table row of the claim is "
                        "updated ('' to leave it alone).")
    flags.DEFINE_integer("points", None, "Test points (default: the claim's for the scale).", lower_bound=1)
    flags.DEFINE_integer("sanity_size", None, "Points of the sanity checks (default: the claim's).", lower_bound=1)
    flags.DEFINE_multi_string("train_flag", [], "Extra flag of the claim's training program (trainers/train.py, "
                              "or trainers/train_denoiser.py for a PSNR claim) for every model, repeatable "
                              "(e.g. --train_flag=--epochs=1).")
    flags.DEFINE_list("models", [], "Only these models of the claim (default: all). The others are not trained or "
                      "evaluated: their finished evaluations (same settings) stay in the result, the rest are listed "
                      "as missing, so the result is marked partial until a later run adds them.")
    flags.DEFINE_integer("batch_size", DEFAULT_BATCH_SIZE, "Attack batch size of every model (default: the model "
                         "recipe's at the scale, else 250). Recorded with an evaluation: another size draws other "
                         "random starts, so a saved evaluation is redone.", lower_bound=1)
    flags.DEFINE_integer("verbose", 1, "0 silent, 1 a line per model step, 2 also the evaluation's per-attack "
                         "lines and the training output.", lower_bound=0, upper_bound=2)


def parse_seeds(values):
    if [v.strip() for v in values] == ["auto"]:
        return None
    try:
        seeds = [int(v) for v in values]
    except ValueError:
        raise TfrobustError(f"--seeds must be 'auto' or comma-separated integers ≥ 0, got {','.join(values)}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise TfrobustError(f"--seeds must be distinct integers ≥ 0, got {','.join(values)}")
    return seeds


def check_train_flags(values, program="trainers/train.py"):
    """``values`` checked as extra flags of the claim's training ``program`` (named in the error)."""
    for value in values:
        name = value.split("=", 1)[0]
        if not value.startswith("--") or name in ("--model_dir", "--seed", "--flagfile"):
            raise TfrobustError(f"--train_flag takes a {program} flag other than --model_dir, --seed and "
                                f"--flagfile, e.g. --train_flag=--epochs=1; got {value!r}")
    return list(values)


def say(level, text):
    if FLAGS.verbose >= level:
        print(text, flush=True)


class Reproduction:
    """One claim at one scale: trains and evaluates models on demand and rewrites the result files."""

    def __init__(self, claim, scale, x, y, setting, extra_flags, work_dir, out_dir, summary, command,
                 batch_size=None):
        """``x, y``: the test points (for a PSNR claim ``x`` is the list of clean test images, ``y`` None);
        ``batch_size``: the attack batch size of every model (None: each recipe's, ``model_batch_size``)."""
        self.claim, self.scale, self.x, self.y, self.setting = claim, scale, x, y, setting
        self.batch_size = batch_size
        self.psnr = claim.metric == "psnr"
        self.program = claim.training_program
        self.extra_flags, self.work_dir, self.out_dir, self.summary = extra_flags, work_dir, out_dir, summary
        self.commands = [command]
        self.evaluations, self.trainings, self.wanted = {}, {}, {}

    def argv(self, model, seed):
        directory = runs.run_dir(self.work_dir, self.claim.name, self.scale, model, seed)
        flags_ = [*self.claim.training_flags(model, self.scale), *self.extra_flags]
        return directory, runs.training_argv(flags_, directory, seed)

    def command(self, argv):
        return f"python {self.program} {' '.join(shlex.quote(a) for a in argv)}"

    def train(self, model, seed):
        directory, argv = self.argv(model, seed)
        state = runs.training_state(directory, argv)
        command = self.command(argv)
        if state != runs.FINISHED:
            if state == runs.NEW:
                runs.record_training(directory, argv)
            resuming = "resuming" if state == runs.RESUME else "new"
            say(1, f"[{self.claim.name}] training {model} seed {seed} ({resuming}); "
                   f"log: {os.path.join(directory, 'train.log')}")
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPOSITORY, os.environ.get("PYTHONPATH")])))
            start = time.perf_counter()
            with open(os.path.join(directory, "train.log"), "a", encoding="utf-8") as log:
                completed = subprocess.run([sys.executable, self.program, *argv], cwd=REPOSITORY, env=env,
                                           stdout=None if FLAGS.verbose >= 2 else log, stderr=subprocess.STDOUT
                                           if FLAGS.verbose < 2 else None, check=False)
            wall = time.perf_counter() - start
            if completed.returncode != 0:
                raise TfrobustError(f"training {model} (seed {seed}) failed with exit status {completed.returncode}; "
                                    f"see {os.path.join(directory, 'train.log')}")
            runs.add_invocation(directory, wall)
        else:
            say(1, f"[{self.claim.name}] {model} seed {seed}: trained already ({directory})")
        model_net, summary = (load_denoiser if self.psnr else load_trained)(directory)
        self.trainings.setdefault(seed, {})[model] = self.training_entry(command, directory, summary)
        return directory, model_net

    def training_entry(self, command, directory, summary):
        """What the report keeps of a finished training run (its ``summary.json``)."""
        entry = {"command": command, "run_dir": directory, "wall_seconds_per_invocation": runs.invocations(directory),
                 "train_seconds": summary.get("train_seconds"), "epochs": summary.get("epochs"),
                 "epochs_last_invocation": summary.get("epochs_run_this_invocation")}
        if self.psnr:
            return {**entry, "val_psnr": summary.get("val_psnr"), "val_adv_psnr": summary.get("val_adv_psnr"),
                    "num_patches": summary.get("num_patches"), "patch_size": summary.get("patch_size")}
        return {**entry, "test_accuracy": summary.get("test_accuracy"),
                "test_adv_accuracy": summary.get("test_adv_accuracy"),
                "selection": {k: v for k, v in (summary.get("selection") or {}).items() if k != "weights_best"},
                "train_size": summary.get("train_size"), "validation_size": summary.get("validation_size")}

    def model_batch_size(self, model):
        """The attack batch size of ``model``: ``--batch_size`` when given, else its recipe's at this scale (a
        slow model's smaller chunks finish inside a session), else ``DEFAULT_BATCH_SIZE``."""
        if self.batch_size is not None:
            return self.batch_size
        return self.claim.model(model).batch_size.get(self.scale, DEFAULT_BATCH_SIZE)

    def evaluation_settings(self, model, seed):
        """The settings a model's saved evaluation must have been made with to be reused."""
        # Attack random starts are drawn per batch (stream b for batch b), so another batch size gives other
        # draws: recorded when it is not the default, so evaluations saved before it was recorded stay valid.
        batch_size = self.model_batch_size(model)
        batch = {} if batch_size == DEFAULT_BATCH_SIZE else {"batch_size": batch_size}
        if self.psnr:
            return {"points": len(self.x), "eps": self.setting.eps, "dataset": self.setting.dataset,
                    "metric": "psnr", "seed": seed, "psnr": dataclasses.asdict(self.setting.psnr), **batch}
        recipe = self.claim.model(model)
        settings = {"points": int(len(self.y)), "eps": self.setting.eps, "dataset": self.setting.dataset,
                    "suite": SUITE, "seed": seed, "sanity_size": self.sanity_size, "adaptive": recipe.adaptive,
                    **batch}
        if self.claim.analyses:  # only when asked, so evaluations saved before analyses existed stay valid
            settings["analyses"] = list(self.claim.analyses)
        options = recipe_settings(recipe.adaptive, self.setting.adaptive_options)  # its recipes' share, as run
        if options:
            settings["adaptive_options"] = options
        return settings

    def keep(self, model, seed, saved):
        """Puts a finished evaluation ``(result, arrays)`` in the report, its result stating the attack batch size
        it was made with (the saved settings state it only when it is not the default)."""
        result, arrays = saved
        self.evaluations.setdefault(seed, {})[model] = ({**result, "batch_size": self.model_batch_size(model)}, arrays)

    def add_finished(self, model, seed, why="not selected"):
        """Adds a model this run does not train or evaluate (``--models`` left it out; or a second seed the rule
        has not yet been re-read for, ``why``) to the report when its training and its evaluation under the
        same settings are finished on disk; else it stays missing."""
        directory, argv = self.argv(model, seed)
        try:
            if runs.training_state(directory, argv) != runs.FINISHED:
                return False
        except TfrobustError:  # a folder of other flags (e.g. another --train_flag): not this run's, left alone
            return False
        saved = runs.load_evaluation(directory, self.evaluation_settings(model, seed),
                                     dtype=float if self.psnr else bool)
        if saved is None:
            return False
        with open(RunLayout(directory).summary, encoding="utf-8") as handle:
            summary = json.load(handle)
        command = self.command(argv)
        self.trainings.setdefault(seed, {})[model] = self.training_entry(command, directory, summary)
        self.keep(model, seed, saved)
        say(1, f"[{self.claim.name}] {model} seed {seed}: {why}, its finished evaluation is kept in the report")
        return True

    def evaluate_psnr(self, model, seed):
        directory, net = self.train(model, seed)
        psnr = self.setting.psnr
        settings = self.evaluation_settings(model, seed)
        saved = runs.load_evaluation(directory, settings, dtype=float)
        if saved is None:
            self.write()  # the finished training is in the report while its evaluation runs
            say(1, f"[{self.claim.name}] evaluating {model} seed {seed} on {len(self.x)} images (Gaussian, ObsAtk "
                   f"{psnr.paper_steps} steps, strongest ObsAtk {psnr.strong_restarts} × {psnr.strong_steps} steps)")
            result, arrays = evaluate_denoiser_psnr(
                net, self.x, eps=self.setting.eps, level=psnr.level, paper_steps=psnr.paper_steps,
                strong_steps=psnr.strong_steps, strong_restarts=psnr.strong_restarts, seed=seed,
                batch_size=self.model_batch_size(model), verbose=FLAGS.verbose >= 2, name=model)
            runs.save_evaluation(directory, settings, result, arrays)
            saved = (result, arrays)
        result = saved[0]
        rows = {r["attack"]: r["psnr"] for r in result["rows"]}
        say(1, f"[{self.claim.name}] {model} seed {seed}: Gaussian {rows['gaussian']:.2f} dB, ObsAtk (paper) "
               f"{rows['obsatk_paper']:.2f} dB, strongest ObsAtk {rows['obsatk_strong']:.2f} dB, "
               f"flags: {', '.join(result['flagged']) or 'none'}")
        self.keep(model, seed, saved)
        self.write()

    def evaluate(self, model, seed):
        if self.psnr:
            return self.evaluate_psnr(model, seed)
        directory, net = self.train(model, seed)
        recipe = self.claim.model(model)
        settings = self.evaluation_settings(model, seed)
        options = settings.get("adaptive_options")
        saved = runs.load_evaluation(directory, settings)
        if saved is None:
            self.write()  # the finished training is in the report while its evaluation runs (hours for some)
            say(1, f"[{self.claim.name}] evaluating {model} seed {seed} on {len(self.y)} points "
                   f"({SUITE} suite{', adaptive: ' + recipe.adaptive if recipe.adaptive else ''})")
            result, masks = evaluate_model(net, self.x, self.y, eps=self.setting.eps, adaptive=recipe.adaptive,
                                           seed=seed, sanity_size=self.sanity_size,
                                           batch_size=self.model_batch_size(model),
                                           verbose=2 if FLAGS.verbose >= 2 else 0, name=model,
                                           analyses=self.claim.analyses,
                                           state_dir=os.path.join(directory, runs.EVALUATION_STATE),
                                           adaptive_options=options)
            runs.save_evaluation(directory, settings, result, masks)
            saved = (result, masks)
        result = saved[0]
        rows = {r["attack"]: r["accuracy"] for r in result["rows"]}
        say(1, f"[{self.claim.name}] {model} seed {seed}: clean {100 * result['clean']:.1f}%, AutoAttack "
               f"{100 * rows.get('autoattack', float('nan')):.1f}%, strongest {100 * result['strongest']:.1f}%, "
               f"flags: {', '.join(result['flagged']) or 'none'}")
        self.keep(model, seed, saved)
        self.write()

    def missing(self):
        return [f"{model} seed {seed}" for seed, models in sorted(self.wanted.items()) for model in models
                if model not in self.evaluations.get(seed, {})]

    def write(self):
        missing = self.missing()
        report = claim_report(self.claim, self.scale, self.evaluations, self.trainings, complete=not missing,
                              commands=self.commands + [self.trainings[s][m]["command"] for s in sorted(self.trainings)
                                                         for m in self.trainings[s]],
                              missing=missing, points=len(self.x), sanity_size=self.sanity_size)
        report["extra_train_flags"] = self.extra_flags
        path = write_claim(report, self.out_dir)
        if self.summary:
            link = os.path.relpath(path, os.path.dirname(os.path.abspath(self.summary)))
            update_summary(self.summary, report, link)
        return report


def print_claims():
    for name in claims.names():
        claim = claims.get(name)
        print(f"{name}: {claim.title}")
        print(f"  models: {', '.join(m.name for m in claim.models)}; pairs: "
              f"{'; '.join(p.label for p in claim.pairs)}; scales: {', '.join(claim.scales)}")


def print_status(job):
    """``--status``: every model's seeds on disk (seed 0 when none) and where each stands under ``job``'s settings;
    a folder that cannot be read is named on its line, and the listing goes on before the error ends it."""
    claim, scale, work_dir = job.claim, job.scale, job.work_dir
    print(f"{claim.name} at scale {scale} (runs in {os.path.join(work_dir, claim.name, scale)}):")
    unreadable = []
    for model in claim.models:
        for seed in runs.seeds_on_disk(work_dir, claim.name, scale, model.name) or [0]:
            directory = runs.run_dir(work_dir, claim.name, scale, model.name, seed)
            try:
                first, *rest = runs.status_lines(directory, job.evaluation_settings(model.name, seed))
            except TfrobustError as error:
                unreadable.append(str(error))
                first, rest = f"cannot be read: {error}", []
            print(f"{model.name} seed {seed}: {first}")
            for line in rest:
                print(f"  {line}")
    if unreadable:
        raise TfrobustError(f"{len(unreadable)} run folder(s) cannot be read; the first: {unreadable[0]}")


def main(argv):
    del argv
    if FLAGS.list:
        print_claims()
        return
    if not FLAGS.claim:
        raise TfrobustError(f"--claim is required; claims: {', '.join(claims.names())}")
    claim = claims.get(FLAGS.claim)
    setting = claim.setting(FLAGS.scale)
    seeds = parse_seeds(FLAGS.seeds)
    if claim.metric == "psnr" and FLAGS.sanity_size is not None:
        raise TfrobustError(f"--sanity_size does not apply to the PSNR claim {claim.name}: its sanity checks use "
                            "every test image (--points)")
    extra = check_train_flags(FLAGS.train_flag, claim.training_program)
    if FLAGS.summary and not os.path.isfile(FLAGS.summary):
        raise TfrobustError(f"--summary {FLAGS.summary} does not exist (give '' to skip the summary table)")
    if not os.path.isfile(os.path.join(REPOSITORY, claim.training_program)):
        raise TfrobustError(f"{claim.training_program} not found under {REPOSITORY}: run from a repository checkout")
    points = FLAGS.points or setting.points
    if claim.metric == "psnr":
        x, y = load_test_images(setting.dataset, points, setting.psnr.color), None
    else:
        x, y = data.load(setting.dataset, "test", size=points)
    command = "python trainers/reproduce.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    job = Reproduction(claim, FLAGS.scale, x, y, setting, extra, os.path.abspath(FLAGS.work_dir), FLAGS.out_dir,
                       FLAGS.summary, command, batch_size=FLAGS.batch_size if FLAGS["batch_size"].present else None)
    job.sanity_size = len(x) if claim.metric == "psnr" else min(FLAGS.sanity_size or setting.sanity_size, len(x))
    if FLAGS.status:
        print_status(job)
        return
    models = [m.name for m in claim.models]
    selected = [claim.model(name).name for name in dict.fromkeys(FLAGS.models)] or models
    first = seeds or [0]
    for seed in first:
        job.wanted[seed] = list(models)
        for model in models:  # --models: the others' finished results stay in the report
            if model not in selected:
                job.add_finished(model, seed)
    if seeds is None:
        # Seed 1's finished evaluations stay in the reports written while seed 0 runs (a run stopped before the
        # rule is re-read below must not leave a result file with fewer seeds than the last one).
        for model in models:
            job.add_finished(model, 1, why="seed 1 of an earlier run")
    for seed in first:
        for model in selected:
            job.evaluate(model, seed)
    if seeds is None:  # auto: the rule's second seed for the pairs that need it
        second = []
        for pair in claim.pairs:
            if pair.baseline not in job.evaluations[0] or pair.defense not in job.evaluations[0]:
                continue
            strong = headline_difference(claim.metric, job.evaluations[0][pair.baseline],
                                         job.evaluations[0][pair.defense])
            if needs_second_seed(strong):
                second += [m for m in (pair.baseline, pair.defense) if m not in second]
        for model in [m for m in job.evaluations.get(1, {}) if m not in second]:  # the rule no longer asks
            job.evaluations[1].pop(model)
            job.trainings.get(1, {}).pop(model, None)
        for table in (job.evaluations, job.trainings):
            if 1 in table and not table[1]:
                del table[1]
        if second:
            say(1, f"[{claim.name}] seed 1 needed for: {', '.join(second)} "
                   f"({'strongest ObsAtk' if claim.metric == 'psnr' else 'AutoAttack'} difference within 3 SE)")
            job.wanted[1] = second
            for model in second:
                if model not in selected:
                    job.add_finished(model, 1)
            job.write()
            for model in second:
                if model in selected:
                    job.evaluate(model, 1)
    report = job.write()
    print(f"{claim.name}: verdict {report['verdict']} ({report['status']}); "
          f"{os.path.join(FLAGS.out_dir, claim.name + '.md')}")


def run():
    """The ``tfrobust-reproduce`` console script."""
    run_program(define_flags, main, __doc__)
