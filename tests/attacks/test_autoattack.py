"""AutoAttack composes APGD-CE → APGD-T → FAB-T → Square on the points still standing."""

import keras
import numpy as np
import pytest

from tfrobust.attacks import PGD, AutoAttack, per_example_norm
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
