"""Defense-specific evaluation recipes (CIFS β sweep, ODE recipe, EOT) and analyses, on tiny models."""

import json

import numpy as np
import pytest

from tfrobust import models
from tfrobust.attacks import FGSM, PGD
from tfrobust.evaluation import defense_analyses as analyses
from tfrobust.evaluation.robustness import robust_accuracy

X = np.random.default_rng(0).uniform(size=(8, 8, 8, 1)).astype(np.float32)


def _labels(model):
    """Labels = the model's own predictions, so every point starts correct (attacks have work to do)."""
    return np.argmax(model(X).numpy(), axis=-1)


def test_cifs_adaptive_evaluation_reports_the_worst_case_over_betas():
    model = models.build("cifs_resnet10", (8, 8, 1), 3, width=0.0625)
    y = _labels(model)
    assert analyses.BETAS == (0.0, 0.1, 1.0, 2.0, 10.0, 100.0, float("inf"))  # the thesis' sweep (default)
    result = analyses.cifs_adaptive_evaluation(
        model, X, y, lambda loss: PGD(eps=0.05, steps=2, loss=loss, seed=1), betas=(0, 2, float("inf")),
        batch_size=8)
    labels = [row["label"] for row in result["rows"]]
    assert labels == ["beta=0", "beta=2", "beta=inf", "beta=inf:stage3_block1_cifs", "beta=inf:stage4_block1_cifs"]
    assert result["clean"] == 1.0
    assert result["worst_case"] <= min(row["accuracy"] for row in result["rows"])
    assert result["strongest"] in labels and result["mask_path"] == "full"
    # β = 0 is plain cross-entropy on the final logits.
    plain = robust_accuracy(PGD(eps=0.05, steps=2, seed=1), lambda images: model(images, training=False), X, y)
    np.testing.assert_array_equal(result["correct"]["beta=0"], plain["correct"])


def test_ode_evaluation_runs_the_recipe():
    model = models.build("tisode", (8, 8, 1), 3, width=0.0625, solver="euler", steps=4)
    y = _labels(model)
    surrogate = analyses.ode_surrogate(model, steps=2)
    assert [(b.solver, b.steps) for b in surrogate.layers if b.name == "ode"] == [("rk4", 2)]
    for copied, original in zip(surrogate.trainable_weights, model.trainable_weights):  # same weights
        np.testing.assert_array_equal(copied.numpy(), original.numpy())
    assert analyses.ode_surrogate(models.build("tisode", (8, 8, 1), 3, width=0.0625, solver="dopri5")
                                  ).get_layer("ode").steps == 8
    result = analyses.ode_evaluation(model, X[:4], y[:4], eps=0.1, pgd_steps=2, surrogate_steps=2,
                                     square_queries=4, spsa_steps=1, spsa_samples=2, batch_size=4)
    names = [row["attack"] for row in result["rows"]]
    assert names[0] == "pgd-2" and "fixed-step rk4 surrogate" in names[1]
    assert [row["mode"] for row in result["rows"]] == [
        "white-box", "transfer from the fixed-step rk4 surrogate (2 steps)", "query-based", "query-based"]
    assert names[2:] == ["square-4", "spsa-1"]
    assert result["worst_case"] <= min(row["accuracy"] for row in result["rows"])


def test_accuracy_nfe_vs_tolerance_with_json_and_png(tmp_path):
    model = models.build("tisode", (8, 8, 1), 3, width=0.0625, steps=2)
    y = _labels(model)
    rows = analyses.accuracy_nfe_vs_tolerance(model, X[:2], y[:2], tolerances=(1e-1, 1e-4), batch_size=2)
    assert [row["tolerance"] for row in rows] == [1e-1, 1e-4]
    assert 0 < rows[0]["nfe"] < rows[1]["nfe"] and rows[1]["clean"] == 1.0  # tighter: more evaluations
    assert all("robust" not in row for row in rows)
    png = analyses.plot_accuracy_nfe_vs_tolerance(rows, str(tmp_path / "tolerance.png"))
    assert (tmp_path / "tolerance.png").stat().st_size > 0 and png.endswith(".png")
    analyses.save_json({"rows": rows}, str(tmp_path / "tolerance.json"))
    assert json.loads((tmp_path / "tolerance.json").read_text())["rows"] == rows


@pytest.mark.slow  # an attack through DormandPrince's adjoint per tolerance: ≈ 30 s
def test_accuracy_vs_tolerance_under_attack():
    model = models.build("tisode", (8, 8, 1), 3, width=0.0625, steps=2)
    y = _labels(model)
    rows = analyses.accuracy_nfe_vs_tolerance(model, X[:4], y[:4], tolerances=(1e-1, 1e-3),
                                              attack=FGSM(eps=0.05), batch_size=4)
    assert all(0 <= row["robust"] <= row["clean"] for row in rows)


def test_save_json_writes_numpy_and_infinite_values(tmp_path):
    path = analyses.save_json({"beta": float("inf"), "order": np.arange(3), "accuracy": np.float32(0.5),
                               "correct": {"clean": np.array([True, False])}}, str(tmp_path / "r.json"))
    assert json.loads(open(path, encoding="utf-8").read()) == {
        "beta": "inf", "order": [0, 1, 2], "accuracy": 0.5, "correct": {"clean": [True, False]}}
    assert not (tmp_path / "r.json.tmp").exists()


def test_eot_evaluation_flags_randomised_models_only():
    randomised = models.build("odenet_cnn", (8, 8, 1), 3, width=0.0625, input_randomization=(8, 11),
                              input_randomization_seed=0)
    y = np.zeros(8, np.int64)
    result = analyses.eot_evaluation(randomised, X, y, FGSM(eps=0.05), samples=2, batch_size=8)
    assert result["stochastic"] and result["logits_std"] > analyses.STOCHASTIC_THRESHOLD
    assert [row["attack"] for row in result["rows"]] == ["direct", "EOT-2 (logits)"]
    assert result["worst_case"] <= min(row["accuracy"] for row in result["rows"])
    deterministic = models.build("odenet_cnn", (8, 8, 1), 3, width=0.0625)
    assert not analyses.eot_evaluation(deterministic, X, y, FGSM(eps=0.05), samples=1, batch_size=8)["stochastic"]


def test_channel_activations_and_plot(tmp_path):
    model = models.build("odenet_cnn", (8, 8, 1), 3, width=0.125)
    y = np.array([0, 1, 2, 0, 1, 2, 0, 0])
    x_adv = np.clip(X + 0.05 * np.sign(np.random.default_rng(1).standard_normal(X.shape)), 0, 1).astype(np.float32)
    result = analyses.channel_activations(model, X, y, 0, x_adv=x_adv)
    weights = model.get_layer("logits").kernel.numpy()[:, 0]
    assert result["count"] == 4 and len(result["order"]) == 8
    np.testing.assert_allclose(result["weights"], np.sort(weights)[::-1])
    assert model.get_layer("features").output.shape[-1] == 8
    peak = max(np.max(np.abs(result["natural"]["mean"])), np.max(np.abs(result["adversarial"]["mean"])))
    assert peak == pytest.approx(1.0)
    assert np.all((0 <= result["natural"]["frequency"]) & (result["natural"]["frequency"] <= 1))
    path = analyses.plot_channel_activations(result, str(tmp_path / "channels.png"))
    assert (tmp_path / "channels.png").stat().st_size > 0 and path.endswith(".png")
    saved = json.loads(open(analyses.save_json(result, str(tmp_path / "channels.json")), encoding="utf-8").read())
    assert saved["order"] == result["order"].tolist() and saved["count"] == 4


def test_top_k_accuracy():
    model = models.build("odenet_cnn", (8, 8, 1), 3, width=0.0625)
    logits = model(X).numpy()
    y = np.argsort(-logits, axis=1)[:, 1]  # every label is the runner-up
    assert analyses.top_k_accuracy(model, X, y, ks=(1, 2, 3)) == {1: 0.0, 2: 1.0, 3: 1.0}
    attacked = analyses.top_k_accuracy(model, X, _labels(model), FGSM(eps=0.2), ks=(1, 3))
    assert attacked[1] <= attacked[3] == 1.0
