"""noise_sweep: accuracy per σ under the evaluation engine's convention, reproducible, conditional form."""

import pytest

from tfrobust.evaluation.robustness import noise_sweep


def test_noise_sweep_reports_accuracy_per_sigma(centred_binary_problem):
    model_fn, x, y, _ = centred_binary_problem(n=64, low=0.45, high=0.55, image=False)
    y_wrong = y.copy()
    y_wrong[:8] = 1 - y_wrong[:8]  # 8 of 64 misclassified clean
    result = noise_sweep(model_fn, x, y_wrong, [0.0, 0.05, 1.0], seed=3)
    assert list(result) == [0.0, 0.05, 1.0]
    assert result[0.0] == pytest.approx(56 / 64)  # σ = 0: clean accuracy
    assert result[1.0] < result[0.05] <= result[0.0]
    assert noise_sweep(model_fn, x, y_wrong, [0.05], seed=3) == {0.05: result[0.05]}  # reproducible
    conditional = noise_sweep(model_fn, x, y_wrong, [0.0, 0.05], seed=3, among_correct=True)
    assert conditional[0.0] == 1.0 and conditional[0.05] == pytest.approx(result[0.05] * 64 / 56)
