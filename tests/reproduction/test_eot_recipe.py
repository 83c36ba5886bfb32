"""The "eot" adaptive recipe of the reproductions: on a randomised toy model whose single-pass gradients are
noise, PGD through EOT breaks what plain PGD cannot; its masks join ``strongest``; recipes combine ("ode+eot");
bad options are refused with one clear error."""

import keras
import numpy as np
import pytest
from keras import ops

from tfrobust import models
from tfrobust.attacks import PGD
from tfrobust.errors import TfrobustError
from tfrobust.evaluation.robustness import robust_accuracy
from tfrobust.evaluation.target import as_target
from tfrobust.reproduction import model_evaluation
from tfrobust.reproduction.model_evaluation import (STANDARD_KEYS, STRONGEST, eot_recipe, evaluate_model, options_for,
                                                    recipe_parts)

EPS = 0.1
MARGIN = 0.9  # logit margin of every point: 9 ε, reachable only by moving most of the 16 pixels by −ε


class ShatteredLinear(keras.layers.Layer):
    """Logit 0 is ``sum(x) − bias + a·s·Σ sin(k·x_i)/k`` with a random sign s per example and call; the other
    three logits are constants (4 classes, so AutoAttack's targeted DLR applies). The random term moves the logit
    by at most 16·a/k = 0.016 (predictions are stable) but contributes ±a·cos(k·x_i) = up to ±10 to every input
    gradient, so one pass's gradient sign is noise; its expectation over s is the linear part's, all ones."""

    def __init__(self, bias, amplitude=10.0, frequency=1e4, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.bias, self.amplitude, self.frequency = bias, amplitude, frequency
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x):
        flat = ops.reshape(x, (-1, 16))
        sign = ops.sign(keras.random.uniform((ops.shape(flat)[0], 1), -1.0, 1.0, seed=self.seed_generator))
        shatter = ops.sum(ops.sin(self.frequency * flat), axis=1, keepdims=True) / self.frequency
        logit = ops.sum(flat, axis=1, keepdims=True) - self.bias + self.amplitude * sign * shatter
        rest = ops.zeros_like(logit)
        return ops.concatenate([logit, rest, rest - 5.0, rest - 5.0], axis=1)


def _toy():
    inputs = keras.Input((4, 4, 1))
    return keras.Model(inputs, ShatteredLinear(8.0 - MARGIN)(inputs))


@pytest.fixture(scope="module")
def points():
    x = (0.5 + np.random.default_rng(0).uniform(-0.05, 0.05, (8, 4, 4, 1))).astype(np.float32)
    return x, np.zeros(8, np.int64)


def test_pgd_through_eot_breaks_what_single_pass_pgd_cannot(points):
    x, y = points
    model = _toy()
    target = as_target(model)
    plain = robust_accuracy(PGD(norm="linf", eps=EPS, steps=20, seed=0), target.logits_fn, x, y,
                            predict_fn=target.predict, batch_size=8)
    summary, masks = eot_recipe(model, x, y, eps=EPS, eot_steps=20, eot_samples=16, eot_repeats=4,
                                eot_autoattack=False, batch_size=8)
    assert plain["accuracy"] == 1.0  # single-pass gradients: a random walk that never crosses 9 ε
    assert list(masks) == ["eot-pgd-20x16"] and masks["eot-pgd-20x16"].shape == (8,)
    assert masks["eot-pgd-20x16"].dtype == bool and masks["eot-pgd-20x16"].mean() <= 0.25
    (row,) = summary["rows"]
    assert row["label"] == "eot-pgd-20x16" and row["accuracy"] == masks["eot-pgd-20x16"].mean()
    assert 0.0 <= row["expected"] <= 0.25
    assert summary["stochastic"] and summary["logits_std"] > 1e-5 and summary["expected_clean"] == 1.0
    assert summary["worst_case"] == row["accuracy"]
    # EOT dropped (one pass per gradient): the attack is plain PGD again and the points stand.
    _, dropped = eot_recipe(model, x, y, eps=EPS, eot_steps=20, eot_samples=1, eot_repeats=2, eot_autoattack=False,
                            batch_size=8)
    assert dropped["eot-pgd-20x1"].mean() >= 0.75


def _fake_standard_suite():
    """``evaluation.evaluate`` stand-in: a standard suite that broke no point (so ``strongest`` can only fall
    through the adaptive rows), sanity flags included."""

    def evaluate(models_, x, y, **kwargs):
        (name,) = models_
        ones = np.ones(len(y), bool)
        rows = [{"attack": a, "accuracy": 1.0, "seconds": 0.0, "mode": "white-box"} for a in STANDARD_KEYS[1:4]]
        return {"models": [{"clean": 1.0, "rows": rows, "worst_case": 1.0,
                            "sanity": {"flags": [{"check": "stochastic", "flagged": True, "detail": "d"}]}}],
                "correct": {name: {key: ones.copy() for key in STANDARD_KEYS}}}

    return evaluate


def test_evaluate_model_folds_the_eot_rows_into_strongest(points, monkeypatch):
    x, y = points
    monkeypatch.setattr(model_evaluation, "evaluate", _fake_standard_suite())
    result, masks = evaluate_model(_toy(), x, y, eps=EPS, adaptive="eot", batch_size=8, name="toy",
                                   adaptive_options={"eot_steps": 20, "eot_samples": 16, "eot_repeats": 2,
                                                     "eot_autoattack": False})
    assert set(masks) == {*STANDARD_KEYS, STRONGEST, "adaptive:eot-pgd-20x16"}
    assert np.array_equal(masks[STRONGEST], masks["worst_case"] & masks["adaptive:eot-pgd-20x16"])
    assert result["strongest"] <= 0.25 and result["flagged"] == ["stochastic"]
    for key, mask in masks.items():
        assert mask.shape == (8,) and not np.any(masks[STRONGEST] & ~mask), key  # strongest is below every row
    assert result["adaptive"]["options"] == {"eot_steps": 20, "eot_samples": 16, "eot_repeats": 2,
                                             "eot_autoattack": False}


def test_recipes_parse_and_each_model_gets_its_share_of_the_options():
    assert recipe_parts(None) == () and recipe_parts("eot") == ("eot",)
    assert recipe_parts("ode+eot") == ("ode", "eot")
    for bad in ("bpda", "ode+ode", "ode+bpda", "ode+"):
        with pytest.raises(TfrobustError, match="unknown adaptive recipe"):
            recipe_parts(bad)
    claim_options = {"spsa_steps": 10, "eot_samples": 10, "eot_autoattack": False}
    assert options_for(None, claim_options) == {}
    assert options_for("ode", claim_options) == {"spsa_steps": 10}
    assert options_for("eot", claim_options) == {"eot_samples": 10, "eot_autoattack": False}
    assert options_for("ode+eot", claim_options) == claim_options
    with pytest.raises(TfrobustError, match=r"unknown adaptive options \['eot_sample'\]"):
        options_for("eot", {"eot_sample": 10})


@pytest.mark.parametrize("options, message", [
    ({"eot_autoattack": "yes"}, "eot_autoattack must be true or false, got 'yes'"),
    ({"eot_samples": 0}, "eot_samples must be an integer >= 1, got 0"),
    ({"eot_steps": 2.5}, "eot_steps must be an integer >= 1, got 2.5"),
    ({"eot_repeats": 1}, "eot_repeats must be an integer >= 2, got 1"),
])
def test_bad_eot_options_are_refused(points, options, message):
    x, y = points
    with pytest.raises(TfrobustError, match=message) as error:
        eot_recipe(_toy(), x[:2], y[:2], eps=EPS, **options)
    assert "\n" not in str(error.value)


def test_evaluate_model_refuses_options_of_another_recipe(points):
    x, y = points
    with pytest.raises(TfrobustError, match=r"unknown options \['spsa_steps'\] for the adaptive recipe 'eot'"):
        evaluate_model(_toy(), x[:2], y[:2], eps=EPS, adaptive="eot", adaptive_options={"spsa_steps": 5})
    with pytest.raises(TfrobustError, match="unknown adaptive recipe 'ode\\+cifs\\+ode'"):
        evaluate_model(_toy(), x[:2], y[:2], eps=EPS, adaptive="ode+cifs+ode")


@pytest.mark.slow  # the ODE recipe (PGD, RK4 surrogate, Square, SPSA) and EOT-PGD on a tiny randomised TisODE
def test_ode_and_eot_together_on_a_randomised_tisode(monkeypatch):
    keras.utils.set_random_seed(0)
    model = models.build("tisode", (8, 8, 1), 4, width=0.0625, steps=2, input_randomization=(8, 10),
                         input_randomization_seed=0)
    x = np.random.default_rng(1).random((6, 8, 8, 1), dtype=np.float32)
    y = np.argmax(model(x).numpy(), axis=1)
    monkeypatch.setattr(model_evaluation, "evaluate", _fake_standard_suite())
    options = {"pgd_steps": 3, "square_queries": 20, "spsa_steps": 2, "spsa_samples": 4, "eot_steps": 3,
               "eot_samples": 2, "eot_repeats": 2, "eot_autoattack": False}
    result, masks = evaluate_model(model, x, y, eps=0.05, adaptive="ode+eot", batch_size=6, name="tiny",
                                   adaptive_options=options)
    adaptive_keys = sorted(k for k in masks if k.startswith("adaptive:"))
    assert "adaptive:eot-pgd-3x2" in adaptive_keys and "adaptive:spsa-2" in adaptive_keys
    assert [row["label"] for row in result["adaptive"]["rows"]] == [k.split(":", 1)[1] for k in masks
                                                                    if k.startswith("adaptive:")]
    joint = np.logical_and.reduce([masks[k] for k in adaptive_keys])
    assert np.array_equal(masks[STRONGEST], masks["worst_case"] & joint)
    assert result["adaptive"]["worst_case"] == pytest.approx(joint.mean())
    assert [part["recipe"].split(":")[0] for part in result["adaptive"]["parts"]] == ["ODE recipe", "EOT"]
    assert result["adaptive"]["options"] == options


def test_recipe_settings_record_every_recipes_defaults_a_model_runs_with():
    # What the runner saves beside an evaluation: a change of a recipe's defaults must not reuse an old evaluation.
    from tfrobust.reproduction.model_evaluation import EOT_DEFAULTS, RECIPE_DEFAULTS, recipe_settings

    assert EOT_DEFAULTS == {"eot_steps": 100, "eot_samples": 20, "eot_repeats": 10, "eot_autoattack": True}
    assert RECIPE_DEFAULTS["cifs"] == {"steps": 20}
    assert RECIPE_DEFAULTS["ode"] == {"pgd_steps": 20, "surrogate_steps": None, "square_queries": 1000,
                                      "spsa_steps": 100, "spsa_samples": 128}
    claim_options = {"spsa_steps": 10, "eot_samples": 10}
    assert recipe_settings("eot", claim_options) == {**EOT_DEFAULTS, "eot_samples": 10}
    assert recipe_settings("ode+eot", {}) == {**RECIPE_DEFAULTS["ode"], **EOT_DEFAULTS}
    assert recipe_settings("ode", claim_options) == {**RECIPE_DEFAULTS["ode"], "spsa_steps": 10}
    assert recipe_settings("cifs", {"steps": 50}) == {"steps": 50}
    assert recipe_settings(None, claim_options) == {}
