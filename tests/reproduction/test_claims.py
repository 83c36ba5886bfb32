"""The claim registry: every registered recipe is a valid trainers/train.py command (its flags parse into a
``TrainingConfig``), pairs name the claim's models, and bad registrations are refused."""

import pytest

from tfrobust.errors import TfrobustError
from tfrobust.reproduction import claims


@pytest.mark.parametrize("scale", claims.SCALES)
def test_every_recipe_is_a_valid_training_config(training_config, scale):
    for name in claims.names():
        claim = claims.get(name)
        if claim.metric != "accuracy":  # denoisers: trainers/train_denoiser.py (test_psnr_claim.py)
            continue
        setting = claim.setting(scale)
        for model in claim.models:
            config = training_config([*claim.training_flags(model.name, scale), "--model_dir=/nonexistent/run",
                                       "--seed=3"])
            assert config.seed == 3 and config.model_dir == "/nonexistent/run"
            assert config.dataset == setting.dataset, (name, model.name)
            if config.method != "standard" and "eps" in config.method_params and config.dataset == "fashion_mnist":
                assert config.method_params["eps"] == pytest.approx(setting.eps), (name, model.name)


def test_cpu_recipes_override_the_recorded_flagfiles_as_intended(training_config):
    cifs = training_config([*claims.get("cifs").training_flags("cifs", "cpu"), "--model_dir=/x"])
    assert cifs.model == "cifs_resnet10" and cifs.model_options == {"mask_scale": "channels", "width": 0.25}
    assert cifs.schedule == "one_cycle" and cifs.lr_boundaries == () and cifs.epochs == 5
    assert cifs.recipe.cifs_attack_beta and cifs.recipe.export_weights == "best"
    vanilla = training_config([*claims.get("cifs").training_flags("vanilla", "cpu"), "--model_dir=/x"])
    assert vanilla.model_options == {"cifs_blocks": 0, "width": 0.25}
    evp = training_config([*claims.get("evpnet_normal").training_flags("se", "cpu"), "--model_dir=/x"])
    assert evp.model_options["stage_widths"] == [16, 32, 64] and evp.model_options["pnl"] is False


def test_pairs_and_headlines():
    for name in claims.names():
        claim = claims.get(name)
        assert claim.headline is claim.pairs[0]
        for pair in claim.pairs:
            assert pair.paper.difference != 0 and pair.paper.source
    cifs = claims.get("cifs").headline
    assert (cifs.baseline, cifs.defense) == ("vanilla", "cifs")
    assert cifs.paper.difference == pytest.approx(0.0451)


def test_registry_errors():
    with pytest.raises(TfrobustError, match="unknown claim 'nope'; claims: cifs"):
        claims.get("nope")
    recipe = claims.ModelRecipe("a", "a", {"cpu": ("--epochs=1",)})
    with pytest.raises(TfrobustError, match="unknown model 'b'"):
        claims.Claim("x", "x", (recipe,), (claims.Pair("a", "b", claims.PaperNumbers(1, 2, "pgd", "s")),), {})
    with pytest.raises(TfrobustError, match="runner's"):
        claims.ModelRecipe("a", "a", {"cpu": ("--seed=1",)})
    with pytest.raises(TfrobustError, match="adaptive"):
        claims.ModelRecipe("a", "a", {"cpu": ()}, adaptive="bpda")
    with pytest.raises(TfrobustError, match=r"a: batch_size at scale cpu must be in \[1, inf\), got 0"):
        claims.ModelRecipe("a", "a", {"cpu": ()}, batch_size={"cpu": 0})
    with pytest.raises(TfrobustError, match="scale"):
        claims.ModelRecipe("a", "a", {"cpu": ()}, batch_size={"gpu": 50})
    claim = claims.Claim("x", "x", (recipe,), (claims.Pair("a", "a", claims.PaperNumbers(1, 2, "pgd", "s")),),
                         {"cpu": claims.ScaleSetting("fashion_mnist", 0.1, 10, 5)})
    with pytest.raises(TfrobustError, match="no paper-scale recipe"):
        claim.setting("paper")
    with pytest.raises(TfrobustError, match="already registered"):
        claims.register(claims.get("cifs"))


def test_the_registry_and_the_evaluation_share_one_list_of_recipes_and_options():
    from tfrobust.reproduction import model_evaluation

    assert model_evaluation.ADAPTIVE_RECIPES is claims.ADAPTIVE_RECIPES == ("cifs", "ode", "eot")
    assert model_evaluation.ANALYSES is claims.ANALYSES
    assert model_evaluation.ODE_OPTIONS is claims.RECIPE_OPTIONS["ode"]
    assert set(model_evaluation.EOT_DEFAULTS) == set(claims.RECIPE_OPTIONS["eot"])


def test_adaptive_options_of_no_model_are_refused_at_registration():
    pair = (claims.Pair("a", "b", claims.PaperNumbers(1, 2, "pgd", "s")),)
    models = (claims.ModelRecipe("a", "a", {"cpu": ()}), claims.ModelRecipe("b", "b", {"cpu": ()}, adaptive="ode"))

    def claim(options):
        return claims.Claim("x", "x", models, pair,
                            {"cpu": claims.ScaleSetting("fashion_mnist", 0.1, 10, 5, adaptive_options=options)})

    assert claim({"spsa_steps": 10}).setting("cpu").adaptive_options == {"spsa_steps": 10}
    with pytest.raises(TfrobustError, match=r"the cpu setting's adaptive options \['eot_steps'\] belong to no "
                                            r"recipe of its models \(ode\)"):
        claim({"spsa_steps": 10, "eot_steps": 5})  # an EOT option, but no model runs the EOT recipe
    with pytest.raises(TfrobustError, match=r"unknown adaptive options \['spsa_step'\]"):
        claim({"spsa_step": 10})
    with pytest.raises(TfrobustError, match="b: unknown adaptive recipe 'ode\\+ode'"):
        claims.ModelRecipe("b", "b", {"cpu": ()}, adaptive="ode+ode")
