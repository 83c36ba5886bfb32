"""Robust accuracy bookkeeping, suites and the artifact comparison (white-box and transfer rows)."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrobust import export
from tfrobust.attacks import FGSM, PGD, AutoAttack
from tfrobust.errors import TfrobustError
from tfrobust.evaluation import (agreement, artifact_label, as_target, build_suite, choose_surrogate, evaluate,
                                 plot_agreement, robust_accuracy, run_suite, write_report)


def linear_fn(weights):
    w = tf.constant(weights, tf.float32)
    return lambda x: tf.matmul(tf.reshape(x, [tf.shape(x)[0], -1]), w)


def test_robust_accuracy_matches_the_exact_answer_on_a_linear_model():
    # Binary linear model on 1-D inputs: logits (0.5, x). A point with label 1 (x > 0.5) survives an
    # L∞ attack of radius ε iff its margin x − 0.5 exceeds ε (margin 0.5 − x for label 0).
    model_fn = lambda x: tf.concat([tf.fill([tf.shape(x)[0], 1], 0.5), tf.reshape(x, [-1, 1])], 1)
    x = np.linspace(0.005, 0.995, 100, dtype=np.float32).reshape(-1, 1)  # no point exactly at ±ε
    y = (x[:, 0] > 0.5).astype(np.int64)
    eps = 0.2
    expected = np.abs(x[:, 0] - 0.5) > eps + 1e-6
    result = robust_accuracy(FGSM(eps=eps), model_fn, x, y, batch_size=16)
    np.testing.assert_array_equal(result["correct"], expected)
    assert result["accuracy"] == pytest.approx(expected.mean())
    assert result["counts"] == {"forward": 100, "backward": 100}  # every point was correct clean
    clean = robust_accuracy(None, model_fn, x, y)
    assert clean["accuracy"] >= result["accuracy"]


def test_broken_points_stay_broken_and_robust_never_exceeds_clean():
    rng = np.random.default_rng(0)
    model_fn = linear_fn(rng.normal(size=(6, 4)).astype(np.float32))
    x = rng.uniform(size=(40, 6)).astype(np.float32)
    y = rng.integers(0, 4, size=40)
    clean = robust_accuracy(None, model_fn, x, y)["correct"]
    robust = robust_accuracy(PGD(eps=0.05, steps=3), model_fn, x, y, batch_size=7)["correct"]
    assert not np.any(robust & ~clean)


def test_artifact_labels_follow_the_export_layout():
    assert artifact_label("runs/export/cnn/3", "saved_model") == "cnn@3:saved_model"
    assert artifact_label("runs/export/cnn", "saved_model") == "cnn:saved_model"
    assert artifact_label("http://h:8501/v1/models/cnn", "served_rest", 2, "cnn") == "cnn@2:served_rest"
    assert artifact_label("runs/export/cnn_int8.tflite", "tflite") == "cnn:tflite_int8"
    assert artifact_label("runs/export/my_net_dynamic.tflite", "tflite") == "my_net:tflite_dynamic"
    assert artifact_label("runs/export/cnn.keras", "keras") == "cnn:keras"
    assert artifact_label("elsewhere/model.tflite", "tflite") == "model:tflite"


class _Fake:
    def __init__(self, differentiable):
        self.differentiable = differentiable


def test_surrogate_choice_prefers_the_same_models_savedmodel():
    artifacts = {"a:keras": _Fake(True), "b:keras": _Fake(True), "b:saved_model": _Fake(True),
                 "b:tflite_int8": _Fake(False), "c:tflite_fp32": _Fake(False)}
    assert choose_surrogate("b:tflite_int8", artifacts) == "b:saved_model"
    assert choose_surrogate("c:tflite_fp32", artifacts) == "a:keras"
    assert choose_surrogate("c:tflite_fp32", artifacts, transfer_from="b:keras") == "b:keras"
    with pytest.raises(TfrobustError, match="not a differentiable artifact"):
        choose_surrogate("c:tflite_fp32", artifacts, transfer_from="c:tflite_fp32")
    with pytest.raises(TfrobustError, match="no differentiable artifact"):
        choose_surrogate("c:tflite_fp32", {"c:tflite_fp32": _Fake(False)})


def test_suites_by_name_and_list():
    assert list(build_suite("fgsm,pgd", norm="linf", eps=0.1)) == ["fgsm", "pgd"]
    assert build_suite("pgd", norm="l2", eps=0.5, overrides={"pgd": {"steps": 7}})["pgd"].steps == 7
    with pytest.raises(TfrobustError, match="unknown attack 'nope'; suites: quick, standard; attacks: "):
        build_suite("fgsm,nope", norm="linf", eps=0.1)


@pytest.fixture(scope="module")
def linear_artifacts(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(30, 6, 6, 1)).astype(np.float32)
    y = np.argmax(model(x).numpy(), axis=1)
    paths = export.export_all(model, str(tmp_path_factory.mktemp("export")), "lin", ["saved_model", "tflite_fp32"])
    artifacts = {artifact_label(p, a.format): a for p, a in
                 ((p, export.load(p)) for p in (paths["saved_model"], paths["tflite_fp32"]))}
    return model, artifacts, x, y


def test_gradient_attacks_on_a_model_without_gradients_need_a_surrogate(linear_artifacts):
    _, artifacts, x, y = linear_artifacts
    with pytest.raises(TfrobustError, match="needs input gradients .* gradient-free .* transfer"):
        run_suite(artifacts["lin:tflite_fp32"], x, y, build_suite("fgsm", norm="linf", eps=0.1))


def test_compare_reports_white_box_and_transfer_rows(linear_artifacts, tmp_path):
    _, artifacts, x, y = linear_artifacts
    report = evaluate(artifacts, x, y, eps=0.1, suite="fgsm,pgd", sanity_size=10)
    rows = {model["model"]: model for model in report["models"]}
    assert {r["mode"] for r in rows["lin@1:saved_model"]["rows"]} == {"white-box"}
    assert {r["mode"] for r in rows["lin:tflite_fp32"]["rows"]} == {"transfer from lin@1:saved_model"}
    for model in rows.values():
        assert model["clean"] == 1.0  # labels are the model's own predictions
        assert all(r["accuracy"] <= model["clean"] for r in model["rows"])
        assert model["worst_case"] <= min(r["accuracy"] for r in model["rows"])
    # fp32 TFLite computes the same function, so transfer from its own SavedModel is as strong.
    by_attack = {m: {r["attack"]: r["accuracy"] for r in rows[m]["rows"]} for m in rows}
    assert by_attack["lin:tflite_fp32"]["fgsm"] == pytest.approx(by_attack["lin@1:saved_model"]["fgsm"], abs=1 / 30)
    assert rows["lin@1:saved_model"]["sanity"] is not None and rows["lin:tflite_fp32"]["sanity"] is None
    markdown_path = write_report(report, str(tmp_path / "report"))
    text = open(markdown_path, encoding="utf-8").read()
    assert "| lin:tflite_fp32 | transfer from lin@1:saved_model |" in text
    saved = json.load(open(os.path.join(str(tmp_path / "report"), "report.json"), encoding="utf-8"))
    assert saved["models"][0]["rows"][1]["accuracy"] == report["models"][0]["rows"][1]["accuracy"]
    assert os.path.isfile(os.path.join(str(tmp_path / "report"), "curves.png"))


def test_surrogate_and_reference_match_model_and_version():
    artifacts = {"m@1:saved_model": _Fake(True), "m@2:saved_model": _Fake(True), "m@2:served_grpc": _Fake(False),
                 "m:tflite_int8": _Fake(False)}
    assert choose_surrogate("m@2:served_grpc", artifacts) == "m@2:saved_model"
    assert choose_surrogate("m:tflite_int8", artifacts) == "m@1:saved_model"
    masks = {label: {"clean": np.array([True, True, False, False])} for label in artifacts}
    masks["m@2:served_grpc"]["clean"] = np.array([True, False, True, False])  # loses #1, gains #2
    sections = {s["model"]: s for s in agreement(masks, artifacts)}
    assert set(sections) == {"m@2:served_grpc", "m:tflite_int8"}  # SavedModels are the references
    assert sections["m@2:served_grpc"]["reference"] == "m@2:saved_model"
    assert sections["m@2:served_grpc"]["rows"] == [{"attack": "clean", "lost": 1, "gained": 1, "lost_index": [1],
                                                    "gained_index": [2]}]
    assert sections["m:tflite_int8"]["rows"][0]["lost"] == 0



def test_agreement_grid_shows_the_lost_and_gained_points(tmp_path):
    report = {"agreement": [{"model": "m:int8", "reference": "m@1:saved_model", "rows": [
        {"attack": "clean", "lost": 0, "gained": 0, "lost_index": [], "gained_index": []},
        {"attack": "pgd", "lost": 2, "gained": 1, "lost_index": [0, 3], "gained_index": [5]}]}]}
    images = np.random.default_rng(0).uniform(size=(6, 4, 4, 1)).astype(np.float32)
    path = plot_agreement(report, images, str(tmp_path / "grid.png"))
    assert path and os.path.getsize(path) > 0
    report["agreement"][0]["rows"][1].update(lost=0, gained=0)
    assert plot_agreement(report, images, str(tmp_path / "none.png")) is None
    assert not os.path.exists(tmp_path / "none.png")


def test_autoattack_on_tflite_runs_square_against_the_tflite_model(linear_artifacts, tmp_path):
    # The routing fix: on a prediction-only target, AutoAttack's gradient components transfer from the
    # surrogate, and Square queries the target itself (its queries show in the artifact's counter).
    _, artifacts, x, y = linear_artifacts
    tflite, saved_model = artifacts["lin:tflite_fp32"], artifacts["lin@1:saved_model"]
    autoattack = AutoAttack(eps=0.03, version="fast")
    # Shortened for the test (tracing APGD-T's graphs would double its time): APGD-CE, then Square-100.
    autoattack.attacks = [(name, attack) for name, attack in autoattack.attacks if name != "apgd-t"]
    autoattack.attacks[-1][1].queries = 100
    before = tflite.queries
    result = run_suite(tflite, x, y, {"autoattack": autoattack}, surrogate=as_target(saved_model, "lin@1:saved_model"),
                       name="lin:tflite_fp32")
    row = result["rows"][0]
    assert row["mode"] == "transfer from lin@1:saved_model (apgd-ce); query-based on the target (square)"
    assert row["config"]["routes"] == {"apgd-ce": "transfer", "square": "target"}
    assert row["counts"]["surrogate_backward"] > 0
    survivors = int(round(row["accuracy"] * len(y)))
    assert 0 < survivors < len(y)
    # The fp32 file computes the surrogate's linear function, so the transferred APGD already found every
    # breakable point: Square's survivors each cost it 1 clean + 1 start + 100 queries, on the target.
    assert row["queries"] <= tflite.queries - before and row["queries"] >= 102 * survivors
    assert row["counts"]["forward"] >= 102 * survivors


def test_reports_keep_per_point_masks_and_the_agreement_table(linear_artifacts, tmp_path):
    _, artifacts, x, y = linear_artifacts
    report = evaluate(artifacts, x, y, eps=0.1, suite="fgsm,square", sanity_size=0,
                      suite_overrides={"square": {"queries": 20}})
    rows = {model["model"]: model for model in report["models"]}
    assert rows["lin:tflite_fp32"]["rows"][1]["mode"] == "query-based"
    assert rows["lin@1:saved_model"]["artifact"]["fingerprint"] == artifacts["lin@1:saved_model"].fingerprint
    masks = report["correct"]["lin:tflite_fp32"]
    np.testing.assert_array_equal(masks["worst_case"], masks["clean"] & masks["fgsm"] & masks["square"])
    write_report(report, str(tmp_path), images=x)
    saved = np.load(os.path.join(str(tmp_path), "correct.npz"))
    np.testing.assert_array_equal(saved["lin:tflite_fp32/fgsm"], masks["fgsm"])
    text = open(os.path.join(str(tmp_path), "report.md"), encoding="utf-8").read()
    section = report["agreement"][0]
    assert section["model"] == "lin:tflite_fp32" and section["reference"] == "lin@1:saved_model"
    cells = " | ".join(f"−{r['lost']} / +{r['gained']}" for r in section["rows"])
    assert f"| lin:tflite_fp32 | lin@1:saved_model | {cells} |" in text
    square = rows["lin:tflite_fp32"]["rows"][1]
    assert f"| lin:tflite_fp32 | square | query-based | {square['queries']} |" in text
    assert square["queries"] >= square["counts"]["forward"] > 0
