"""The REST and gRPC clients against the local server: same predictions as in-process, TF Serving's JSON
layouts, versions, malformed requests (4xx, server keeps serving), clear client errors, a bounded load
test, and a server killed or stopped mid-evaluation."""

import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import grpc
import keras
import numpy as np
import pytest
import requests
import tensorflow as tf

from tfrobust import export
from tfrobust.evaluation import label_of
from tfrobust.serving import InvalidRequest, ModelNotFound, ServingError
from tfrobust.serving.server import ModelServer

SHAPE = (8, 8, 1)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def small_model(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input(SHAPE), keras.layers.Conv2D(4, 3, activation="relu"),
                             keras.layers.Flatten(), keras.layers.Dense(3)])


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Versions 1 and 2 (different weights) of "net" behind one server on free loopback ports."""
    base = str(tmp_path_factory.mktemp("export"))
    images = np.random.default_rng(0).uniform(size=(40, *SHAPE)).astype(np.float32)
    models = {version: small_model(version) for version in (1, 2)}
    for version, model in models.items():
        export.export_saved_model(model, base, "net", version=version, representative_images=images)
    server = ModelServer(base, rest_port=0, grpc_port=0, max_batch=64, max_body_bytes=1 << 20).start()
    yield server, models, images, base
    server.stop(grace=1.0)


def test_both_protocols_predict_what_the_model_computes(served):
    server, models, images, base = served
    reference = {v: export.load(os.path.join(base, "net", str(v))).predict(images) for v in models}
    clients = [export.load(f"{server.rest_url}/v1/models/net", max_batch=16),
               export.load(f"{server.rest_url}/v1/models/net", request_format="columnar"),
               export.load(f"grpc://{server.grpc_target}/net", max_batch=16)]
    for client in clients:
        assert client.version == 2  # the latest, pinned at connect time
        assert not client.differentiable and client.input_shape == SHAPE and client.num_classes == 3
        np.testing.assert_allclose(client.predict(images), reference[2], atol=1e-5)
        assert client.queries == len(images)
    assert clients[0].requests == 1 + 3  # metadata + ceil(40 / 16) predict requests
    pinned = export.load(f"grpc://{server.grpc_target}/net/versions/1")
    np.testing.assert_allclose(pinned.predict(images), reference[1], atol=1e-5)
    assert [label_of(c) for c in (clients[0], pinned)] == ["net@2:served_rest", "net@1:served_grpc"]
    np.testing.assert_allclose(reference[1], models[1](images).numpy(), atol=1e-5)


def test_rest_status_metadata_and_both_json_formats(served):
    server, models, images, _ = served
    url = f"{server.rest_url}/v1/models/net"
    assert requests.get(url, timeout=10).json() == {"model_version_status": [
        {"version": v, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}} for v in ("1", "2")]}
    metadata = requests.get(f"{url}/versions/1/metadata", timeout=10).json()
    assert metadata["model_spec"] == {"name": "net", "signature_name": "", "version": "1"}
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    assert [d["size"] for d in signature["inputs"]["images"]["tensor_shape"]["dim"]] == ["-1", "8", "8", "1"]
    assert sorted(signature["outputs"]) == ["logits", "probabilities"]
    expected = models[2](images[:2]).numpy()
    row = requests.post(f"{url}:predict", timeout=10,
                        json={"signature_name": "serving_default", "instances": images[:2].tolist()}).json()
    assert [sorted(p) for p in row["predictions"]] == [["logits", "probabilities"]] * 2
    np.testing.assert_allclose([p["logits"] for p in row["predictions"]], expected, atol=1e-5)
    named = requests.post(f"{url}:predict", timeout=10,
                          json={"instances": [{"images": image} for image in images[:2].tolist()]})
    assert named.json() == row
    columnar = requests.post(f"{url}:predict", timeout=10, json={"inputs": {"images": images[:2].tolist()}}).json()
    np.testing.assert_allclose(columnar["outputs"]["logits"], expected, atol=1e-5)
    np.testing.assert_allclose(np.sum(columnar["outputs"]["probabilities"], axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("body,status,message", [
    ("{not json", 400, "JSON Parse error"),
    ('[1, 2]', 400, "must be a JSON object"),
    ('{"instances": [], "inputs": []}', 400, "exactly one of 'instances'"),
    ('{"instances": [[[[0.5]]]]}', 400, "must have shape [N, 8, 8, 1], got [1, 1, 1, 1]"),
    ('{"instances": [[1, 2], [3]]}', 400, "not a rectangular array"),
    ('{"instances": [["a"]]}', 400, "not a rectangular array"),
    ("[" * 100000 + "]" * 100000, 400, "JSON Parse error"),
    ('{"inputs": {"pixels": [[0]]}}', 400, "takes exactly one input 'images', got ['pixels']"),
    ('{"signature_name": "other", "instances": [[0]]}', 400, '"other" not found'),
    ("NAN", 400, "contains NaN or infinite values"),  # NAN, BIG, BATCH, BODY: bodies built in the test
    ("BIG", 400, "must lie in [0, 1], got values in [0, 2]"),
    ("BATCH", 400, "batch of 65 images; this server takes 1 to 64"),
    ("BODY", 413, "request body exceeds 1048576 bytes"),
])
def test_malformed_rest_requests_get_4xx_and_the_server_keeps_serving(served, body, status, message):
    server, _, images, _ = served
    image = images[0].tolist()
    body = {"NAN": json.dumps({"instances": [np.where(images[0] > 0.5, np.nan, images[0]).tolist()]}),
            "BIG": json.dumps({"instances": [np.full(SHAPE, 2.0).tolist(), np.zeros(SHAPE).tolist()]}),
            "BATCH": json.dumps({"instances": [image] * 65}),
            "BODY": "[" + "0," * (1 << 19) + "0]"}.get(body, body)
    answer = requests.post(f"{server.rest_url}/v1/models/net:predict", data=body, timeout=10)
    assert answer.status_code == status
    assert message in answer.json()["error"]
    assert requests.post(f"{server.rest_url}/v1/models/net:predict", json={"instances": [image]},
                         timeout=10).status_code == 200


def test_malformed_grpc_requests_and_unknown_models(served):
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    server, _, images, _ = served
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(server.grpc_target))
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "net"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(images[:2].astype(np.float64)))
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(request, timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "must be float32" in error.value.details()
    # A ~100-byte proto declaring a huge shape is refused before it is materialised (make_ndarray would
    # fill the declared shape with zeros).
    huge = predict_pb2.PredictRequest()
    huge.model_spec.name = "net"
    huge.inputs["images"].dtype = tf.float32.as_datatype_enum
    for size in (64, 4096, 4096, 3):
        huge.inputs["images"].tensor_shape.dim.add().size = size
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(huge, timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "declares shape [64, 4096, 4096, 3]: more than" in error.value.details()
    request.model_spec.name = "nope"
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(request, timeout=10)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND and "served models: net" in error.value.details()
    # Through the clients: one line each, the server's words verbatim.
    with pytest.raises(ModelNotFound, match=r"versions/3/metadata: Servable not found .*Specific\(net, 3\)"):
        export.load(f"{server.rest_url}/v1/models/net/versions/3")
    with pytest.raises(ModelNotFound, match="model 'nope'"):
        export.load(f"grpc://{server.grpc_target}/nope")
    client = export.load(f"grpc://{server.grpc_target}/net", max_batch=100)
    with pytest.raises(InvalidRequest, match="INVALID_ARGUMENT: batch of 100 images; this server takes 1 to 64"):
        client._predict_batch(np.repeat(images, 3, axis=0)[:100])  # pylint: disable=protected-access
    # requests normalises "../" away before sending, so the model-name guard is checked where it stands.
    for name in ("../../etc", "..", "net/../net", "/etc/passwd"):
        with pytest.raises(ModelNotFound):
            server.repository.get(name)
    with pytest.raises(ServingError, match="expected http://host:port/v1/models/<name>"):
        export.load("http://127.0.0.1:1/models/net")


def test_ports_in_use_give_one_clear_error(served):
    server, _, _, base = served
    with pytest.raises(ServingError, match=f"cannot bind gRPC to 127.0.0.1:{server.grpc_port}"):
        ModelServer(base, rest_port=None, grpc_port=server.grpc_port).start()
    with pytest.raises(ServingError, match=f"cannot bind REST to 127.0.0.1:{server.rest_port}: Address already in use"):
        ModelServer(base, rest_port=server.rest_port, grpc_port=0).start()


def test_unreachable_server_fails_fast_after_bounded_retries():
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for url in (f"http://127.0.0.1:{port}/v1/models/net", f"grpc://127.0.0.1:{port}/net"):
        start = time.perf_counter()
        with pytest.raises(ServingError, match=r"cannot reach .*connection refused.* \(gave up after 3 attempts\)"):
            export.load(url, retries=2, backoff=0.05)
        assert time.perf_counter() - start < 5


def test_a_failed_connect_closes_the_session_and_the_channel(monkeypatch):
    from tfrobust.export import grpc_client, rest_client  # pylint: disable=import-outside-toplevel

    closed = []

    class Session(requests.Session):
        def close(self):
            closed.append("session")
            super().close()

    real_channel = grpc.insecure_channel

    def channel(*args, **kwargs):
        made = real_channel(*args, **kwargs)
        real_close = made.close
        made.close = lambda: (closed.append("channel"), real_close())[1]
        return made

    monkeypatch.setattr(rest_client.requests, "Session", Session)
    monkeypatch.setattr(grpc_client.grpc, "insecure_channel", channel)
    with socket.socket() as probe:  # a loopback port that was free a moment ago: nothing listens on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for url in (f"http://127.0.0.1:{port}/v1/models/net", f"grpc://127.0.0.1:{port}/net"):
        with pytest.raises(ServingError, match="cannot reach"):
            export.load(url, retries=0)
    assert closed == ["session", "channel"]


def test_a_grpc_message_over_the_size_limit_fails_at_once_saying_what_to_change(served):
    server, _, images, _ = served  # the server takes messages up to 1 MiB: 4500 images of 8×8 are 1.15 MB
    client = export.load(f"grpc://{server.grpc_target}/net", max_batch=4500, retries=3, backoff=30.0)
    big = np.resize(images, (4500, *SHAPE))
    start = time.perf_counter()
    with pytest.raises(ServingError, match=r"a message of \d+ bytes exceeds the 1048576-byte gRPC limit: "
                                           r"lower max_batch \(now 4500\) or raise the server's message limit"):
        client.predict(big)
    assert client.retried == 0 and time.perf_counter() - start < 30.0  # not retried (the backoff is 30 s)
    client.close()


def test_load_eight_clients_times_a_hundred_requests_per_protocol(served):
    server, models, images, _ = served
    expected = np.argmax(models[2](images).numpy(), axis=1)

    def client_loop(url, seed):
        client = export.load(url, timeout=10)
        rng = np.random.default_rng(seed)
        errors, latencies = 0, []
        for _ in range(100):
            index = rng.integers(0, len(images), size=int(rng.integers(1, 5)))
            start = time.perf_counter()
            try:
                errors += int(np.any(np.argmax(client.predict(images[index]), axis=1) != expected[index]))
            except ServingError:
                errors += 1
            latencies.append(time.perf_counter() - start)
        return errors, latencies

    for url in (f"{server.rest_url}/v1/models/net", f"grpc://{server.grpc_target}/net"):
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(client_loop, [url] * 8, range(8), timeout=120))
        assert sum(errors for errors, _ in results) == 0
        assert sum(len(latencies) for _, latencies in results) == 800


def test_a_server_stopped_mid_evaluation_gives_one_clear_error(served):
    _, _, images, base = served
    server = ModelServer(base, rest_port=0, grpc_port=0).start()
    clients = [export.load(f"{server.rest_url}/v1/models/net", retries=2, backoff=0.05, max_batch=4),
               export.load(f"grpc://{server.grpc_target}/net", retries=2, backoff=0.05, max_batch=4)]
    threading.Timer(0.3, server.stop, kwargs={"grace": 0}).start()
    for client in clients:
        _assert_one_error_line(client, images)


@pytest.mark.slow
def test_serve_script_stops_on_sigterm_and_a_killed_server_gives_one_error(served):
    _, _, images, base = served
    processes = [subprocess.Popen([sys.executable, os.path.join(ROOT, "export", "serve.py"), f"--export_dir={base}",
                                   "--rest_port=0", "--grpc_port=0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env={**os.environ, "PYTHONPATH": ROOT}) for _ in range(2)]
    try:
        urls = [_read_urls(process) for process in processes]
        # SIGTERM: a graceful stop, status 0.
        rest, _ = urls[0]
        assert export.load(f"{rest}/v1/models/net").predict(images[:3]).shape == (3, 3)
        processes[0].send_signal(signal.SIGTERM)
        out, _ = processes[0].communicate(timeout=30)
        assert processes[0].returncode == 0 and out.strip().endswith("stopped")
        # SIGKILL mid-evaluation: the clients' next request fails with one clear line within seconds.
        rest, grpc_url = urls[1]
        clients = [export.load(f"{rest}/v1/models/net", retries=2, backoff=0.05, max_batch=4),
                   export.load(f"{grpc_url}/net", retries=2, backoff=0.05, max_batch=4)]
        threading.Timer(0.3, processes[1].kill).start()
        for client in clients:
            _assert_one_error_line(client, images)
    finally:
        for process in processes:
            process.kill()
            process.wait(30)


def _assert_one_error_line(client, images):
    start = time.perf_counter()
    with pytest.raises(ServingError) as error:
        for _ in range(10000):
            client.predict(images)
    assert time.perf_counter() - start < 20
    assert len(str(error.value).splitlines()) == 1 and str(client.model_name) in str(error.value)


def _read_urls(process):
    rest = grpc_url = None
    deadline = time.monotonic() + 120
    while (rest is None or grpc_url is None) and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"serve.py exited: {process.stderr.read()[-2000:]}")
        if line.startswith("REST on "):
            rest = line.split()[2].rsplit("/v1/", 1)[0]
        elif line.startswith("gRPC on "):
            grpc_url = line.split()[2].rsplit("/", 1)[0]
    return rest, grpc_url


def test_open_spatial_axes_accept_any_image_size():
    from tfrobust.serving.repository import shape_fits

    assert shape_fits((32, 48, 1), (None, None, 1)) and shape_fits((28, 28, 1), (28, 28, 1))
    assert not shape_fits((32, 48, 3), (None, None, 1)) and not shape_fits((28, 27, 1), (28, 28, 1))
    assert not shape_fits((28, 28), (28, 28, 1))
