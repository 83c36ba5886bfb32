"""Schedules, optimizers and precision policies of the training recipe."""

import keras
import numpy as np
import pytest

from tfrobust.errors import TfrobustError
from tfrobust.training import make_optimizer, make_schedule, set_precision


def test_piecewise_divides_at_epoch_boundaries():
    schedule = make_schedule("piecewise", 0.1, steps_per_epoch=10, epochs=110, boundaries=[100, 105])
    rates = [float(schedule(step)) for step in (0, 999, 1000, 1001, 1049, 1051)]
    np.testing.assert_allclose(rates, [0.1, 0.1, 0.1, 0.01, 0.01, 0.001], rtol=1e-6)


def test_cosine_decays_to_zero_and_constant_is_constant():
    schedule = make_schedule("cosine", 0.2, steps_per_epoch=5, epochs=4)
    assert float(schedule(0)) == pytest.approx(0.2)
    assert float(schedule(10)) == pytest.approx(0.1, rel=1e-5)
    assert float(schedule(20)) == pytest.approx(0.0, abs=1e-7)
    assert make_schedule("constant", 0.3, steps_per_epoch=5, epochs=4) == 0.3


def test_one_cycle_rises_linearly_to_the_peak_at_two_fifths_then_falls_to_zero():
    schedule = make_schedule("one_cycle", 0.2, steps_per_epoch=10, epochs=10)  # 100 steps, peak at 40
    rates = [float(schedule(step)) for step in (0, 19, 39, 69, 99)]
    np.testing.assert_allclose(rates, [0.005, 0.1, 0.2, 0.1, 0.0], atol=1e-6)
    assert keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule)).get_config() \
        == schedule.get_config()


@pytest.mark.parametrize("kwargs,message", [
    ({"name": "step"}, "unknown schedule 'step'; valid choices: constant, piecewise, cosine"),
    ({"name": "piecewise"}, "needs at least one boundary"),
    ({"name": "piecewise", "boundaries": [12]}, r"boundaries must lie in \[1, 9\]"),
    ({"name": "constant", "learning_rate": 0.0}, "learning_rate must be in")])
def test_bad_schedules(kwargs, message):
    args = {"learning_rate": 0.1, "steps_per_epoch": 3, "epochs": 10, **kwargs}
    with pytest.raises(TfrobustError, match=message):
        make_schedule(args.pop("name"), args.pop("learning_rate"), **args)


def test_optimizers():
    assert isinstance(make_optimizer("sgd", 0.1, momentum=0.9, weight_decay=5e-4), keras.optimizers.SGD)
    assert isinstance(make_optimizer("adamw", 1e-3, weight_decay=1e-2), keras.optimizers.AdamW)
    with pytest.raises(TfrobustError, match="unknown optimizer 'lamb'"):
        make_optimizer("lamb", 0.1)
    with pytest.raises(TfrobustError, match="weight_decay must be in"):
        make_optimizer("sgd", 0.1, weight_decay=-1.0)


def test_precision_policies():
    try:
        assert set_precision("bfloat16") == "mixed_bfloat16"
        assert keras.mixed_precision.global_policy().compute_dtype == "bfloat16"
        with pytest.raises(TfrobustError, match="unknown mixed_precision 'fp8'"):
            set_precision("fp8")
    finally:
        set_precision("none")
    assert keras.mixed_precision.global_policy().name == "float32"
