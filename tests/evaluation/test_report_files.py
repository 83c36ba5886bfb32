"""The files write_report produces from a synthetic report: report.html (rendered in headless Chromium),
RobustBench-shaped leaderboard entries, TensorBoard event files, and the refusal to overwrite a report."""

import glob
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfrobust.errors import TfrobustError
from tfrobust.evaluation import write_report
from tfrobust.evaluation.html_report import html_page
from tfrobust.evaluation.leaderboard import eps_text, leaderboard_entry

CHROMIUM = "/usr/bin/chromium"


def _row(attack, accuracy, config, mode="white-box", **extra):
    return {"attack": attack, "mode": mode, "accuracy": accuracy, "seconds": 1.25,
            "counts": {"forward": 64, "backward": 32}, "config": config, **extra}


def synthetic_report(autoattack=False):
    """A report as ``evaluate`` returns it, with numbers no real run produced (nothing is attacked here)."""
    flags = [{"check": "iterative_not_stronger", "flagged": True, "detail": "FGSM 41.0% vs PGD-20 41.5%",
              "explanation": "PGD should beat FGSM; <gradient masking> is likely"},
             {"check": "stochastic", "flagged": False, "detail": "std 0", "explanation": "randomness check"}]
    curves = {"accuracy_vs_eps": [{"eps": 0.05, "accuracy": 0.6}, {"eps": 0.1, "accuracy": 0.43},
                                  {"eps": 0.2, "accuracy": 0.1}, {"eps": 1.0, "accuracy": 0.0}],
              "accuracy_vs_steps": [{"steps": 1, "accuracy": 0.5}, {"steps": 10, "accuracy": 0.45},
                                    {"steps": 100, "accuracy": 0.43}], "unbounded_eps": 1.0}
    second = ({"name": "AutoAttack", "version": "standard", "eps": 0.1} if autoattack
              else {"name": "Square", "eps": 0.1, "queries": 1000})
    models = [
        {"model": "cnn@1:saved_model", "num_examples": 64, "clean": 0.875,
         "rows": [_row("PGD-20", 0.4375, {"name": "PGD", "steps": 20, "eps": 0.1}),
                  _row("AutoAttack" if autoattack else "Square-1000", 0.40625, second, queries=6400)],
         "worst_case": 0.390625, "sanity": {"flags": flags, "curves": curves},
         "artifact": {"path": "runs/export/cnn/1", "format": "saved_model", "version": 1,
                      "fingerprint": "fp-1234"}},
        {"model": "cnn:tflite_int8", "num_examples": 64, "clean": 0.859375,
         "rows": [_row("PGD-20", 0.453125, {"name": "Transfer"}, mode="transfer"),
                  _row("AutoAttack" if autoattack else "Square-1000", 0.421875, second, mode="prediction-only")],
         "worst_case": 0.40625, "sanity": None, "future_key": {"x": 1}},
    ]
    return {"title": "Synthetic <report>", "threat_model": {"norm": "linf", "eps": 0.1}, "num_examples": 64,
            "suite": "standard" if autoattack else "quick", "dataset": "fashion_mnist", "models": models,
            "agreement": [{"model": "cnn:tflite_int8", "reference": "cnn@1:saved_model",
                           "rows": [{"attack": "clean", "lost": 2, "gained": 1, "lost_index": [3, 9],
                                     "gained_index": [5]}]}],
            "correct": {"cnn@1:saved_model": {"clean": np.arange(64) % 8 != 0},
                        "cnn:tflite_int8": {"clean": np.arange(64) % 7 != 0}},
            "provenance": {"date": "2026-11-30T12:00:00+00:00", "command": "compare.py --suite=quick",
                           "tfrobust": "0.1.0"}}


def test_html_escapes_values_and_renders_every_section():
    page = html_page(synthetic_report(), figures={"curves": b"\x89PNG fake"})
    assert "Synthetic &lt;report&gt;" in page and "<report>" not in page
    assert "&lt;gradient masking&gt;" in page  # explanations escaped too
    for text in ("cnn@1:saved_model", "87.50", "43.75", "39.06", "Gradient-masking sanity checks",
                 "Per-point agreement", "−2 / +1", "fp-1234", "Attack configurations", "steps=20",
                 "compare.py --suite=quick",
                 "future_key", "data:image/png;base64,iVBORyBmYWtl", "39.06 (not AutoAttack — an upper bound)"):
        assert text in page, text
    standard = synthetic_report(autoattack=True)
    standard_page = html_page(standard)
    assert "39.06</td>" in standard_page and "39.06 (not AutoAttack" not in standard_page
    # AutoAttack transferred to the TFLite file bounds its robustness from above only.
    assert f"{100 * 0.40625:.2f} (not AutoAttack — an upper bound)" in standard_page
    assert "http://" not in page and "https://" not in page and "<script" not in page  # self-contained


def test_leaderboard_entry_has_autoattack_only_when_the_suite_ran_it():
    quick = synthetic_report()
    entry = leaderboard_entry(quick, quick["models"][0])
    assert entry["autoattack_acc"] is None and entry["worst_case_suite"] == "quick"
    assert entry["clean_acc"] == "87.50" and entry["worst_case_acc"] == "39.06"
    assert (entry["threat_model"], entry["eps"], entry["dataset"]) == ("Linf", "0.1", "fashion_mnist")
    assert entry["attack_queries"] == 6400 and entry["number_forward_passes"] is None
    assert entry["attack_forward_passes"] == 128  # 64 counted by each of the two rows
    assert entry["artifact"]["fingerprint"] == "fp-1234" and entry["date"] == "2026-11-30"
    standard = synthetic_report(autoattack=True)
    assert leaderboard_entry(standard, standard["models"][0])["autoattack_acc"] == "39.06"
    assert eps_text(8 / 255, "linf") == "8/255" and eps_text(0.5, "l2") == "0.5"


def _scalars(run_dir):
    values = {}
    for path in glob.glob(os.path.join(run_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                values.setdefault(value.tag, []).append((event.step, tf.make_ndarray(value.tensor)))
    return values


def test_write_report_files_tensorboard_and_overwrite_refusal(tmp_path):
    out = str(tmp_path / "eval")
    images = np.random.default_rng(0).uniform(size=(64, 28, 28, 1)).astype(np.float32)
    adversarial = {"cnn@1:saved_model": {"PGD-20": images[:8] * 0.5}}
    write_report(synthetic_report(), out, images=images, adversarial=adversarial)
    assert {"report.json", "report.md", "report.html", "curves.png", "agreement.png", "correct.npz", "leaderboard",
            "tensorboard"} <= set(os.listdir(out))
    assert np.load(os.path.join(out, "correct.npz"))["cnn@1:saved_model/clean"].sum() == 56
    page = open(os.path.join(out, "report.html"), encoding="utf-8").read()
    assert page.count("data:image/png;base64,") == 2  # curves and the agreement grid, inline
    assert not [name for name in os.listdir(out) if name.startswith(".tmp")]
    entry = json.load(open(os.path.join(out, "leaderboard", "cnn@1_saved_model.json"), encoding="utf-8"))
    assert entry["clean_acc"] == "87.50"
    assert sorted(os.listdir(os.path.join(out, "leaderboard"))) == ["cnn@1_saved_model.json",
                                                                    "cnn_tflite_int8.json"]

    scalars = _scalars(os.path.join(out, "tensorboard", "cnn@1_saved_model"))
    assert float(scalars["accuracy/clean"][0][1]) == pytest.approx(0.875)
    assert float(scalars["accuracy/PGD-20"][0][1]) == pytest.approx(0.4375)
    assert float(scalars["accuracy/worst_case"][0][1]) == pytest.approx(0.390625)
    assert [step for step, _ in scalars["sanity/pgd_accuracy_vs_eps"]] == [50, 100, 200]  # unbounded ε left out
    assert [step for step, _ in scalars["sanity/pgd_accuracy_vs_steps"]] == [1, 10, 100]
    strip = tf.image.decode_png(scalars["points/clean"][0][1][2]).numpy()
    assert strip.shape == (28, 8 * 28, 1)
    assert "points/adversarial/PGD-20" in scalars
    assert "sanity/pgd_accuracy_vs_eps" not in _scalars(os.path.join(out, "tensorboard", "cnn_tflite_int8"))

    with pytest.raises(TfrobustError, match="already holds another run's report.*--overwrite"):
        write_report(synthetic_report(), out)
    second = synthetic_report()
    second["models"] = second["models"][:1]
    del second["agreement"], second["correct"]
    write_report(second, out, overwrite=True)
    assert os.listdir(os.path.join(out, "leaderboard")) == ["cnn@1_saved_model.json"]  # no stale entry
    assert not os.path.exists(os.path.join(out, "correct.npz")) and not os.path.exists(
        os.path.join(out, "agreement.png"))  # nor the overwritten run's masks and grid


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (make test installs it)")
def test_report_html_renders_in_headless_chromium(tmp_path):
    out = str(tmp_path / "eval")
    write_report(synthetic_report(), out)
    url = "file://" + os.path.join(out, "report.html")
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              f"--user-data-dir={tmp_path / 'profile'}"]
    shot = str(tmp_path / "report.png")
    subprocess.run(common + [f"--screenshot={shot}", "--window-size=1200,900", url], check=True, timeout=60,
                   capture_output=True)
    pixels = np.asarray(Image.open(shot).convert("L"), np.float32)
    assert pixels.shape == (900, 1200) and pixels.std() > 10  # text, tables and the figure, not a blank page
    dom = subprocess.run(common + ["--dump-dom", url], check=True, timeout=60, capture_output=True,
                         text=True).stdout
    for text in ("cnn@1:saved_model", "cnn:tflite_int8", "<td class=\"num\">87.50</td>",
                 "<td class=\"num\">43.75</td>", "iterative_not_stronger"):
        assert text in dom, text
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)
