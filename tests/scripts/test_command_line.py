"""The absl scripts end to end: train → export → compare, and one-line errors with exit code 2."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")


def run(script, *args):
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *args], capture_output=True,
                          text=True, env=ENV, cwd=ROOT, check=False, timeout=600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    result = run("trainers/train.py", "--dataset=fashion_mnist", "--model=small_cnn",
                 "--model_option=width=0.25", "--train_size=512", "--test_size=128", "--epochs=2",
                 "--batch_size=64", f"--model_dir={tmp}/run", f"--export_dir={tmp}/export",
                 "--export_name=cnn", "--export_formats=saved_model,tflite_int8", "--schedule=piecewise",
                 "--lr_boundaries=1")
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp, result


def test_train_writes_summary_history_checkpoint_and_exports(trained):
    tmp, result = trained
    summary = json.load(open(tmp / "run" / "summary.json", encoding="utf-8"))
    assert summary["epochs"] == 2 and summary["train_size"] == 512 and summary["test_size"] == 128
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    assert summary["test_accuracy"] > 0.3  # 10 classes: well above chance after 2 epochs on 512 images
    assert (tmp / "run" / "checkpoints" / "last.weights.h5").is_file()
    assert len(open(tmp / "run" / "history.csv", encoding="utf-8").read().strip().splitlines()) == 3
    assert not (tmp / "run" / "backup").exists()  # BackupAndRestore cleans up after a finished run
    assert (tmp / "export" / "cnn" / "1" / "saved_model.pb").is_file()
    assert (tmp / "export" / "cnn_int8.tflite").is_file()
    assert "test accuracy" in result.stdout
    extra = tmp / "export" / "cnn" / "1" / "assets.extra"
    description = json.load(open(extra / "tfrobust.json", encoding="utf-8"))
    assert description["dataset"] == "fashion_mnist" and description["class_names"][0] == "T-shirt/top"
    assert description["training"]["method"] == "standard" and (extra / "tf_serving_warmup_requests").is_file()


def test_export_script_reexports_a_run_as_the_next_version(trained):
    tmp, _ = trained
    # --formats: the old name, kept as an alias of --export_formats (tfrobust-train's name for it).
    result = run("export/export.py", f"--source={tmp}/run", f"--export_dir={tmp}/export", "--export_name=cnn",
                 "--formats=saved_model,keras,tflite_dynamic")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp / "export" / "cnn" / "2" / "saved_model.pb").is_file()
    assert (tmp / "export" / "cnn.keras").is_file() and (tmp / "export" / "cnn_dynamic.tflite").is_file()


def test_compare_script_writes_a_table_for_savedmodel_tflite_and_a_served_model(trained):
    from tfrobust.serving.server import ModelServer

    tmp, _ = trained
    with ModelServer(str(tmp / "export"), rest_port=None, grpc_port=0) as server:
        result = run("export/compare.py", f"--artifacts={tmp}/export/cnn/1,{tmp}/export/cnn_int8.tflite,"
                     f"grpc://{server.grpc_target}/cnn/versions/1", "--labels=cnn@1:saved_model,cnn:int8,cnn@1:served",
                     "--test_size=64", "--eps=0.1", "--suite=fgsm,pgd",
                     "--sanity_size=32", f"--out_dir={tmp}/compare")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| cnn@1:saved_model | white-box |" in result.stdout
    assert "| cnn:int8 | transfer from cnn@1:saved_model |" in result.stdout
    assert "| cnn@1:served | transfer from cnn@1:saved_model |" in result.stdout
    assert "| cnn@1:served | cnn@1:saved_model | −0 / +0 |" in result.stdout  # same model, same points
    assert (tmp / "compare" / "correct.npz").is_file()
    report = json.load(open(tmp / "compare" / "report.json", encoding="utf-8"))
    assert report["dataset"] == "fashion_mnist"  # no --dataset: the SavedModel's tfrobust.json says so
    for model in report["models"]:
        assert [row["attack"] for row in model["rows"]] == ["fgsm", "pgd"]
        assert all(row["accuracy"] <= model["clean"] for row in model["rows"])
        assert model["worst_case"] <= min(row["accuracy"] for row in model["rows"])
    assert report["models"][0]["sanity"]["flags"] and report["models"][1]["sanity"] is None
    served = report["models"][2]["artifact"]
    assert served["format"] == "served_grpc" and served["version"] == 1 and served["queries"] >= 3 * 64
    assert report["models"][0]["artifact"]["fingerprint"]
    assert (tmp / "compare" / "curves.png").is_file()


@pytest.mark.parametrize("program,args,message", [
    ("train", ["--model_dir=/tmp/x", "--batch_size=0"], "batch_size"),
    ("train", ["--model_dir=/tmp/x", "--mixed_precision=fp8"], "mixed_precision"),
    ("train", ["--model_dir=/tmp/x", "--model=nope", "--train_size=8"], "unknown model 'nope'"),
    ("train", ["--model_dir=/tmp/x", "--dataset=nope"], "unknown dataset 'nope'"),
    ("train", ["--model_dir=/tmp/x", "--lr_boundaries=a"], "lr_boundaries"),
    ("train", [], "model_dir"),
    ("train", ["--model_dir=/tmp/x", "--method=pgd_at"], "method 'pgd_at' needs eps > 0"),
    ("train", ["--model_dir=/tmp/x", "--method=trades", "--eps=0.1", "--beta=-1"], "beta must be in"),
    ("train", ["--model_dir=/tmp/x", "--method=free", "--eps=0.1", "--replays=0"], "replays must be in"),
    ("train", ["--model_dir=/tmp/x", "--method=pgd_at", "--eps=0.1", "--beta=6"],
     "unknown parameter 'beta' for method 'pgd_at'"),
    ("train", ["--model_dir=/tmp/x", "unexpected"], "unexpected positional arguments: unexpected"),
    ("compare", ["--artifacts=/nonexistent/model"], "no model at /nonexistent/model"),
    ("compare", ["--artifacts=/tmp", "--eps=-1"], "--eps values must be >= 0, got -1"),
    ("compare", ["--artifacts=/tmp", "--eps=0.1,x"], "--eps expects comma-separated numbers, got 'x'"),
    ("compare", ["--artifacts=/tmp", "--norm=l3"], "norm"),
    ("compare", ["--artifacts=/tmp", "--attack_option=pgd.stepz=5"],
     "unknown parameter 'stepz' for attack 'pgd'; valid: clip_max, clip_min, loss, "),
    ("compare", ["--artifacts=/tmp", "--suite=fgsm,pgd", "--attack_option=square.queries=5"],
     "attack 'square' is not in this suite; attacks in this suite: fgsm, pgd"),
    ("evaluate", ["--source=/tmp", "--attack_option=nope.steps=5"],
     "attack 'nope' is unknown; attacks in this suite: fgsm, pgd, square"),
    ("evaluate", ["--source=/tmp", "--attack_option=pgd"], "expects key=value, got 'pgd'"),
    ("evaluate", ["--source=/nonexistent/run"], "no model at /nonexistent/run"),
    ("evaluate", ["--source=/tmp", "--verbose=3"], "verbose"),
    ("export", ["--source=/tmp", "--export_dir=/tmp/x", "--version=0"], "version"),
])
def test_bad_input_gives_one_line_and_exit_code_2(in_process, program, args, message):
    # In the test process (see conftest.py): the same absl/cli path as a real start, without a new
    # interpreter importing TensorFlow per case; the real exit path is the subprocess test below.
    code, _, stderr = in_process(program, *args)
    assert code == 2, (code, stderr[-2000:])
    lines = [line for line in stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], stderr[-2000:]


@pytest.mark.parametrize("script,args,message", [
    ("trainers/train.py", ["--model_dir=/tmp/x", "--epochs=0"], "epochs"),
    ("export/compare.py", ["--artifacts=/tmp", "--suite=nope"], "unknown attack 'nope'"),
    ("export/export.py", ["--source=/nonexistent/run", "--export_dir=/tmp/x"], "no model at /nonexistent/run"),
])
def test_bad_input_exits_the_process_with_one_line_and_code_2(script, args, message):
    result = run(script, *args)
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], result.stderr[-2000:]


def test_adversarial_training_through_the_script(tmp_path):
    result = run("trainers/train.py", "--method=fgsm_rs", "--eps=0.1", "--model=small_cnn",
                 "--model_option=width=0.25", "--train_size=256", "--test_size=64", "--epochs=2",
                 "--batch_size=64", "--schedule=one_cycle", "--mixed_precision=bfloat16",
                 f"--model_dir={tmp_path}/run")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.load(open(tmp_path / "run" / "summary.json", encoding="utf-8"))
    assert summary["method"]["name"] == "fgsm_rs" and summary["method"]["step_size"] == 0.125
    assert 0.0 <= summary["test_adv_accuracy"] <= 1.0 and "adversarial (training attack)" in result.stdout
    header = (tmp_path / "run" / "history.csv").read_text().splitlines()[0].split(",")
    assert {"clean_accuracy", "adv_accuracy", "ce", "val_adv_accuracy"} <= set(header)
    assert (tmp_path / "run" / "checkpoints" / "last.weights.h5").is_file()


def test_evaluate_script_runs_a_suite_on_a_training_run(trained):
    tmp, _ = trained
    result = run("trainers/evaluate.py", f"--source={tmp}/run", "--test_size=48", "--suite=fgsm,pgd,square",
                 "--attack_option=square.queries=300",
                 "--sanity_size=24", f"--out_dir={tmp}/eval")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.load(open(tmp / "eval" / "report.json", encoding="utf-8"))
    (model,) = report["models"]
    assert report["threat_model"] == {"norm": "linf", "eps": 0.1}  # Fashion-MNIST's customary ε
    assert [row["mode"] for row in model["rows"]] == ["white-box", "white-box", "query-based"]
    assert {flag["check"] for flag in model["sanity"]["flags"]} >= {"zero_gradients", "stochastic"}
    assert "| run | " in result.stdout
    assert "run pgd: " in result.stdout and "standing:" in result.stdout  # --verbose=1: a progress bar
    assert {"run/clean", "run/pgd", "run/worst_case"} <= set(np.load(tmp / "eval" / "correct.npz").files)


def test_compare_refuses_an_out_dir_with_another_runs_report(tmp_path, in_process):
    (tmp_path / "report.json").write_text("{}")
    code, _, stderr = in_process("compare", "--artifacts=/nonexistent/model", f"--out_dir={tmp_path}")
    assert code == 2, stderr[-2000:]
    lines = [line for line in stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "already holds another run's report (report.json)" in lines[0]
    assert "--overwrite" in lines[0] and (tmp_path / "report.json").read_text() == "{}"


def test_evaluate_script_sweeps_eps_with_attack_options(trained, in_process):
    tmp, _ = trained
    code, stdout, stderr = in_process("evaluate", f"--source={tmp}/run", "--test_size=32", "--suite=quick",
                                      "--attack_option=pgd.steps=3", "--attack_option=square.queries=20",
                                      "--eps=0.05,0.15", "--sanity_size=0", f"--out_dir={tmp}/sweep",
                                      "--verbose=2", "--save_adversarial")
    assert code == 0, stderr[-3000:]
    report = json.load(open(tmp / "sweep" / "report.json", encoding="utf-8"))
    assert report["threat_model"] == {"norm": "linf", "eps": [0.05, 0.15]}
    curves = {c["attack"]: c["accuracy"] for c in report["accuracy_vs_eps"]}
    assert list(curves) == ["clean", "fgsm", "pgd[steps=3]", "square[queries=20]", "worst case"]
    assert curves["clean"][0] == curves["clean"][1] and curves["worst case"][1] <= curves["worst case"][0]
    for eps, section in zip((0.05, 0.15), report["sections"]):
        rows = section["models"][0]["rows"]
        assert section["threat_model"]["eps"] == eps and rows[1]["config"]["steps"] == 3
        assert (tmp / "sweep" / f"eps_{eps:g}" / "correct.npz").is_file()
        saved = np.load(tmp / "sweep" / f"eps_{eps:g}" / "adversarial" / "run" / "pgd_steps_3.npz")
        assert saved["x_adv"].shape == (32, 28, 28, 1) and saved["y_pred"].shape == (32,)
    progress = [line for line in stdout.splitlines() if line.startswith("run ")]
    assert [line.split(":")[0] for line in progress] == ["run fgsm", "run pgd[steps=3]", "run square[queries=20]"] * 2
    assert "| run | pgd[steps=3] |" in stdout and "## ε = 0.15" in stdout


def test_compare_needs_a_dataset_when_no_artifact_records_one(trained, in_process):
    tmp, _ = trained
    code, _, stderr = in_process("compare", f"--artifacts={tmp}/export/cnn_int8.tflite")
    assert code == 2
    assert [line for line in stderr.splitlines() if line.startswith("error:")] == [
        "error: --dataset is needed: no artifact records its dataset in assets.extra/tfrobust.json "
        "(datasets: fashion_mnist, mnist, cifar10, cifar100, svhn)"], stderr[-2000:]


@pytest.mark.parametrize("program,names", [
    ("train", ["small_cnn", "wide_resnet", "fashion_mnist", "cifar10", "linf"]),
    ("compare", ["fashion_mnist", "svhn", "quick", "standard", "apgd-ce", "autoattack", "square", "attack_option"]),
    ("evaluate", ["cifar100", "quick", "fab-t", "attack_option"]),
    ("export", ["export_formats", "export_name", "tflite_int8", "mnist"]),
])
def test_help_lists_the_registered_names(in_process, program, names):
    code, stdout, _ = in_process(program, "--help")
    assert code in (0, 1)  # absl ends --help with status 1
    missing = [name for name in names if name not in stdout]
    assert not missing, stdout[-3000:]


def test_help_has_no_tensorflow_start_up_log_lines():
    # TensorFlow 2.21 logs its start-up (oneDNN, CUDA drivers) before absl's C++ logging reads
    # TF_CPP_MIN_LOG_LEVEL; the programs keep it out unless the user asks for it (TF_CPP_MIN_LOG_LEVEL=0).
    env = {k: v for k, v in ENV.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, os.path.join(ROOT, "export/compare.py"), "--help"], capture_output=True,
                            text=True, env=env, cwd=ROOT, check=False, timeout=600)
    assert "--attack_option" in result.stdout and "--artifacts" in result.stdout
    noise = [line for line in (result.stdout + result.stderr).splitlines()
             if re.match(r"^[IWEF]\d{4} \d\d:\d\d:", line) or "absl::InitializeLog" in line
             or "oneDNN" in line or "cuda" in line.lower()]
    assert not noise, noise
