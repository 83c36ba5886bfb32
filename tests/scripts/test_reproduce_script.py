"""trainers/reproduce.py: bad input (one error line, exit 2) and one small end-to-end run of a tiny claim, run
twice (the second run trains and evaluates nothing again)."""

import json
import os
import subprocess
import sys

import pytest

from tfrobust.reproduction import claims, runs

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("args, message", [
    (["--claim=nonsense"], "unknown claim 'nonsense'; claims: cifs"),
    ([], "--claim is required"),
    (["--claim=cifs", "--seeds=0,x"], "--seeds must be 'auto' or comma-separated integers"),
    (["--claim=cifs", "--seeds=1,1"], "--seeds must be distinct"),
    (["--claim=cifs", "--train_flag=--model_dir=elsewhere"], "--train_flag takes a trainers/train.py flag"),
    (["--claim=cifs", "--train_flag=epochs=1"], "--train_flag takes a trainers/train.py flag"),
    (["--claim=denoising_hat", "--train_flag=--seed=3"], "--train_flag takes a trainers/train_denoiser.py flag"),
    (["--claim=cifs", "--scale=gpu"], "--scale"),
    (["--claim=cifs", "--points=0"], "--points"),
    (["--claim=cifs", "--models=vanilla,nonsense"], "claim cifs has no model 'nonsense'; models: vanilla, cifs"),
    (["--claim=denoising_hat", "--sanity_size=5"], "--sanity_size does not apply to the PSNR claim denoising_hat"),
    (["--claim=cifs", "--summary=/nonexistent/summary.md"], "--summary /nonexistent/summary.md does not exist"),
])
def test_bad_flags_give_one_error_line_and_exit_2(in_process, args, message, monkeypatch, tmp_path):
    def no_training(*_, **__):
        raise AssertionError("a bad flag was accepted: the runner started a training")

    # Should the error not fire, the runner must neither train a real claim for minutes nor write into the
    # checkout's docs/results: nothing trains, and the folders are temporary (the case's own flags come last).
    monkeypatch.setattr(subprocess, "run", no_training)
    code, out, err = in_process("reproduce", f"--work_dir={tmp_path / 'work'}", f"--out_dir={tmp_path / 'out'}",
                                "--summary=", *args)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1
    assert message in err
    assert out == ""


def test_list_prints_every_claim(in_process):
    code, out, _ = in_process("reproduce", "--list")
    assert code == 0
    for name in claims.names():
        assert f"{name}: " in out


def test_bad_claim_exits_2_in_a_real_process():
    completed = subprocess.run([sys.executable, "trainers/reproduce.py", "--claim=nonsense"], cwd=REPOSITORY,
                               capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=REPOSITORY))
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines()[-1].startswith("error: unknown claim 'nonsense'")


TINY_TRAINING = ("--dataset=fashion_mnist", "--model=small_cnn", "--model_option=width=0.125", "--method=standard",
                 "--train_size=128", "--test_size=32", "--epochs=1", "--batch_size=64", "--optimizer=adam",
                 "--learning_rate=1e-3", "--schedule=constant", "--weight_decay=0", "--export_formats=saved_model")


@pytest.fixture
def tiny_claim(monkeypatch):
    claim = claims.Claim(
        name="tiny_test_claim", title="two tiny CNNs (test only)",
        models=(claims.ModelRecipe("plain", "small CNN", {"cpu": TINY_TRAINING}),
                claims.ModelRecipe("wider", "small CNN, wider",
                                   {"cpu": (*TINY_TRAINING, "--model_option=width=0.25")})),
        pairs=(claims.Pair("plain", "wider", claims.PaperNumbers(10.0, 20.0, "PGD-20", "made up for the test")),),
        scales={"cpu": claims.ScaleSetting("fashion_mnist", 0.1, 12, 6, "test setting")})
    monkeypatch.setitem(claims._CLAIMS, claim.name, claim)
    return claim


@pytest.mark.slow  # two training subprocesses and two standard-suite evaluations: ~25-50 s on 2 shared cores
def test_a_tiny_claim_end_to_end_and_again_without_retraining(in_process, tiny_claim, tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("# s\n\n<!-- reproductions-summary:start -->\n| claim | paper | ours | verdict | result |\n"
                       "|---|---|---|---|---|\n| tiny_test_claim | not run yet | not run yet | not run yet | — |\n"
                       "<!-- reproductions-summary:end -->\n")
    args = ["--claim=tiny_test_claim", f"--out_dir={tmp_path / 'out'}", f"--work_dir={tmp_path / 'work'}",
            f"--summary={summary}", "--seeds=0"]
    code, out, err = in_process("reproduce", *args, "--models=plain")
    assert code == 0, err
    assert "training plain seed 0 (new)" in out and "wider" not in out
    partial = json.loads((tmp_path / "out" / "tiny_test_claim.json").read_text())
    assert partial["status"] != "complete" and "wider seed 0" in str(partial["missing"])
    code, out, err = in_process("reproduce", *args)
    assert code == 0, err
    assert "plain seed 0: trained already" in out and "training wider seed 0 (new)" in out
    report = json.loads((tmp_path / "out" / "tiny_test_claim.json").read_text())
    assert report["status"] == "complete" and report["setting"]["points"] == 12
    pair = report["pairs"][0]
    assert pair["paper"]["difference_points"] == pytest.approx(10.0)
    differences = pair["differences"]["0"]
    assert set(differences) == {"clean", "fgsm", "pgd-20", "autoattack", "worst_case"}
    for d in differences.values():
        m = d["mcnemar"]
        assert m["n"] == 12 and m["both"] + m["neither"] + m["defense_only"] + m["baseline_only"] == 12
        assert d["difference"] == pytest.approx((m["defense_only"] - m["baseline_only"]) / 12)
    for name in ("plain", "wider"):
        evaluation = report["models"][name]["0"]["evaluation"]
        assert [r["attack"] for r in evaluation["rows"]] == ["fgsm", "pgd-20", "autoattack"]
        assert evaluation["strongest"] <= min(r["accuracy"] for r in evaluation["rows"])
        assert report["models"][name]["0"]["training"]["command"].startswith("python trainers/train.py ")
    # A complete claim's verdict is its headline pair's, and its .md file says the same.
    assert report["verdict"] == report["pairs"][0]["verdict"]
    assert report["verdict"] in ("reproduced", "not reproduced", "masked", "partial")
    assert f"**Verdict: {report['verdict']}**" in (tmp_path / "out" / "tiny_test_claim.md").read_text()
    markdown = (tmp_path / "out" / "tiny_test_claim.md").read_text()
    assert "Paper: plain 10.00 % → wider 20.00 % under PGD-20" in markdown and "## Exact commands" in markdown
    row = [line for line in summary.read_text().splitlines() if line.startswith("| tiny_test_claim |")]
    assert len(row) == 1 and "not run yet" not in row[0] and "tiny_test_claim.md" in row[0]
    assert f"| {report['verdict']}" in row[0]  # e.g. 'partial (seed 0 alone: …)'

    record = tmp_path / "work" / "tiny_test_claim" / "cpu" / "plain_seed0" / "reproduce_training.json"
    before = json.loads(record.read_text())["wall_seconds"]
    code, out, err = in_process("reproduce", *args)
    assert code == 0, err
    assert "plain seed 0: trained already" in out and "evaluating" not in out
    assert json.loads(record.read_text())["wall_seconds"] == before  # not retrained
    code, out, err = in_process("reproduce", *args, "--status")
    assert code == 0, err
    for name in ("plain", "wider"):
        clean = report["models"][name]["0"]["evaluation"]["clean"]
        assert f"{name} seed 0: evaluated: clean {100 * clean:.1f} %, AutoAttack " in out
    assert json.loads((tmp_path / "out" / "tiny_test_claim.json").read_text())["pairs"] == report["pairs"]

    # A run of part of the claim keeps the other models' finished results: the file does not fall back to partial.
    code, out, err = in_process("reproduce", *args, "--models=wider")
    assert code == 0, err
    assert "plain seed 0: not selected, its finished evaluation is kept" in out and "evaluating" not in out
    again = json.loads((tmp_path / "out" / "tiny_test_claim.json").read_text())
    assert again["status"] == "complete" and again["missing"] == [] and again["pairs"] == report["pairs"]
    assert again["models"]["plain"]["0"]["training"] == report["models"]["plain"]["0"]["training"]


def test_a_run_folder_of_other_flags_is_refused(in_process, tiny_claim, tmp_path):
    folder = tmp_path / "work" / "tiny_test_claim" / "cpu" / "plain_seed0"
    folder.mkdir(parents=True)
    (folder / "reproduce_training.json").write_text(json.dumps({"argv": ["--epochs=7"]}))
    code, _, err = in_process("reproduce", "--claim=tiny_test_claim", f"--work_dir={tmp_path / 'work'}",
                              f"--out_dir={tmp_path / 'out'}", "--summary=", "--seeds=0")
    assert code == 2 and "was trained with other flags" in err


def test_status_reads_the_run_folders_and_changes_nothing(in_process, tiny_claim, tmp_path, monkeypatch):
    def no_training(*_, **__):
        raise AssertionError("--status started a training")

    monkeypatch.setattr(subprocess, "run", no_training)
    work = tmp_path / "work"
    wider = runs.run_dir(str(work), "tiny_test_claim", "cpu", "wider", 1)
    runs.record_training(wider, ["--epochs=1"])
    (tmp_path / "work" / "tiny_test_claim" / "cpu" / "wider_seed1" / "summary.json").write_text("{}")
    code, out, err = in_process("reproduce", "--claim=tiny_test_claim", f"--work_dir={work}",
                                f"--out_dir={tmp_path / 'out'}", "--summary=", "--status")
    assert code == 0, err
    assert out.splitlines() == [f"tiny_test_claim at scale cpu (runs in {work / 'tiny_test_claim' / 'cpu'}):",
                                "plain seed 0: not started", "wider seed 1: trained, not evaluated yet"]
    assert not (tmp_path / "out").exists() and sorted(p.name for p in work.rglob("*") if p.is_file()) == [
        "reproduce_training.json", "summary.json"]
    # A folder that cannot be read is named on its line, the others still listed, and the command fails.
    (tmp_path / "work" / "tiny_test_claim" / "cpu" / "plain_seed0").mkdir()
    (tmp_path / "work" / "tiny_test_claim" / "cpu" / "plain_seed0" / "reproduce_training.json").write_text("{}")
    (tmp_path / "work" / "tiny_test_claim" / "cpu" / "plain_seed0" / "summary.json").write_text("{}")
    (tmp_path / "work" / "tiny_test_claim" / "cpu" / "plain_seed0" / runs.EVALUATION_FILE).write_text("{")
    code, out, err = in_process("reproduce", "--claim=tiny_test_claim", f"--work_dir={work}",
                                f"--out_dir={tmp_path / 'out'}", "--summary=", "--status")
    assert code == 2 and err.count("\n") == 1 and "1 run folder(s) cannot be read" in err
    assert out.splitlines()[1].startswith("plain seed 0: cannot be read: ") and \
        out.splitlines()[2] == "wider seed 1: trained, not evaluated yet"


def test_help_lists_the_claims(in_process):
    code, out, _ = in_process("reproduce", "--help")
    assert code in (0, 1)  # absl ends --help with status 1
    assert "--claim" in out and all(name in out for name in claims.names())


def test_a_model_left_out_by_models_is_added_only_when_finished_under_the_same_settings(tiny_claim, tmp_path,
                                                                                        monkeypatch):
    import numpy as np

    from tfrobust.core.files import write_json
    from tfrobust.core.run_layout import RunLayout
    from tfrobust.reproduction import runs
    from tfrobust.scripts import reproduce

    monkeypatch.setattr(reproduce, "say", lambda *_: None)
    x, y = np.zeros((12, 28, 28, 1), np.float32), np.zeros(12, np.int64)
    job = reproduce.Reproduction(tiny_claim, "cpu", x, y, tiny_claim.setting("cpu"), [], str(tmp_path / "work"),
                                 str(tmp_path / "out"), "", "python trainers/reproduce.py")
    job.sanity_size = 6
    assert not job.add_finished("plain", 0)  # nothing there
    directory, argv = job.argv("plain", 0)
    runs.record_training(directory, argv)
    assert not job.add_finished("plain", 0)  # started, not finished
    write_json(RunLayout(directory).summary, {"train_seconds": 3.0, "epochs": 1})
    masks = {"autoattack": np.ones(12, bool)}
    runs.save_evaluation(directory, {**job.evaluation_settings("plain", 0), "points": 99}, {"flagged": []}, masks)
    assert not job.add_finished("plain", 0)  # evaluated under other settings
    runs.save_evaluation(directory, job.evaluation_settings("plain", 0), {"flagged": []}, masks)
    assert job.add_finished("plain", 0)
    assert job.trainings[0]["plain"]["train_seconds"] == 3.0 and job.trainings[0]["plain"]["command"].startswith(
        "python trainers/train.py ")
    assert np.array_equal(job.evaluations[0]["plain"][1]["autoattack"], masks["autoattack"])
    # The report states every evaluation's attack batch size, the default too (its settings omit it).
    assert job.evaluations[0]["plain"][0] == {"flagged": [], "batch_size": reproduce.DEFAULT_BATCH_SIZE}
    # Another attack batch size draws other random starts (stream b per batch): not reused; the default is
    # not recorded, so evaluations saved before the batch size was recorded stay valid.
    assert "batch_size" not in job.evaluation_settings("plain", 0)
    batched = reproduce.Reproduction(tiny_claim, "cpu", x, y, tiny_claim.setting("cpu"), [], str(tmp_path / "work"),
                                     str(tmp_path / "out"), "", "python trainers/reproduce.py", batch_size=100)
    batched.sanity_size = 6
    assert batched.evaluation_settings("plain", 0)["batch_size"] == 100
    assert not batched.add_finished("plain", 0)
    # A recipe's own batch size (a slow model's shorter chunks) is recorded and used; --batch_size wins over it.
    import dataclasses
    slow = dataclasses.replace(tiny_claim, models=(dataclasses.replace(tiny_claim.models[0], batch_size={"cpu": 4}),
                                                    tiny_claim.models[1]))
    monkeypatch.setitem(claims._CLAIMS, slow.name, slow)
    own = reproduce.Reproduction(slow, "cpu", x, y, slow.setting("cpu"), [], str(tmp_path / "work"),
                                 str(tmp_path / "out"), "", "python trainers/reproduce.py")
    own.sanity_size = 6
    assert own.model_batch_size("plain") == 4 and own.evaluation_settings("plain", 0)["batch_size"] == 4
    runs.save_evaluation(directory, own.evaluation_settings("plain", 0), {"flagged": []}, masks)
    assert own.add_finished("plain", 0) and own.evaluations[0]["plain"][0]["batch_size"] == 4
    assert own.model_batch_size("wider") == reproduce.DEFAULT_BATCH_SIZE
    assert "batch_size" not in own.evaluation_settings("wider", 0)
    forced = reproduce.Reproduction(slow, "cpu", x, y, slow.setting("cpu"), [], str(tmp_path / "work"),
                                    str(tmp_path / "out"), "", "python trainers/reproduce.py", batch_size=100)
    assert forced.model_batch_size("plain") == 100 == forced.model_batch_size("wider")
    # A folder trained with other flags (another --train_flag) is not this run's: left out, no error.
    other = reproduce.Reproduction(tiny_claim, "cpu", x, y, tiny_claim.setting("cpu"), ["--epochs=2"],
                                   str(tmp_path / "work"), str(tmp_path / "out"), "", "python trainers/reproduce.py")
    other.sanity_size = 6
    assert not other.add_finished("plain", 0) and other.evaluations == {}


def test_a_trained_model_is_in_the_report_while_its_evaluation_runs(tiny_claim, tmp_path, monkeypatch):
    # An evaluation can take hours: the report must not wait for it to show the finished training.
    import types

    import numpy as np

    from tfrobust.scripts import reproduce

    monkeypatch.setattr(reproduce, "say", lambda *_: None)
    x, y = np.zeros((12, 28, 28, 1), np.float32), np.zeros(12, np.int64)
    job = reproduce.Reproduction(tiny_claim, "cpu", x, y, tiny_claim.setting("cpu"), [], str(tmp_path / "work"),
                                 str(tmp_path / "out"), "", "python trainers/reproduce.py")
    job.sanity_size = 6
    job.wanted = {0: ["plain", "wider"]}

    def train(model, seed):
        job.trainings.setdefault(seed, {})[model] = {"command": f"python trainers/train.py {model}",
                                                     "train_seconds": 7.0, "epochs": 1}
        return str(tmp_path / model), None

    seen = []

    def evaluate_model(*_, **__):  # what a reader of the report sees while the attacks run
        seen.append(json.loads((tmp_path / "out" / "tiny_test_claim.json").read_text()))
        raise KeyboardInterrupt  # the session ends mid-evaluation

    monkeypatch.setattr(job, "train", train)
    monkeypatch.setattr(reproduce, "evaluate_model", evaluate_model)
    monkeypatch.setattr(reproduce, "FLAGS", types.SimpleNamespace(verbose=0))
    with pytest.raises(KeyboardInterrupt):
        job.evaluate("plain", 0)
    [report] = seen
    assert report["models"]["plain"]["0"] == {"evaluation": None, "training": {
        "command": "python trainers/train.py plain", "train_seconds": 7.0, "epochs": 1}}
    assert report["status"] == "partial" and report["missing"] == ["plain seed 0", "wider seed 0"]
    assert "| plain | 0 | not evaluated yet |" in (tmp_path / "out" / "tiny_test_claim.md").read_text()


@pytest.mark.parametrize("rule_asks", [True, False])
def test_seed_one_stays_in_every_report_until_the_rule_is_re_read(rule_asks, in_process, tiny_claim, tmp_path,
                                                                   monkeypatch):
    # A run stopped while seed 0 is evaluated must not leave a result file with fewer seeds than the last run's;
    # once seed 0 is done, seed 1 stays only where the rule still asks for it.
    import numpy as np

    from tfrobust.core.files import write_json
    from tfrobust.core.run_layout import RunLayout
    from tfrobust.reproduction import runs
    from tfrobust.scripts import reproduce

    x, y = np.zeros((12, 28, 28, 1), np.float32), np.zeros(12, np.int64)
    setup = reproduce.Reproduction(tiny_claim, "cpu", x, y, tiny_claim.setting("cpu"), [], str(tmp_path / "work"),
                                   str(tmp_path / "out"), "", "python trainers/reproduce.py")
    setup.sanity_size = 6
    for model in ("plain", "wider"):
        directory, argv = setup.argv(model, 1)
        runs.record_training(directory, argv)
        write_json(RunLayout(directory).summary, {"train_seconds": 3.0, "epochs": 1})
        runs.save_evaluation(directory, setup.evaluation_settings(model, 1), {"flagged": []},
                             {"autoattack": np.ones(12, bool)})
    snapshots = []

    def evaluate(job, model, seed):  # seed 0 evaluated here (a stand-in for training + attacks), then written
        job.evaluations.setdefault(seed, {})[model] = ({}, {})
        job.write()

    def write(job):
        snapshots.append({seed: sorted(models) for seed, models in job.evaluations.items()})
        return {"verdict": "partial", "status": "partial"}

    monkeypatch.setattr(reproduce.Reproduction, "evaluate", evaluate)
    monkeypatch.setattr(reproduce.Reproduction, "write", write)
    monkeypatch.setattr(reproduce, "headline_difference",
                        lambda *_: {"difference": 0.0 if rule_asks else 0.5, "se": 0.01})
    code, out, err = in_process("reproduce", "--claim=tiny_test_claim", f"--out_dir={tmp_path / 'out'}",
                                f"--work_dir={tmp_path / 'work'}", "--summary=")
    assert code == 0, err
    assert "plain seed 1: seed 1 of an earlier run, its finished evaluation is kept" in out
    assert snapshots[0] == {1: ["plain", "wider"], 0: ["plain"]}  # seed 0's first model, seed 1 kept
    assert snapshots[-1] == ({0: ["plain", "wider"], 1: ["plain", "wider"]} if rule_asks else {0: ["plain", "wider"]})
