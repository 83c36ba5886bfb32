"""IRd (Xie et al. 2018): the transformation itself, seeding, how randomness behaves in .keras,
SavedModel and TFLite exports, gradients, mixed precision, and the stochastic sanity flag.

The shared ``check_layer`` compares repeated calls of one layer, which a randomised layer cannot pass
by design; this file checks the same contract points with the randomness accounted for (seeded replays).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrobust import export, models
from tfrobust.errors import TfrobustError
from tfrobust.evaluation import sanity_checks
from tfrobust.layers.input_randomization import InputRandomization

X = np.random.default_rng(0).uniform(size=(3, 6, 6, 2)).astype(np.float32)


def _wrap(layer):
    inputs = keras.Input((6, 6, 2))
    return keras.Model(inputs, keras.layers.Flatten()(layer(inputs)))


def test_output_is_a_nearest_neighbour_resize_placed_in_zeros():
    out = InputRandomization((6, 10), seed=3)(X).numpy()
    assert out.shape == (3, 10, 10, 2)
    for image, source in zip(out, X):
        rows = np.flatnonzero(np.any(image != 0, axis=(1, 2)))
        cols = np.flatnonzero(np.any(image != 0, axis=(0, 2)))
        size = len(rows)
        assert 6 <= size < 10 and len(cols) == size and np.all(np.diff(rows) == 1)
        # TF1's nearest-neighbour rule (Xie et al.'s code): source index floor(i · 6 / size).
        resized = tf.raw_ops.ResizeNearestNeighbor(images=source[None], size=[size, size], align_corners=False,
                                                   half_pixel_centers=False)[0].numpy()
        np.testing.assert_array_equal(image[rows[0]:rows[0] + size, cols[0]:cols[0] + size], resized)
    assert InputRandomization((6, 10), seed=3).compute_output_shape((None, 6, 6, 2)) == (None, 10, 10, 2)


def test_fixed_seed_is_deterministic_and_different_seeds_are_not():
    first, same, other = (_wrap(InputRandomization((6, 9), seed=s)) for s in (1, 1, 2))
    runs = [[m(X).numpy() for _ in range(3)] for m in (first, same, other)]
    assert all(np.array_equal(a, b) for a, b in zip(runs[0], runs[1]))
    assert not np.array_equal(runs[0][0], runs[0][1])  # fresh draws at every call
    assert not np.array_equal(runs[0][0], runs[2][0])


def test_config_and_keras_reload_restart_the_random_sequence(tmp_path):
    layer = InputRandomization((6, 9), seed=4, rng="seed_generator")
    config = layer.get_config()
    assert InputRandomization.from_config(config).get_config() == config
    assert keras.saving.get_registered_name(InputRandomization) == "tfrobust>InputRandomization"
    model = _wrap(layer)
    first = model(X).numpy()
    model(X)
    model.save(tmp_path / "ird.keras")
    # .keras keeps the seed, not the counter: a reloaded model replays the sequence from its start.
    np.testing.assert_array_equal(keras.saving.load_model(tmp_path / "ird.keras")(X).numpy(), first)


def test_savedmodel_draws_anew_per_call_and_each_load_replays(tmp_path):
    model = _wrap(InputRandomization((6, 9), seed=5))
    path = export.export_saved_model(model, str(tmp_path), "ird", version=1)
    upcoming = model(X).numpy()
    artifact = export.load(path)
    first, second = artifact.predict(X), artifact.predict(X)
    np.testing.assert_array_equal(first, upcoming)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(export.load(path).predict(X), first)


def test_tflite_needs_the_stateful_op(tmp_path):
    stateless = export.export_saved_model(_wrap(InputRandomization((6, 9), seed=6)), str(tmp_path), "a", version=1)
    with pytest.raises(Exception, match="StatelessRandom"):
        export.convert_tflite(stateless, str(tmp_path / "a.tflite"))
    stateful = export.export_saved_model(_wrap(InputRandomization((6, 9), seed=6, rng="stateful_op")),
                                         str(tmp_path), "b", version=1)
    artifact = export.load(export.convert_tflite(stateful, str(tmp_path / "b.tflite")))
    first, second = artifact.predict(X), artifact.predict(X)
    assert first.shape == (3, 9 * 9 * 2) and not np.array_equal(first, second)
    # Every TFLite output is a valid placement: the pixel values are the input's (or zero padding).
    assert set(np.round(first[0], 5)) <= set(np.round(X[0].ravel(), 5)) | {0.0}


def test_gradients_and_mixed_precision():
    layer = InputRandomization((6, 8), seed=7)
    x = tf.constant(X)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(layer(x))
    grad = tape.gradient(total, x).numpy()
    assert np.all(np.isfinite(grad)) and np.all(grad >= 1)  # every pixel is copied at least once
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        mixed = InputRandomization((6, 8), seed=7)
        assert mixed(X).dtype == tf.bfloat16
    finally:
        keras.mixed_precision.set_global_policy(previous)


@pytest.mark.parametrize("kwargs, message", [
    ({"size_range": (6,)}, "size_range"), ({"size_range": (9, 8)}, "size_range"),
    ({"size_range": (0, 8)}, "size_range"),
    ({"size_range": (6, 9), "seed": -1}, "seed"), ({"size_range": (6, 9), "rng": "numpy"}, "rng"),
])
def test_bad_arguments_fail_at_construction(kwargs, message):
    with pytest.raises(TfrobustError, match=message) as error:
        InputRandomization(**kwargs)
    assert "\n" not in str(error.value)


def test_a_size_range_that_shrinks_the_image_is_refused():
    with pytest.raises(TfrobustError, match="must not shrink") as error:
        InputRandomization((4, 9))(X)
    assert "\n" not in str(error.value)
    with pytest.raises(TfrobustError, match="must not shrink"):
        models.build("odenet_cnn", (6, 6, 2), 3, input_randomization=(5, 8))


def _confidently_wrong(model):
    """Biases the logits so every prediction is class 0; with labels 1 no point is standing, so the
    sanity checks skip their attacks (seconds instead of half a minute) while the logits still vary."""
    bias = model.get_layer("logits").bias
    bias.assign(np.array([50.0, 0.0, 0.0], np.float32))
    return model


def test_the_stochastic_sanity_flag_fires_on_ird_and_only_on_it():
    y = np.ones(3, np.int64)
    flags_of = lambda result: {flag["check"]: flag["flagged"] for flag in result["flags"]}
    randomised = _confidently_wrong(models.build("odenet_cnn", (6, 6, 2), 3, width=0.0625, input_randomization=(6, 9),
                                                 input_randomization_seed=0))
    result = sanity_checks(randomised, X, y, norm="linf", eps=0.1, steps=2, batch_size=3)
    assert flags_of(result)["stochastic"] and result["logits_std"] > 1e-5
    deterministic = _confidently_wrong(models.build("odenet_cnn", (6, 6, 2), 3, width=0.0625))
    result = sanity_checks(deterministic, X, y, norm="linf", eps=0.1, steps=2, batch_size=3)
    assert not flags_of(result)["stochastic"] and result["logits_std"] == 0.0
