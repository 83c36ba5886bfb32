"""The fdn_ird claim (Yan thesis Table 3.4): its recipes are the tisode claim's models plus FDn or IRd, parse
into TrainingConfigs that build the intended networks, its pairs carry Table 3.4's numbers, and each model's
adaptive recipe gets its share of the scale's options."""

import pytest

from tfrobust import models
from tfrobust.reproduction import claims
from tfrobust.reproduction.model_evaluation import options_for

CLAIM = claims.get("fdn_ird")


@pytest.fixture
def config_of(training_config):
    """The ``TrainingConfig`` of a model's recipe at a scale."""
    return lambda model, scale: training_config([*CLAIM.training_flags(model, scale), "--model_dir=/nonexistent/run",
                                                 "--seed=1"])


def test_cpu_recipes_are_the_tisode_claims_models_plus_fdn_or_ird(training_config, config_of):
    tisode = claims.get("tisode")
    assert CLAIM.training_flags("cnn", "cpu") == tisode.training_flags("cnn", "cpu")
    expected = {"cnn": ("odenet_cnn", {}), "cnn_fdn": ("odenet_cnn", {"denoise": True}),
                "tisode_fdn": ("tisode", {"denoise": True}),
                "cnn_ird": ("odenet_cnn", {"input_randomization": (28, 32), "input_randomization_seed": 0}),
                "tisode_ird": ("tisode", {"input_randomization": (28, 32), "input_randomization_seed": 0})}
    for name, (model, options) in expected.items():
        config = config_of(name, "cpu")
        reference = training_config([*tisode.training_flags("tisode" if model == "tisode" else "cnn", "cpu"),
                                     "--model_dir=/nonexistent/run", "--seed=1"])
        assert config.model == model and config.dataset == "fashion_mnist" and config.method == "gaussian"
        assert config.model_options == {**reference.model_options, **options}, name
        assert (config.epochs, config.learning_rate, config.lr_boundaries) == (8, 3e-3, (6, 7))
        assert config.method_params == reference.method_params, name


def test_the_recipes_build_the_intended_networks(config_of):
    layers = {}
    for name in ("cnn_fdn", "tisode_ird"):
        config = config_of(name, "cpu")
        model = models.build(config.model, (28, 28, 1), 10, **config.model_options)
        layers[name] = {layer.name for layer in model.layers}
        if name == "tisode_ird":
            assert model.get_layer("input_randomization").output.shape[1:] == (32, 32, 1)
    assert "denoise" in layers["cnn_fdn"] and "input_randomization" not in layers["cnn_fdn"]
    assert {"input_randomization", "ode"} <= layers["tisode_ird"] and "denoise" not in layers["tisode_ird"]


def test_paper_scale_is_the_thesis_mnist_setting(config_of):
    setting = CLAIM.setting("paper")
    assert (setting.dataset, setting.eps, setting.points) == ("mnist", 0.3, 10000)
    config = config_of("tisode_ird", "paper")
    assert config.dataset == "mnist" and config.epochs == 100 and config.lr_boundaries == (30, 60, 90)
    assert config.model_options["input_randomization"] == (28, 32) and "width" not in config.model_options
    assert setting.adaptive_options == {}  # the recipes' full defaults: SPSA-100 × 128, EOT-PGD-100 × 20, AA-rand


def test_pairs_carry_table_3_4s_pgd_numbers():
    got = [(p.baseline, p.defense, p.paper.baseline, p.paper.defense) for p in CLAIM.pairs]
    # The headline is the deterministic TisODE-on-FDn pair: every IRd pair is masked by the stochastic flag.
    assert got == [("cnn_fdn", "tisode_fdn", 8.2, 28.2), ("cnn_ird", "tisode_ird", 55.5, 66.0),
                   ("cnn", "cnn_fdn", 0.0, 8.2), ("cnn", "cnn_ird", 0.0, 55.5)]
    assert CLAIM.headline.paper.difference == pytest.approx(0.20)
    assert all("Table 3.4" in p.paper.source and "0.3" in p.paper.attack for p in CLAIM.pairs)


def test_each_model_gets_its_recipes_share_of_the_cpu_options():
    options = CLAIM.setting("cpu").adaptive_options
    adaptive = {m.name: m.adaptive for m in CLAIM.models}
    assert adaptive == {"cnn": None, "cnn_fdn": None, "tisode_fdn": "ode", "cnn_ird": "eot", "tisode_ird": "ode+eot"}
    assert options_for("ode", options) == {"spsa_steps": 10, "spsa_samples": 32}
    assert options_for("eot", options) == {"eot_steps": 20, "eot_samples": 10, "eot_repeats": 10,
                                           "eot_autoattack": False}
    assert options_for("ode+eot", options) == options and options_for(None, options) == {}


def test_every_claims_options_fit_its_models_recipes():
    for name in claims.names():
        claim = claims.get(name)
        for scale, setting in claim.scales.items():
            used = set()
            for model in claim.models:
                used |= set(options_for(model.adaptive, setting.adaptive_options))
            assert used == set(setting.adaptive_options), (name, scale)  # no option that no model uses
