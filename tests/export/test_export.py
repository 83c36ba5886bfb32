"""Export formats, the TF-Serving layout, atomic writes and the Artifact interface."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfrobust
from tfrobust import export
from tfrobust.export import warmup
from tfrobust.attacks import PGD
from tfrobust.errors import ArtifactError, TfrobustError

SHAPE = (8, 8, 1)


def tiny_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input(SHAPE), keras.layers.Conv2D(4, 3, activation="relu"),
                             keras.layers.Flatten(), keras.layers.Dense(3)])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("export"))
    model = tiny_model()
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(10, *SHAPE)).astype(np.float32)
    # Calibration covers the test inputs, so int8 errors come from rounding, not from clipped ranges.
    calibration = np.concatenate([rng.uniform(size=(64, *SHAPE)).astype(np.float32), x])
    paths = export.export_all(model, base, "net",
                              ["saved_model", "keras", "tflite_fp32", "tflite_dynamic", "tflite_int8"],
                              representative_images=calibration,
                              description={"class_names": ["a", "b", "c"], "dataset": "toy",
                                           "method": {"name": "pgd_at", "eps": 0.1, "norm": "linf"}})
    return model, base, paths, x


def test_layout_is_tf_serving_and_versions_increase(exported, tmp_path):
    model, base, paths, _ = exported
    assert paths["saved_model"] == os.path.join(base, "net", "1")
    assert os.path.isfile(os.path.join(base, "net", "1", "saved_model.pb"))
    assert export.export_saved_model(model, str(tmp_path), "m") == os.path.join(str(tmp_path), "m", "1")
    assert export.export_saved_model(model, str(tmp_path), "m") == os.path.join(str(tmp_path), "m", "2")
    assert sorted(os.listdir(os.path.join(str(tmp_path), "m"))) == ["1", "2"]  # no temporary leftovers


def test_serving_signature_names_and_values(exported):
    model, _, paths, x = exported
    loaded = tf.saved_model.load(paths["saved_model"])
    signature = loaded.signatures["serving_default"]
    assert list(signature.structured_input_signature[1]) == ["images"]
    spec = signature.structured_input_signature[1]["images"]
    assert spec.dtype == tf.float32 and spec.shape.as_list() == [None, *SHAPE]
    outputs = signature(images=tf.constant(x))
    assert set(outputs) == {"logits", "probabilities"}
    np.testing.assert_allclose(outputs["logits"].numpy(), model(x).numpy(), atol=1e-6)
    np.testing.assert_allclose(outputs["probabilities"].numpy().sum(axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("fmt,atol", [("saved_model", 1e-6), ("keras", 1e-6), ("tflite_fp32", 1e-5),
                                      ("tflite_dynamic", 0.05)])
def test_every_format_loads_behind_one_interface(exported, fmt, atol):
    model, _, paths, x = exported
    artifact = export.load(paths[fmt])
    assert artifact.input_shape == SHAPE and artifact.num_classes == 3
    np.testing.assert_allclose(artifact.predict(x, batch_size=4), model(x).numpy(), atol=atol)


def test_warmup_requests_replay_through_the_signature(exported):
    # TF Serving replays assets.extra/tf_serving_warmup_requests (PredictionLog protos) on load: read
    # them back with its protos and run each through the signature as it would.
    from tensorflow_serving.apis import prediction_log_pb2

    model, _, paths, _ = exported
    path = os.path.join(paths["saved_model"], "assets.extra", "tf_serving_warmup_requests")
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]
    assert [log.WhichOneof("log_type") for log in logs] == ["predict_log"] * 2
    requests = [log.predict_log.request for log in logs]
    assert requests == warmup.read_warmup_requests(paths["saved_model"])
    signature = tf.saved_model.load(paths["saved_model"]).signatures["serving_default"]
    sizes = []
    for request in requests:
        assert request.model_spec.name == "net" and request.model_spec.signature_name == "serving_default"
        assert list(request.inputs) == ["images"]
        images = tf.make_ndarray(request.inputs["images"])
        assert images.dtype == np.float32 and images.shape[1:] == SHAPE
        assert 0.0 <= images.min() and images.max() <= 1.0 and images.std() > 0.1  # real images, not a constant
        np.testing.assert_allclose(signature(images=tf.constant(images))["logits"].numpy(), model(images).numpy(),
                                   atol=1e-5)
        sizes.append(len(images))
    assert sizes == list(warmup.WARMUP_BATCHES)


def test_exports_describe_themselves_and_artifacts_know_version_and_fingerprint(exported, tmp_path):
    model, _, paths, _ = exported
    with open(os.path.join(paths["saved_model"], "assets.extra", "tfrobust.json"), encoding="utf-8") as handle:
        description = json.load(handle)
    assert description["class_names"] == ["a", "b", "c"] and description["dataset"] == "toy"
    assert description["training"]["method"] == "pgd_at" and description["training"]["eps"] == 0.1
    assert description["input"] == {"signature": "serving_default", "name": "images", "shape": [None, *SHAPE],
                                    "dtype": "float32", "range": [0.0, 1.0]}
    assert description["name"] == "net" and description["version"] == 1
    assert description["tfrobust_version"] == tfrobust.__version__
    artifact = export.load(paths["saved_model"])
    assert artifact.version == 1 and artifact.description == description
    expected = tf.saved_model.experimental.read_fingerprint(paths["saved_model"]).saved_model_checksum
    assert artifact.fingerprint == f"{expected:016x}"
    # Without description or data: label indices as class names, grey warm-up images, another fingerprint.
    second = export.export_saved_model(model, str(tmp_path), "net")
    assert export.load(second).description["class_names"] == ["0", "1", "2"]
    assert np.all(tf.make_ndarray(warmup.read_warmup_requests(second)[0].inputs["images"]) == 0.5)
    with pytest.raises(ArtifactError, match="2 class names for a model with 3 logits"):
        export.export_saved_model(model, str(tmp_path), "bad", description={"class_names": ["x", "y"]})
    assert not os.path.exists(os.path.join(str(tmp_path), "bad", "1"))


def test_int8_tflite_quantises_io_and_tracks_the_float_model(exported):
    model, _, paths, x = exported
    artifact = export.load(paths["tflite_int8"])
    assert artifact.quantized
    logits = artifact.predict(x)
    reference = model(x).numpy()
    assert logits.dtype == np.float32
    assert np.abs(logits - reference).max() < 0.1 * np.abs(reference).max() + 0.05
    assert np.mean(np.argmax(logits, 1) == np.argmax(reference, 1)) >= 0.8


def test_tf_serving_base_loads_its_newest_version(exported, tmp_path):
    model = tiny_model()
    export.export_saved_model(model, str(tmp_path), "m", version=3)
    export.export_saved_model(model, str(tmp_path), "m", version=7)
    assert export.load(os.path.join(str(tmp_path), "m")).path == os.path.join(str(tmp_path), "m", "7")


def test_reloaded_savedmodel_gives_the_same_gradients_and_attack(exported):
    model, _, paths, x = exported
    artifact = export.load(paths["saved_model"])
    y = np.argmax(model(x).numpy(), axis=1)
    images = tf.constant(x)
    grads = []
    for fn in (model, artifact.logits_fn):
        with tf.GradientTape() as tape:
            tape.watch(images)
            loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(y, fn(images)))
        grads.append(tape.gradient(loss, images).numpy())
    np.testing.assert_allclose(grads[0], grads[1], atol=1e-6)
    live = PGD(eps=0.1, steps=5, seed=1)(model, x, y).numpy()
    reloaded = PGD(eps=0.1, steps=5, seed=1)(artifact.logits_fn, x, y).numpy()
    np.testing.assert_allclose(live, reloaded, atol=1e-6)


def test_tflite_has_no_gradients_and_says_what_to_use(exported):
    artifact = export.load(exported[2]["tflite_fp32"])
    with pytest.raises(ArtifactError, match="gradient-free .* transfer"):
        artifact.logits_fn  # noqa: B018  (reading the property is what raises)


def test_savedmodel_serves_in_a_process_without_tfrobust(exported, tmp_path):
    model, _, paths, x = exported
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "tfrobust":
                    raise ImportError("tfrobust is blocked")
        sys.meta_path.insert(0, Block())
        try:
            import tfrobust
            sys.exit("tfrobust was importable")
        except ImportError:
            pass
        import numpy as np, tensorflow as tf
        loaded = tf.saved_model.load({paths['saved_model']!r})
        out = loaded.signatures["serving_default"](images=tf.constant(np.load({str(tmp_path / 'x.npy')!r})))
        np.save({str(tmp_path / 'out.npy')!r}, out["logits"].numpy())
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                            cwd=str(tmp_path), check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), model(x).numpy())


def test_failed_export_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken_write_out(self, path, **kwargs):
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "saved_model.pb"), "wb") as handle:
            handle.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(type(keras.export.ExportArchive()), "write_out", broken_write_out)
    with pytest.raises(OSError, match="disk full"):
        export.export_saved_model(tiny_model(), str(tmp_path), "m")
    assert os.listdir(os.path.join(str(tmp_path), "m")) == []


def test_existing_exports_are_never_overwritten(exported):
    model, base, paths, _ = exported
    with pytest.raises(ArtifactError, match="already exists"):
        export.export_saved_model(model, base, "net", version=1)
    with pytest.raises(ArtifactError, match="net.keras already exists"):
        export.export_all(model, base, "net", ["saved_model", "keras"])
    assert sorted(os.listdir(os.path.join(base, "net"))) == ["1"]  # the clash was caught before writing


def test_bad_paths_give_one_clear_error(tmp_path):
    with pytest.raises(ArtifactError, match=f"no model at {tmp_path}/missing"):
        export.load(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match="neither a SavedModel"):
        export.load(str(tmp_path / "empty"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "saved_model.pb").write_bytes(b"\x00garbage")
    with pytest.raises(ArtifactError, match=f"cannot load saved_model artifact {tmp_path}/bad"):
        export.load(str(tmp_path / "bad"))
    (tmp_path / "bad.tflite").write_bytes(b"not a flatbuffer")
    with pytest.raises(ArtifactError, match="cannot load tflite artifact .*bad.tflite"):
        export.load(str(tmp_path / "bad.tflite"))
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    with pytest.raises(ArtifactError, match="cannot load keras artifact .*bad.keras"):
        export.load(str(tmp_path / "bad.keras"))
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(ArtifactError, match="expected a SavedModel directory"):
        export.load(str(tmp_path / "model.onnx"))


def test_predict_rejects_wrong_shapes_and_ranges(exported):
    artifact = export.load(exported[2]["saved_model"])
    with pytest.raises(TfrobustError, match=r"expects images of shape \(N, 8, 8, 1\)"):
        artifact.predict(np.zeros((2, 9, 9, 1), np.float32))
    with pytest.raises(TfrobustError):
        artifact.predict(np.full((2, *SHAPE), 2.0, np.float32))


def test_bad_export_arguments(exported, tmp_path):
    model = exported[0]
    with pytest.raises(TfrobustError, match="unknown export format 'onnx'"):
        export.export_all(model, str(tmp_path), "m", ["onnx"])
    with pytest.raises(TfrobustError, match="needs representative images"):
        export.export_all(model, str(tmp_path), "m2", ["tflite_int8"])
    with pytest.raises(TfrobustError, match="model name must match"):
        export.export_saved_model(model, str(tmp_path), "../escape")


def test_warmup_images_of_another_shape_fail_the_export_before_anything_is_written(exported, tmp_path):
    # Written anyway, the warm-up records would make every load of the version fail (TF Serving replays them).
    with pytest.raises(ArtifactError, match=r"warm-up \(representative\) images have shape \[4, 9, 9, 1\] but "
                                            r"the model takes \[N, 8, 8, 1\]"):
        export.export_saved_model(exported[0], str(tmp_path), "m", representative_images=np.zeros((4, 9, 9, 1)))
    denoiser = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Conv2D(1, 3, padding="same")])
    with pytest.raises(ArtifactError, match=r"have shape \[2, 16, 16, 3\] but the model takes \[N, any, any, 1\]"):
        export.export_saved_model(denoiser, str(tmp_path), "d", representative_images=np.zeros((2, 16, 16, 3)))
    assert not os.listdir(tmp_path) or all(not os.listdir(tmp_path / name) for name in os.listdir(tmp_path))


def test_mixed_precision_models_export_in_float32_with_the_same_weights(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = tiny_model()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    x = np.random.default_rng(0).uniform(size=(6, *SHAPE)).astype(np.float32)
    paths = export.export_all(model, str(tmp_path), "bf16", ["saved_model", "tflite_int8"],
                              representative_images=x)
    reference = export.float32_model(model)
    assert all(layer.dtype_policy.compute_dtype == "float32" for layer in reference.layers)
    np.testing.assert_allclose(export.load(paths["saved_model"]).predict(x), reference(x).numpy(), atol=1e-6)
    # bfloat16 rounding is the only difference from the trained mixed-precision model.
    np.testing.assert_allclose(reference(x).numpy(), model(x).numpy(), atol=0.05)
    assert export.load(paths["tflite_int8"]).predict(x).shape == (6, 3)
