"""Paired statistics on constructed masks whose answers are computed by hand."""

import math

import numpy as np
import pytest

from tfrobust.errors import TfrobustError
from tfrobust.reproduction.paired import binomial_two_sided_p, mcnemar, paired_difference, pooled_difference


def test_mcnemar_counts_and_exact_p_on_a_six_point_example():
    baseline = np.array([1, 1, 0, 0, 1, 0], bool)
    defense = np.array([1, 0, 1, 1, 1, 0], bool)
    result = mcnemar(baseline, defense)
    assert (result["defense_only"], result["baseline_only"], result["both"], result["neither"]) == (2, 1, 2, 1)
    assert result["n"] == 6
    assert result["p_exact"] == pytest.approx(1.0)  # 2·P(X ≤ 1 | 3, ½) = 2·4/8, capped at 1
    assert result["z"] == pytest.approx(1 / math.sqrt(3))


def test_mcnemar_ten_discordant_points_all_one_way():
    baseline = np.zeros(50, bool)
    defense = np.zeros(50, bool)
    defense[:10] = True
    result = mcnemar(baseline, defense)
    assert result["p_exact"] == pytest.approx(2 / 1024)
    assert result["z"] == pytest.approx(math.sqrt(10))
    assert result["p_normal"] == pytest.approx(math.erfc(math.sqrt(10) / math.sqrt(2)))


def test_binomial_p_matches_hand_sums():
    assert binomial_two_sided_p(3, 10) == pytest.approx(2 * (1 + 10 + 45 + 120) / 1024)
    assert binomial_two_sided_p(7, 10) == pytest.approx(binomial_two_sided_p(3, 10))
    assert binomial_two_sided_p(0, 0) == 1.0


def test_paired_difference_and_its_standard_error():
    baseline = np.array([1, 1, 0, 0, 1, 0], bool)
    defense = np.array([1, 0, 1, 1, 1, 0], bool)
    result = paired_difference(baseline, defense)
    # d = [0, -1, 1, 1, 0, 0]: mean 1/6, sample variance (3 − 6/36)/5.
    assert result["difference"] == pytest.approx(1 / 6)
    assert result["se"] == pytest.approx(math.sqrt((3 - 6 / 36) / 5 / 6))
    assert (result["baseline"], result["defense"]) == (pytest.approx(0.5), pytest.approx(4 / 6))


def test_paired_se_is_zero_when_both_models_agree_on_every_point():
    mask = np.array([True, False, True, True])
    result = paired_difference(mask, mask)
    assert (result["difference"], result["se"]) == (0.0, 0.0)
    assert result["mcnemar"]["p_exact"] == 1.0


def test_paired_se_is_smaller_than_the_unpaired_one_for_correlated_models():
    rng = np.random.default_rng(0)
    baseline = rng.random(1000) < 0.6
    defense = baseline.copy()
    defense[rng.choice(1000, 30, replace=False)] ^= True
    paired = paired_difference(baseline, defense)["se"]
    unpaired = math.sqrt(0.24 / 1000 * 2)
    assert paired < unpaired / 2


@pytest.mark.parametrize("baseline, defense, message", [
    (np.ones(3, bool), np.ones(4, bool), "same length"),
    (np.ones((2, 2), bool), np.ones((2, 2), bool), "1-D"),
    (np.zeros(0, bool), np.zeros(0, bool), "empty"),
    (np.array([0, 2, 1]), np.array([0, 1, 1]), "booleans"),
])
def test_bad_masks_are_refused(baseline, defense, message):
    with pytest.raises(TfrobustError, match=message):
        paired_difference(baseline, defense)


def test_pooled_takes_the_larger_of_point_noise_and_seed_spread():
    seeds = [{"difference": 0.1, "se": 0.02}, {"difference": 0.2, "se": 0.02}]
    pooled = pooled_difference(seeds)
    assert pooled["difference"] == pytest.approx(0.15)
    assert pooled["point_se"] == pytest.approx(math.sqrt(0.0008) / 2)
    assert pooled["seed_se"] == pytest.approx(0.05)
    assert pooled["se"] == pytest.approx(0.05)
    close = pooled_difference([{"difference": 0.1, "se": 0.04}, {"difference": 0.1, "se": 0.03}])
    assert close["se"] == pytest.approx(0.025)  # point noise when the seeds agree
    with pytest.raises(TfrobustError, match="at least one"):
        pooled_difference([])
