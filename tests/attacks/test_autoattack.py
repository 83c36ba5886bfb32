"""AutoAttack composes APGD-CE → APGD-T → FAB-T → Square on the points still standing."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrobust.attacks import APGD, APGDT, EOT, PGD, AutoAttack, Square, losses, per_example_norm
from tfrobust.errors import TfrobustError


def small_net():
    return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(6, 3, activation="relu"),
                             keras.layers.Flatten(), keras.layers.Dense(5)])


def test_standard_version_is_the_reference_ensemble():
    attack = AutoAttack(norm="linf", eps=8 / 255)
    config = attack.get_config()
    assert [a["name"] for a in config["attacks"]] == ["APGD", "APGDT", "FABT", "Square"]
    apgd, apgdt, fab, square = config["attacks"]
    assert (apgd["steps"], apgd["restarts"], apgd["loss"]) == (100, 1, "ce")
    assert (apgdt["steps"], apgdt["num_target_classes"]) == (100, 9)
    assert (fab["steps"], fab["num_target_classes"]) == (100, 9)
    assert square["queries"] == 5000
    assert [a["name"] for a in AutoAttack(version="fast").get_config()["attacks"]] == ["APGD", "APGDT", "Square"]


def test_worst_case_over_components_and_stronger_than_pgd():
    model = small_net()
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(40, 8, 8, 1)).astype(np.float32)
    y = np.argmax(model(x).numpy(), axis=1)
    eps = 0.05
    attack = AutoAttack(eps=eps, version="fast")
    x_adv = attack(model, x, y).numpy()
    assert np.all(per_example_norm(x_adv - x, "linf").numpy() <= eps + 1e-6)
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    robust = np.argmax(model(x_adv).numpy(), axis=1) == y
    # The report is cumulative and ends at the final robust accuracy.
    report = [step["robust_accuracy"] for step in attack.last_report]
    assert report == sorted(report, reverse=True) and report[-1] == pytest.approx(robust.mean())
    # Points broken by one component are not attacked again: later components see fewer points.
    assert attack.last_report[1]["counts"].get("forward", 0) <= attack.last_report[0]["counts"]["forward"]
    pgd = PGD(eps=eps, steps=10)(model, x, y).numpy()
    assert robust.mean() <= np.mean(np.argmax(model(pgd).numpy(), axis=1) == y) + 1 / 40


def test_autoattack_is_untargeted_and_validates_version():
    with pytest.raises(TfrobustError, match="untargeted"):
        AutoAttack(targeted=True)
    with pytest.raises(TfrobustError, match="unknown version 'plus'"):
        AutoAttack(version="plus")


class Recorder:
    """Passes calls through to a component attack and records the batch sizes it was given."""

    def __init__(self, attack):
        self.attack, self.sizes = attack, []

    def __call__(self, model_fn, x, y):
        self.sizes.append(len(x))
        return self.attack(model_fn, x, y)

    def __getattr__(self, name):
        return getattr(self.attack, name)


def test_survivors_are_rechunked_into_full_batches_and_the_report_covers_all_points():
    from tfrobust.evaluation import run_suite  # evaluation imports attacks

    model = small_net()
    x = np.random.default_rng(0).uniform(size=(28, 8, 8, 1)).astype(np.float32)
    y = np.argmax(model(x).numpy(), axis=1)
    y[:4] = (y[:4] + 1) % 5  # four points wrong on the clean input
    attack = AutoAttack(eps=0.05, version="fast", batch_size=8)
    short = [APGD(eps=0.05, steps=5), APGDT(eps=0.05, steps=5, num_target_classes=2), Square(eps=0.05, queries=100)]
    seeds = [a.seed for _, a in attack.attacks]
    attack.attacks = [(name, Recorder(a)) for (name, _), a in zip(attack.attacks, short)]
    # The suite's own batch size (16) does not split AutoAttack's work: it gets every standing point.
    row = run_suite(model, x, y, {"autoattack": attack}, batch_size=16)["rows"][0]
    standing = 24
    for step, (name, recorder) in zip(row["components"], attack.attacks):
        assert step["attack"] == name
        assert sum(recorder.sizes) == standing and all(size == 8 for size in recorder.sizes[:-1])
        standing = step["robust"]
    assert row["components"][-1]["robust_accuracy"] == pytest.approx(row["accuracy"])
    assert [c["robust_accuracy"] for c in row["components"]][0] <= 24 / 28
    # Each component has its own seed.
    assert len(set(seeds)) == len(seeds) and seeds == [a.seed for _, a in AutoAttack(version="fast").attacks]


class Quantize(keras.layers.Layer):
    def call(self, inputs):
        return keras.ops.round(inputs * 3) / 3


def test_masked_gradients_and_probability_outputs_are_diagnosed():
    model = keras.Sequential([keras.Input((4, 4, 1)), Quantize(), keras.layers.Flatten(), keras.layers.Dense(4)])
    x = np.random.default_rng(0).uniform(size=(24, 4, 4, 1)).astype(np.float32)
    y = np.argmax(model(x).numpy(), axis=1)
    attack = AutoAttack(eps=0.2, version="fast")
    attack.attacks = [("apgd-ce", APGD(eps=0.2, steps=5)), ("apgd-t", APGDT(eps=0.2, steps=5, num_target_classes=2)),
                      ("square", Square(eps=0.2, queries=200))]
    with pytest.warns(UserWarning) as caught:
        attack(model, x, y)
    messages = " ".join(str(w.message) for w in caught)
    assert "all-zero gradient" in messages and "check_square_sr" in messages
    assert attack.last_diagnostics["zero_gradients"]["apgd-ce"] == 24
    # APGD-T runs twice (2 targets) on the points APGD-CE left; each masked point counts once, not per run.
    attacked = attack.last_report[0]["robust"]
    assert attacked > 0 and attack.last_diagnostics["zero_gradients"]["apgd-t"] == attacked
    assert attack.last_diagnostics["square_stronger"]["flagged"]
    assert not attack.last_diagnostics["randomness"]["flagged"]
    probabilities = lambda v: tf.nn.softmax(model(v))
    with pytest.warns(UserWarning, match="look like probabilities"):
        AutoAttack(eps=0.2, version="fast")._start_checks(probabilities, x, y)


def test_rand_version_attacks_the_eot_average_of_losses():
    attack = AutoAttack(version="rand")
    assert [(a["name"], a["loss"], a["restarts"]) for a in attack.get_config()["attacks"]] == [
        ("APGD", "ce", 1), ("APGD", "dlr", 1)]
    # EOT(average="loss"): the objective is the mean of the per-pass losses, its gradient their mean.
    weights = [tf.constant(np.random.default_rng(i).normal(size=(3, 4)), tf.float32) for i in range(3)]
    calls = iter(range(100))
    model_fn = lambda v: tf.matmul(v, weights[next(calls) % 3])
    x, y = tf.constant(np.random.default_rng(5).uniform(size=(5, 3)), tf.float32), tf.constant([0, 1, 2, 3, 0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = losses.objective(losses.cross_entropy, EOT(model_fn, 3, average="loss")(x), y, False)
    with tf.GradientTape() as tape_passes:
        tape_passes.watch(x)
        expected = tf.add_n([losses.cross_entropy(tf.matmul(x, w), y) for w in weights]) / 3
    np.testing.assert_allclose(value.numpy(), expected.numpy(), rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(value, x).numpy(), tape_passes.gradient(expected, x).numpy(), rtol=1e-5)


class _RecordingComponent:
    """A component attack that returns x unchanged and records what it was called with."""

    def __init__(self, calls):
        self.calls, self.last_counts = calls, {"forward": 2, "backward": 1}

    def set_stream(self, position):
        self.stream = position

    def __call__(self, model_fn, x, y):
        self.calls.append((model_fn, len(x), self.stream))
        return x


def test_rand_version_gives_each_component_the_20_pass_loss_average_of_the_model():
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(4)])
    x = np.random.default_rng(1).uniform(size=(12, 4, 4, 1)).astype(np.float32)
    y = np.argmax(model(x).numpy(), axis=1)
    calls = []
    attack = AutoAttack(eps=0.1, version="rand", batch_size=5)
    attack.attacks = [(name, _RecordingComponent(calls)) for name, _ in attack.attacks]
    attack(model, x, y)
    assert [(n, stream) for _, n, stream in calls] == [(5, 0), (5, 1), (2, 2)] * 2  # both components, 3 chunks
    for model_fn, _, _ in calls:
        assert isinstance(model_fn, EOT) and model_fn.model_fn is model
        assert (model_fn.samples, model_fn.average) == (20, "loss")
    # Each wrapper call is 20 model passes: 3 chunks × 2 forward × 20, plus the 12 re-evaluation passes.
    assert attack.last_report[0]["counts"] == {"forward": 3 * 2 * 20 + 12, "backward": 3 * 1 * 20}
