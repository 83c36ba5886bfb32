"""The gradient-masking checks flag a deliberately masked model and leave a plain one alone."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrobust import data
from tfrobust.attacks.eot import EOT
from tfrobust.evaluation import build_suite, run_suite, sanity_checks


@pytest.fixture(scope="module")
def plain_model():
    keras.utils.set_random_seed(0)
    (x, y), (x_test, y_test) = data.load_splits("fashion_mnist", train_size=3000, test_size=200)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=4, batch_size=64, verbose=0)
    return model, x_test, y_test


def flagged(result):
    return {flag["check"] for flag in result["flags"] if flag["flagged"]}


def test_plain_model_raises_no_flag(plain_model):
    model, x, y = plain_model
    result = sanity_checks(model, x, y, norm="linf", eps=0.1, batch_size=100)
    assert flagged(result) == set(), result["flags"]
    assert result["pgd"] < result["fgsm"]
    # The randomness check runs on one batch; its detail says how many points its counts are out of.
    correct = int(np.sum(np.argmax(model(x[:100]), axis=1) == y[:100]))
    stochastic = next(flag["detail"] for flag in result["flags"] if flag["check"] == "stochastic")
    assert stochastic.endswith(f"correct per pass {[correct] * 5} of the first 100 points"), stochastic
    assert all(flag["explanation"].endswith(".") and len(flag["explanation"]) < 300 for flag in result["flags"])


def test_quantised_input_masks_gradients_and_is_flagged(plain_model):
    model, x, y = plain_model
    # A non-differentiable quantisation before the classifier: no input gradient reaches the attacker.
    masked = lambda images: model(tf.round(images * 4.0) / 4.0, training=False)
    result = sanity_checks(masked, x, y, norm="linf", eps=0.1)
    assert {"zero_gradients", "unbounded_not_zero"} <= flagged(result), result["flags"]
    assert result["gradients"]["zero"] == 1.0


def test_transfer_from_the_unmasked_model_beats_white_box_and_is_flagged(plain_model):
    model, x, y = plain_model
    masked = lambda images: model(tf.round(images * 4.0) / 4.0, training=False)
    attacks = build_suite("fgsm,pgd", norm="linf", eps=0.1)
    white = run_suite(masked, x, y, attacks)
    # The same attacks crafted on the unmasked model, evaluated on the masked one (a transfer row).
    from tfrobust.attacks.transfer import Transfer
    from tfrobust.evaluation import robust_accuracy, as_target
    transfer = robust_accuracy(Transfer(attacks["pgd"], model), None, x, y, predict_fn=as_target(masked).predict)
    white["rows"].append({"attack": "transfer-pgd", "mode": "transfer from plain", "accuracy": transfer["accuracy"],
                          "seconds": 0.0, "counts": {}, "config": {}})
    result = sanity_checks(masked, x, y, norm="linf", eps=0.1, suite_result=white)
    assert "black_box_stronger" in flagged(result)


def test_random_model_is_flagged_stochastic_and_eot_averages_it(plain_model):
    model, x, y = plain_model
    noisy = lambda images: model(images + tf.random.normal(tf.shape(images), stddev=0.05), training=False)
    result = sanity_checks(noisy, x[:50], y[:50], norm="linf", eps=0.1)
    assert "stochastic" in flagged(result)
    averaged = EOT(noisy, samples=32)
    single = np.std([noisy(tf.constant(x[:8])).numpy() for _ in range(4)], axis=0).max()
    many = np.std([averaged(tf.constant(x[:8])).numpy() for _ in range(4)], axis=0).max()
    assert many < single / 3  # averaging 32 passes shrinks the spread ~√32 times


@pytest.mark.parametrize("by_steps, expected", [
    ((0.38, 0.34, 0.27, 0.23, 0.23, 0.22), False),  # one point of 100 fewer at 50 steps: within the tolerance
    ((0.61, 0.61, 0.61, 0.61, 0.61, 0.60), False),  # 0.61 − 0.60 is 0.010000000000000009 in floating point
    ((0.36, 0.33, 0.31, 0.29, 0.29, 0.26), True),   # three points: flagged
])
def test_not_converged_tolerates_exactly_one_point(plain_model, monkeypatch, by_steps, expected):
    from tfrobust.evaluation import sanity

    model, x, y = plain_model
    real_curves = sanity.curves

    def curves_with_these_steps(*args, **kwargs):
        measured = real_curves(*args, **{**kwargs, "steps": 1, "step_counts": (1,)})  # only the steps curve is set
        measured["accuracy_vs_steps"] = [{"steps": s, "accuracy": a} for s, a in zip(sanity.STEPS, by_steps)]
        return measured

    monkeypatch.setattr(sanity, "curves", curves_with_these_steps)
    result = sanity_checks(model, x[:100], y[:100], norm="linf", eps=0.1)
    assert ("not_converged" in flagged(result)) is expected
    assert sanity.beyond_tolerance(0.23 - 0.22) is False and sanity.beyond_tolerance(0.0101) is True
