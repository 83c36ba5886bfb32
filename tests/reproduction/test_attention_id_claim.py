"""The attention_id claim (Liu & JaJa, IJCAI 2019): its recipes are the trainers/train.py commands the notes say
(one ResNet body, PGD-5, λ and G per model and scale), its pairs carry REFERENCE-NUMBERS.md's numbers, and each
CPU-scale model builds from its own recipe and takes one training step of its method."""

import numpy as np
import pytest

from tfrobust.reproduction import claims

BODY = {"stage_blocks": [1, 1, 1, 1], "stage_widths": [16, 16, 32, 64], "strides": "1-1-2-2"}


@pytest.fixture
def config_of(training_config):
    """The ``TrainingConfig`` of ``trainers/train.py`` with the claim's flags of a model at a scale."""
    return lambda model, scale: training_config([*claims.get("attention_id").training_flags(model, scale),
                                                 "--model_dir=/x"])


def test_cpu_recipes(config_of):
    configs = {name: config_of(name, "cpu") for name in ("at", "at_id", "at_att_id")}
    for name, config in configs.items():
        assert config.dataset == "fashion_mnist" and config.augment is None, name
        assert {k: config.model_options[k] for k in BODY} == BODY, name
        params = config.method_params
        assert (params["eps"], params["steps"], params["step_size"], params["random_start"]) == \
            (0.1, 5, 0.025, "uniform"), name
        assert (config.epochs, config.optimizer, config.learning_rate, config.schedule, config.lr_boundaries,
                config.weight_decay, config.train_size) == (5, "adam", 3e-3, "one_cycle", (), 0.0, 12000), name
        assert (config.recipe.validation_size, config.recipe.export_weights, config.recipe.attack_bn_mode) == \
            (2000, "best", "train"), name
    assert configs["at"].model == "resnet" and configs["at"].method == "pgd_at"
    assert "lam" not in configs["at"].method_params
    assert configs["at_id"].model == "resnet" and configs["at_att_id"].model == "attention_resnet"
    for name in ("at_id", "at_att_id"):
        assert configs[name].method == "at_id"
        assert (configs[name].method_params["lam"], configs[name].method_params["feature_layer"]) == (0.01, "pool")
    assert configs["at_att_id"].model_options["attention_stages"] == [3, 4]


def test_paper_recipes_are_table_2(config_of):
    configs = {name: config_of(name, "paper") for name in ("at", "at_id", "at_att_id")}
    for name, config in configs.items():
        assert config.dataset == "cifar10" and config.augment == "flip_crop", name
        assert {k: config.model_options[k] for k in BODY} == BODY, name
        params = config.method_params
        assert params["eps"] == pytest.approx(8 / 255, abs=1e-6) and params["steps"] == 5, name
        assert params["step_size"] == pytest.approx(2 / 255, abs=1e-6), name
        assert (config.epochs, config.optimizer, config.learning_rate, config.lr_boundaries, config.weight_decay) == \
            (205, "sgd", 0.1, (102, 153), 2e-4), name
        assert config.train_size is None and config.recipe.validation_size is None, name
        assert config.recipe.export_weights == "last", name
    assert configs["at_id"].method_params["lam"] == 0.1  # Table 2's AT-id
    assert configs["at_att_id"].method_params["lam"] == 0.01  # Table 2's AT-att-id
    assert configs["at_att_id"].model_options["hidden_units"] == 64


def test_pairs_carry_the_reference_numbers():
    claim = claims.get("attention_id")
    assert [m.name for m in claim.models] == ["at", "at_id", "at_att_id"]
    assert all(m.adaptive is None for m in claim.models)
    headline, mnist = claim.pairs
    assert headline is claim.headline
    assert (headline.baseline, headline.defense) == ("at", "at_att_id")
    assert (headline.paper.baseline, headline.paper.defense, headline.paper.clean) == (49.89, 52.50, (80.79, 81.86))
    assert headline.paper.difference == pytest.approx(0.0261)
    assert (mnist.baseline, mnist.defense) == ("at", "at_id")
    assert (mnist.paper.baseline, mnist.paper.defense, mnist.paper.clean) == (92.86, 95.69, (98.72, 98.66))
    assert mnist.paper.difference == pytest.approx(0.0283)
    assert claim.setting("cpu").eps == 0.1 and claim.setting("paper").eps == pytest.approx(8 / 255)
    assert "PGD-5" in headline.paper.attack and "PGD-40" in mnist.paper.attack


@pytest.mark.parametrize("name,pool_width", [("at", 64), ("at_id", 64), ("at_att_id", 32 + 64)])
def test_cpu_models_build_and_train_one_step_with_their_method(config_of, name, pool_width):
    """Each recipe's model and method as trainers/train.py would make them, one step on 4 Fashion-MNIST-shaped
    images: the denoising term is on the layer the notes say (G = "pool"), positive and finite."""
    import keras

    from tfrobust import models
    from tfrobust.training.adversarial import AdversarialModel

    config = config_of(name, "cpu")
    keras.utils.set_random_seed(0)
    net = models.build(config.model, (28, 28, 1), 10, **config.model_options)
    assert net.get_layer("pool").output.shape == (None, pool_width)
    assert net.get_layer("stage4_block1_out").output.shape == (None, 7, 7, 64)  # the shared body, strides 1-1-2-2
    trainer = AdversarialModel(net, config.method, attack_bn_mode=config.recipe.attack_bn_mode,
                               test_adversarial=False, **config.method_params)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(4, 28, 28, 1)).astype(np.float32)
    before = [w.copy() for w in net.get_weights()]
    logs = trainer.train_on_batch(x, np.array([0, 1, 2, 3]), return_dict=True)
    assert np.isfinite(logs["loss"])
    assert any(not np.array_equal(a, b) for a, b in zip(before, net.get_weights()))
    if config.method == "at_id":
        assert 0 < logs["denoise"] < np.inf and logs["loss"] >= logs["ce"]
    else:
        assert "denoise" not in logs
