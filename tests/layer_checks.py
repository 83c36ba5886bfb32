"""The one layer-check helper every tfrobust layer test uses (BLUEPRINT "Layer" contract).

    from tests.layer_checks import check_layer

    def test_pdog_layer_contract(tmp_path):
        facts = check_layer(lambda: PDoG(kernel_size=3), (8, 8, 4),
                            expected_output_shape=[(8, 8, 4), (8, 8, 4)], tmp_path=tmp_path)

``check_layer`` checks, in this order, on a deterministic float32 batch in [0, 1]:

1. output shape: eager call == symbolic (functional) call == ``expected_output_shape`` (batch axis left
   out; ``None`` entries match anything; a list for multi-output layers);
2. registration + config: the class is registered under ``tfrobust>``; ``from_config(get_config())`` gives
   an identical config, and ``serialize/deserialize_keras_object`` round-trips;
3. ``.keras`` save/load: a small functional model wrapping the layer reloads with equal outputs;
4. SavedModel: ``tfrobust.export.export_saved_model`` + ``tfrobust.export.load`` give equal outputs;
5. TFLite: ``tfrobust.export.convert_tflite`` (fp32) + ``load`` within ``tflite_atol``; or, with
   ``tflite="skip: <reason>"``, a check that the reason still holds (conversion, loading or running
   raises) — when it stops holding the check fails, so the skip cannot outlive its reason;
6. gradients: finite input gradients in inference and training mode, and finite gradients for every
   trainable weight in training mode (the weights of a trainable layer get a non-zero gradient);
7. ``mixed_bfloat16`` (policy set and restored with try/finally): a layer built under the policy, given
   the float32 layer's weights, computes in bfloat16, is finite, has finite input gradients and stays
   within ``mixed_rtol`` of the float32 output.

Multi-output layers (list/tuple/dict outputs) are wrapped by flattening and concatenating the outputs, so
the export path (one ``logits`` tensor) applies to them too. Returns a dict of measured facts (max errors)
that a test may print or assert on.
"""

import os
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrobust import export


def _as_list(outputs):
    if isinstance(outputs, dict):
        return [outputs[key] for key in sorted(outputs)]
    if isinstance(outputs, (list, tuple)):
        return list(outputs)
    return [outputs]


def _numpy_list(outputs):
    return [np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(o, "float32"))) for o in _as_list(outputs)]


def _shapes_match(actual, expected):
    actual, expected = tuple(actual), tuple(expected)
    return len(actual) == len(expected) and all(e is None or a is None or int(a) == int(e)
                                                for a, e in zip(actual, expected))


def _wrap(layer, input_shape):
    """A functional model images → one tensor (multi-output layers flattened + concatenated)."""
    inputs = keras.Input(input_shape)
    outputs = _as_list(layer(inputs))
    if len(outputs) == 1:
        return keras.Model(inputs, outputs[0])
    flat = [keras.layers.Flatten()(o) for o in outputs]
    return keras.Model(inputs, keras.layers.Concatenate()(flat))


def _flat(outputs):
    arrays = _numpy_list(outputs)
    if len(arrays) == 1:
        return arrays[0]
    return np.concatenate([a.reshape(len(a), -1) for a in arrays], axis=1)


def _weighted_sum(outputs, seed=1):
    """Σ r ⊙ output with a fixed random r: unlike Σ output, its gradient does not vanish for
    normalising layers (unit-norm or softmax outputs)."""
    total = 0.0
    for i, out in enumerate(_as_list(outputs)):
        out = tf.cast(out, tf.float32)
        r = tf.random.stateless_normal(tf.shape(out), seed=[seed, i])
        total += tf.reduce_sum(out * r)
    return total


def _check_gradients(layer, x, training, weights):
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = _weighted_sum(layer(x, training=training))
    targets = [x] + (list(layer.trainable_weights) if weights else [])
    grads = tape.gradient(loss, targets)
    assert grads[0] is not None, "no input gradient"
    assert np.all(np.isfinite(grads[0].numpy())), f"non-finite input gradient (training={training})"
    for variable, grad in zip(targets[1:], grads[1:]):
        assert grad is not None, f"no gradient for trainable weight {variable.path}"
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(grad))), f"non-finite gradient for {variable.path}"
    return grads


def check_layer(layer_factory, input_shape, *, expected_output_shape=None, batch_size=2, seed=0,
                tflite="convert", tflite_atol=1e-4, atol=1e-5, check_mixed_precision=True,
                mixed_rtol=5e-2, check_training=True, tmp_path=None):
    """Runs the shared layer checks (see the module docstring) and returns measured facts.

    Args:
      layer_factory: zero-argument callable returning a new, unbuilt layer (called again under
        ``mixed_bfloat16``, so it must not pin ``dtype``).
      input_shape: the input shape without the batch axis, e.g. ``(8, 8, 4)``; inputs are images in
        [0, 1] (the export path validates them as such).
      expected_output_shape: output shape without the batch axis, or a list of them for multi-output
        layers; None skips the comparison (eager and symbolic shapes are still compared).
      batch_size: the test batch size.
      seed: seed of the test inputs.
      tflite: "convert" to check the fp32 TFLite conversion, or "skip: <reason>" to document why the
        layer does not convert and check that conversion (or running the result) still fails.
      tflite_atol: tolerance of the TFLite outputs against the Keras outputs.
      atol: tolerance of the ``.keras`` and SavedModel outputs.
      check_mixed_precision: run the ``mixed_bfloat16`` checks.
      mixed_rtol: bfloat16-vs-float32 tolerance, relative to max(1, max |float32 output|).
      check_training: check gradients of the trainable weights in training mode.
      tmp_path: directory for the saved files (a temporary directory when None).

    Returns:
      dict with ``output_shapes`` and the max absolute errors ``keras_error``, ``saved_model_error``,
      ``tflite_error`` (None when skipped) and ``bfloat16_error`` (None when skipped).
    """
    if not (tflite == "convert" or (isinstance(tflite, str) and tflite.startswith("skip:")
                                    and tflite[len("skip:"):].strip())):
        raise ValueError(f"tflite must be 'convert' or 'skip: <reason>', got {tflite!r}")
    if tmp_path is None:
        with tempfile.TemporaryDirectory() as directory:
            return check_layer(layer_factory, input_shape, expected_output_shape=expected_output_shape,
                               batch_size=batch_size, seed=seed, tflite=tflite, tflite_atol=tflite_atol,
                               atol=atol, check_mixed_precision=check_mixed_precision, mixed_rtol=mixed_rtol,
                               check_training=check_training, tmp_path=directory)
    tmp_path = os.fspath(tmp_path)
    input_shape = tuple(input_shape)
    facts = {}
    x = np.random.default_rng(seed).uniform(size=(batch_size, *input_shape)).astype(np.float32)

    # 1. Output shape: symbolic (functional) and eager agree with each other and with the expectation.
    layer = layer_factory()
    model = _wrap(layer, input_shape)
    symbolic = [tuple(t.shape[1:]) for t in _as_list(layer.output)] if hasattr(layer, "output") else None
    eager = _as_list(layer(x, training=False))
    eager_shapes = [tuple(t.shape[1:]) for t in eager]
    facts["output_shapes"] = eager_shapes
    if symbolic is not None:
        assert len(symbolic) == len(eager_shapes) and all(
            _shapes_match(e, s) for e, s in zip(eager_shapes, symbolic)), \
            f"eager output shapes {eager_shapes} != symbolic {symbolic}"
    if expected_output_shape is not None:
        expected = expected_output_shape if isinstance(expected_output_shape, list) else [expected_output_shape]
        assert len(expected) == len(eager_shapes) and all(
            _shapes_match(a, e) for a, e in zip(eager_shapes, expected)), \
            f"output shapes {eager_shapes} != expected {expected}"
    for out in eager:
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(out))), "non-finite output"
    reference = _flat(eager)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x, training=False)), reference, atol=1e-6,
                               err_msg="wrapped model output differs from the layer output")

    # 2. Registration and config round trip.
    registered = keras.saving.get_registered_name(type(layer))
    assert registered.startswith("tfrobust>"), \
        f"{type(layer).__name__} is not registered under package 'tfrobust' (got {registered!r})"
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config, "from_config(get_config()) does not reproduce the config"
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is type(layer) and revived.get_config() == config

    # 3. .keras save / load.
    keras_path = os.path.join(tmp_path, "layer_check.keras")
    model.save(keras_path)
    reloaded = keras.saving.load_model(keras_path)
    facts["keras_error"] = float(np.max(np.abs(
        keras.ops.convert_to_numpy(reloaded(x, training=False)) - reference)))
    assert facts["keras_error"] <= atol, f".keras reload differs by {facts['keras_error']:.3g}"

    # 4. SavedModel export + reload through tfrobust.export.
    saved_model_dir = export.export_saved_model(model, tmp_path, "layer_check", version=1)
    artifact = export.load(saved_model_dir)
    facts["saved_model_error"] = float(np.max(np.abs(artifact.predict(x) - reference)))
    assert facts["saved_model_error"] <= atol, f"SavedModel reload differs by {facts['saved_model_error']:.3g}"

    # 5. TFLite fp32, or a documented reason that must still hold.
    tflite_path = os.path.join(tmp_path, "layer_check.tflite")
    if tflite == "convert":
        export.convert_tflite(saved_model_dir, tflite_path, "fp32")
        facts["tflite_error"] = float(np.max(np.abs(export.load(tflite_path).predict(x) - reference)))
        assert facts["tflite_error"] <= tflite_atol, f"TFLite output differs by {facts['tflite_error']:.3g}"
    else:
        facts["tflite_error"] = None
        # The documented reason must still hold; the converter and interpreter fail with several exception
        # types depending on the layer, and any failure keeps the reason true.
        with pytest.raises(Exception):  # noqa: B017
            export.convert_tflite(saved_model_dir, tflite_path, "fp32")
            export.load(tflite_path).predict(x)

    # 6. Finite gradients: input gradients in both modes, weight gradients in training mode.
    _check_gradients(layer, x, training=False, weights=False)
    if check_training:
        grads = _check_gradients(layer, x, training=True, weights=True)
        if layer.trainable_weights:
            assert any(np.any(keras.ops.convert_to_numpy(g) != 0) for g in grads[1:]), \
                "every trainable weight has a zero gradient"

    # 7. mixed_bfloat16: same weights, bfloat16 compute, finite, close to float32.
    facts["bfloat16_error"] = None
    if check_mixed_precision:
        previous = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        try:
            mixed = layer_factory()
            assert mixed.compute_dtype == "bfloat16", f"compute dtype {mixed.compute_dtype} under mixed_bfloat16"
            mixed(x[:1], training=False)  # builds the layer and every sub-layer
            mixed.set_weights(layer.get_weights())
            outputs = _numpy_list(mixed(x, training=False))
            for out in _as_list(mixed(x, training=False)):
                assert keras.backend.standardize_dtype(out.dtype) in ("bfloat16", "float32"), out.dtype
            assert all(np.all(np.isfinite(o)) for o in outputs), "non-finite output under mixed_bfloat16"
            error = float(np.max(np.abs(_flat(outputs) - reference)))
            facts["bfloat16_error"] = error
            scale = max(1.0, float(np.max(np.abs(reference))))
            assert error <= mixed_rtol * scale, \
                f"mixed_bfloat16 output differs from float32 by {error:.3g} (scale {scale:.3g})"
            _check_gradients(mixed, x, training=False, weights=False)
        finally:
            keras.mixed_precision.set_global_policy(previous)
    return facts
