"""Suites: logits taken before a final softmax, worst case over ε-bounded attacks only, and the report's
honesty about suites that are not AutoAttack."""

import keras
import numpy as np
import pytest

from tfrobust.attacks import FGSM, PGD, GaussianNoise, checks
from tfrobust.evaluation import as_target, markdown, run_suite


def linear_pair(activation_layer=False):
    """A 10-class linear classifier ending in a softmax, and the same weights without it."""
    inputs = keras.Input((4, 4, 1))
    flat = keras.layers.Flatten()(inputs)
    if activation_layer:
        logits = keras.layers.Dense(10, name="dense")(flat)
        softmax = keras.Model(inputs, keras.layers.Activation("softmax")(logits))
        plain = keras.Model(inputs, logits)
    else:
        softmax = keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="dense")(flat))
        dense = softmax.get_layer("dense")
        plain = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
        plain.layers[-1].set_weights(dense.get_weights())
    return softmax, plain


def points(model, n=40, seed=0):
    x = np.random.default_rng(seed).uniform(0, 1, size=(n, 4, 4, 1)).astype(np.float32)
    return x, np.argmax(model(x).numpy(), axis=1)


@pytest.mark.parametrize("activation_layer", [False, True])
def test_softmax_models_are_attacked_on_their_logits(activation_layer):
    softmax, plain = linear_pair(activation_layer)
    x, y = points(plain)
    target = as_target(softmax)
    assert checks.looks_like_probabilities(softmax(x)) and not checks.looks_like_probabilities(target.logits_fn(x))
    np.testing.assert_allclose(target.logits_fn(x).numpy(), plain(x).numpy(), rtol=1e-5, atol=1e-5)
    assert "softmax" in target.notes[0]
    if activation_layer:
        return
    # The same attack gives the same accuracy as on the logits model (on probabilities it was far higher).
    attacks = lambda: {"fgsm": FGSM(eps=0.08)}
    on_softmax = run_suite(softmax, x, y, attacks())
    on_logits = run_suite(plain, x, y, attacks())
    assert on_softmax["rows"][0]["accuracy"] == on_logits["rows"][0]["accuracy"]
    assert on_softmax["notes"] == target.notes
    assert "pre-softmax" in markdown({"threat_model": {"norm": "linf", "eps": 0.08}, "num_examples": 40,
                                      "models": [{**on_softmax, "sanity": None}]})


def test_worst_case_is_over_eps_bounded_attacks_only():
    _, plain = linear_pair()
    x, y = points(plain, 40)
    eps = 0.01
    result = run_suite(plain, x, y, {"pgd": PGD(eps=eps, steps=5), "noise": GaussianNoise(sigma=0.5, eps=eps)})
    pgd, noise = result["rows"]
    assert pgd["bounded"] and not noise["bounded"]
    # Large noise breaks more points than PGD at a small ε, but it does not enter the ε worst case.
    assert noise["accuracy"] < pgd["accuracy"]
    assert result["worst_case"] == pytest.approx(pgd["accuracy"])
    text = markdown({"threat_model": {"norm": "linf", "eps": eps}, "num_examples": 40,
                     "models": [{**result, "sanity": None}]})
    table = text.split("Not ε-bounded")[0]
    assert "| noise |" not in table and "not AutoAttack — an upper bound" in table
    assert f"{100 * noise['accuracy']:.2f}" in text.split("Not ε-bounded")[1]
