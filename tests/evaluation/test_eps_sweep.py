"""ε sweeps: one ε is exactly ``evaluate``'s report; several give a section per ε and accuracy-vs-ε for
every attack, checked on a linear model whose robust accuracy at each ε is known in closed form."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfrobust.errors import TfrobustError
from tfrobust.evaluation import evaluate
from tfrobust.evaluation.eps_sweep import evaluate_eps_sweep, is_sweep, sweep_markdown, write_sweep_report


@pytest.fixture(scope="module")
def one_dimensional_problem():
    # Logits (0.5, x): a point survives an L∞ attack of radius ε iff |x − 0.5| > ε.
    model_fn = lambda x: tf.concat([tf.fill([tf.shape(x)[0], 1], 0.5), tf.reshape(x, [-1, 1])], 1)
    x = np.linspace(0.005, 0.995, 24, dtype=np.float32).reshape(-1, 1)
    y = (x[:, 0] > 0.5).astype(np.int64)
    return model_fn, x, y


def test_one_eps_is_exactly_the_evaluate_report(one_dimensional_problem):
    model_fn, x, y = one_dimensional_problem
    options = dict(suite="fgsm", sanity_size=0, batch_size=16, title="t")
    single = evaluate_eps_sweep({"lin": model_fn}, x, y, eps_values=[0.2], **options)
    reference = evaluate({"lin": model_fn}, x, y, eps=0.2, **options)
    assert not is_sweep(single) and single["threat_model"] == {"norm": "linf", "eps": 0.2}
    rows = single["models"][0]["rows"]
    assert [r["accuracy"] for r in rows] == [r["accuracy"] for r in reference["models"][0]["rows"]]


def test_several_eps_give_sections_and_exact_accuracy_vs_eps_for_every_attack(one_dimensional_problem, tmp_path):
    model_fn, x, y = one_dimensional_problem
    eps_values = [0.05, 0.2, 0.35]
    sweep = evaluate_eps_sweep({"lin": model_fn}, x, y, eps_values=eps_values, suite="fgsm,pgd",
                               suite_overrides={"pgd": {"steps": 2}}, sanity_size=0, batch_size=24, title="Sweep")
    assert is_sweep(sweep) and sweep["threat_model"] == {"norm": "linf", "eps": eps_values}
    assert [s["threat_model"]["eps"] for s in sweep["sections"]] == eps_values
    expected = [float(np.mean(np.abs(x[:, 0] - 0.5) > eps + 1e-6)) for eps in eps_values]
    curves = {c["attack"]: c["accuracy"] for c in sweep["accuracy_vs_eps"]}
    assert list(curves) == ["clean", "fgsm", "pgd", "worst case"]
    assert curves["clean"] == [1.0] * 3
    for attack in ("fgsm", "pgd", "worst case"):
        assert curves[attack] == pytest.approx(expected), attack
    assert expected[0] > expected[1] > expected[2]  # the sweep separates the budgets

    path = write_sweep_report(sweep, str(tmp_path))
    text = open(path, encoding="utf-8").read()
    assert f"| lin | pgd | {100 * expected[0]:.2f} | {100 * expected[1]:.2f} | {100 * expected[2]:.2f} |" in text
    assert text == sweep_markdown(sweep) and text.count("## ε = ") == 3
    saved = json.load(open(tmp_path / "report.json", encoding="utf-8"))
    assert saved["accuracy_vs_eps"] == json.loads(json.dumps(sweep["accuracy_vs_eps"]))
    for eps in eps_values:  # every ε keeps the usual files, per-point masks included
        assert (tmp_path / f"eps_{eps:g}" / "report.json").is_file()
        masks = np.load(os.path.join(tmp_path, f"eps_{eps:g}", "correct.npz"))
        np.testing.assert_array_equal(masks["lin/pgd"], np.abs(x[:, 0] - 0.5) > eps + 1e-6)
    assert (tmp_path / "accuracy_vs_eps.png").stat().st_size > 1000


def test_repeated_or_missing_eps_are_refused(one_dimensional_problem):
    model_fn, x, y = one_dimensional_problem
    with pytest.raises(TfrobustError, match="ε values repeat: 0.1, 0.1"):
        evaluate_eps_sweep({"lin": model_fn}, x, y, eps_values=[0.1, 0.1], suite="fgsm", sanity_size=0)
    with pytest.raises(TfrobustError, match="at least one ε"):
        evaluate_eps_sweep({"lin": model_fn}, x, y, eps_values=[], suite="fgsm", sanity_size=0)
