"""The tisode_fgsm_at claim (Yan thesis Table 3.7): the tisode claim's three networks and schedule, trained on
FGSM examples (no random start, step = ε) instead of Gaussian-augmented images, with Table 3.7's numbers."""

import pytest

from tfrobust.reproduction import claims

CLAIM = claims.get("tisode_fgsm_at")


def _config(training_config, claim, model, scale):
    return training_config([*claim.training_flags(model, scale), "--model_dir=/nonexistent/run", "--seed=1"])


def test_cpu_recipes_are_the_tisode_claims_models_under_fgsm_training(training_config):
    gaussian = claims.get("tisode")
    assert [m.name for m in CLAIM.models] == [m.name for m in gaussian.models] == ["cnn", "odenet", "tisode"]
    for name in ("cnn", "odenet", "tisode"):
        fgsm = _config(training_config, CLAIM, name, "cpu")
        reference = _config(training_config, gaussian, name, "cpu")
        assert (fgsm.model, fgsm.model_options) == (reference.model, reference.model_options), name
        assert (fgsm.epochs, fgsm.learning_rate, fgsm.lr_boundaries, fgsm.train_size) == \
               (reference.epochs, reference.learning_rate, reference.lr_boundaries, reference.train_size) == \
               (8, 3e-3, (6, 7), 12000)
        assert reference.method == "gaussian" and fgsm.method == "fgsm_rs", name
        assert fgsm.method_params == {"eps": 0.1, "step_size": 0.1, "random_start": "none"}, name
    assert CLAIM.training_flags("tisode", "cpu")[-1] == "--steady_state_warmup=3"
    assert {m.name: m.adaptive for m in CLAIM.models} == {"cnn": None, "odenet": "ode", "tisode": "ode"}


def test_paper_scale_is_the_thesis_mnist_setting(training_config):
    setting = CLAIM.setting("paper")
    assert (setting.dataset, setting.eps, setting.points) == ("mnist", 0.3, 10000)
    config = _config(training_config, CLAIM, "odenet", "paper")
    assert config.dataset == "mnist" and config.epochs == 100 and config.lr_boundaries == (30, 60, 90)
    assert config.method_params == {"eps": 0.3, "step_size": 0.3, "random_start": "none"}
    assert "width" not in config.model_options


def test_pairs_carry_table_3_7s_pgd_numbers():
    got = [(p.baseline, p.defense, p.paper.baseline, p.paper.defense) for p in CLAIM.pairs]
    assert got == [("cnn", "tisode", 5.3, 78.9), ("cnn", "odenet", 5.3, 12.3)]
    assert CLAIM.headline.paper.difference == pytest.approx(0.736)
    assert all("Table 3.7" in p.paper.source for p in CLAIM.pairs)
