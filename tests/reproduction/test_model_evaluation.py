"""evaluate_model on a tiny model: the standard suite's masks, the per-point strongest, the analyses."""

import keras
import numpy as np
import pytest

from tfrobust.errors import TfrobustError
from tfrobust.reproduction.model_evaluation import STANDARD_KEYS, STRONGEST, evaluate_model


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    x = np.random.default_rng(0).random((8, 6, 6, 1), dtype=np.float32)
    y = np.argmax(model(x).numpy(), axis=1)  # every point correct clean: the attacks have work to do
    return model, x, y


def test_standard_suite_masks_and_ratio(tiny):
    model, x, y = tiny
    result, masks = evaluate_model(model, x, y, eps=0.3, sanity_size=4, batch_size=8, name="tiny",
                                   analyses=("unchanged_prediction_ratio",))
    assert set(masks) == {*STANDARD_KEYS, STRONGEST}
    assert all(mask.shape == (8,) and mask.dtype == bool for mask in masks.values())
    assert result["clean"] == 1.0 and masks["clean"].all()
    for attack in ("fgsm", "pgd-20", "autoattack"):
        assert not np.any(masks["worst_case"] & ~masks[attack])  # the worst case is below every row
    assert np.array_equal(masks[STRONGEST], masks["worst_case"])  # no adaptive recipe
    assert [row["attack"] for row in result["rows"]] == ["fgsm", "pgd-20", "autoattack"]
    assert {flag["check"] for flag in result["sanity_flags"]} >= {"iterative_not_stronger", "zero_gradients"}
    ratio = result["analyses"]["unchanged_prediction_ratio"]
    assert ratio["points"] == 4 and 0.0 <= ratio["ratio"] <= 1.0


def test_unknown_recipe_and_analysis_are_refused(tiny):
    model, x, y = tiny
    with pytest.raises(TfrobustError, match="unknown adaptive recipe 'bpda'"):
        evaluate_model(model, x[:2], y[:2], eps=0.05, sanity_size=2, adaptive="bpda")
    with pytest.raises(TfrobustError, match=r"unknown options \['spsa_steps'\] for the adaptive recipe 'cifs'"):
        evaluate_model(model, x[:2], y[:2], eps=0.05, adaptive="cifs", adaptive_options={"spsa_steps": 5})
    with pytest.raises(TfrobustError, match="choices: none"):
        evaluate_model(model, x[:2], y[:2], eps=0.05, adaptive_options={"steps": 5})
    with pytest.raises(TfrobustError, match="unknown analysis 'spectra'"):
        evaluate_model(model, x[:2], y[:2], eps=0.05, sanity_size=2, analyses=("spectra",))


@pytest.mark.slow  # two full evaluations
def test_a_journaled_evaluation_equals_the_plain_one_and_removes_its_state(tiny, tmp_path):
    model, x, y = tiny
    plain, plain_masks = evaluate_model(model, x, y, eps=0.3, sanity_size=4, batch_size=4, name="tiny")
    state = tmp_path / "state"
    journaled, masks = evaluate_model(model, x, y, eps=0.3, sanity_size=4, batch_size=4, name="tiny",
                                      state_dir=str(state))
    assert [r["accuracy"] for r in journaled["rows"]] == [r["accuracy"] for r in plain["rows"]]
    assert all(np.array_equal(masks[key], plain_masks[key]) for key in plain_masks)
    assert not journaled["resumed"]
    assert not state.exists() or not any(state.iterdir())
