"""Robust accuracy bookkeeping and the artifact comparison (white-box and transfer rows)."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrobust import export
from tfrobust.attacks import FGSM, PGD
from tfrobust.errors import TfrobustError
from tfrobust.evaluation import artifact_label, choose_surrogate, compare_artifacts, robust_accuracy, write_report


def linear_fn(weights):
    w = tf.constant(weights, tf.float32)
    return lambda x: tf.matmul(tf.reshape(x, [tf.shape(x)[0], -1]), w)


def test_robust_accuracy_matches_the_exact_answer_on_a_linear_model():
    # Binary linear model on 1-D inputs: logits (x, 0.5). A point x with label 1 (x < 0.5 is wrong)
    # survives an L∞ attack of radius ε iff its margin x − 0.5 exceeds ε (margin 0.5 − x for label 0).
    model_fn = lambda x: tf.concat([tf.fill([tf.shape(x)[0], 1], 0.5), tf.reshape(x, [-1, 1])], 1)  # noqa
    x = np.linspace(0.005, 0.995, 100, dtype=np.float32).reshape(-1, 1)  # no point exactly at ±ε
    y = (x[:, 0] > 0.5).astype(np.int64)
    eps = 0.2
    expected = np.abs(x[:, 0] - 0.5) > eps + 1e-6
    result = robust_accuracy(FGSM(eps=eps), model_fn, x, y, batch_size=16)
    np.testing.assert_array_equal(result["correct"], expected)
    assert result["accuracy"] == pytest.approx(expected.mean())
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
    assert artifact_label("runs/export/cnn/3", "saved_model") == "cnn:saved_model"
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


def test_compare_reports_white_box_and_transfer_rows(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(30, 6, 6, 1)).astype(np.float32)
    y = np.argmax(model(x).numpy(), axis=1)
    paths = export.export_all(model, str(tmp_path / "export"), "lin", ["saved_model", "tflite_fp32"])
    artifacts = {artifact_label(p, a.format): a for p, a in
                 ((p, export.load(p)) for p in (paths["saved_model"], paths["tflite_fp32"]))}
    report = compare_artifacts(artifacts, x, y, eps=0.1, pgd_steps=5)
    rows = {row["artifact"]: row for row in report["rows"]}
    assert rows["lin:saved_model"]["mode"] == "white-box"
    assert rows["lin:tflite_fp32"]["mode"] == "transfer from lin:saved_model"
    for row in rows.values():
        assert row["clean"] == 1.0  # labels are the model's own predictions
        assert row["pgd"] <= row["clean"] and row["fgsm"] <= row["clean"]
    # fp32 TFLite computes the same function, so transfer from its own SavedModel is as strong.
    assert rows["lin:tflite_fp32"]["pgd"] == pytest.approx(rows["lin:saved_model"]["pgd"], abs=1 / 30)
    assert rows["lin:saved_model"]["pgd"] < 1.0
    markdown_path = write_report(report, str(tmp_path / "report"))
    text = open(markdown_path, encoding="utf-8").read()
    assert "| lin:tflite_fp32 | tflite | transfer from lin:saved_model |" in text
    saved = json.load(open(os.path.join(str(tmp_path / "report"), "report.json"), encoding="utf-8"))
    assert saved["rows"][0]["pgd"] == report["rows"][0]["pgd"]
