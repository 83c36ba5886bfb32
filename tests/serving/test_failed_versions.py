"""A version that fails to load, as TF Serving treats it: remembered (not reloaded until its files change),
reported END with its error by both status APIs, and skipped by "latest" so the previous version serves."""

import os
import shutil

import keras
import pytest
import requests

from tfrobust import export
from tfrobust.serving import repository as repository_module
from tfrobust.serving.repository import ModelRepository, VersionLoadError
from tfrobust.serving.server import ModelServer

SHAPE = (4, 4, 1)


def tiny_model(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(2)])


@pytest.fixture
def broken_latest(tmp_path, monkeypatch):
    """Version 1 good, version 2 a corrupt saved_model.pb; counts the load attempts per version."""
    base = str(tmp_path)
    export.export_saved_model(tiny_model(1), base, "net", version=1)
    broken = os.path.join(base, "net", "2")
    os.makedirs(broken)
    with open(os.path.join(broken, "saved_model.pb"), "wb") as handle:
        handle.write(b"not a SavedModel")
    attempts = []

    class CountingServable(repository_module.Servable):
        def __init__(self, name, version, path):
            attempts.append(version)
            super().__init__(name, version, path)

    monkeypatch.setattr(repository_module, "Servable", CountingServable)
    return base, attempts


def test_latest_falls_back_and_a_failed_version_is_not_retried_until_its_files_change(broken_latest):
    base, attempts = broken_latest
    repository = ModelRepository(base, rescan_seconds=0.0)
    assert repository.get("net").version == 1  # the newest version that loads
    assert attempts == [2, 1]
    for _ in range(3):
        assert repository.get("net").version == 1
        with pytest.raises(VersionLoadError, match="model 'net' version 2 failed to load: "):
            repository.get("net", 2)
    assert attempts == [2, 1]  # neither the failed nor the loaded version was loaded again
    status = repository.status("net")
    assert [version for version, _ in status] == [1, 2] and status[0][1] is None
    assert status[1][1].startswith("model 'net' version 2 failed to load: ")
    # A fixed version 2 (new files) is tried again and becomes the latest.
    shutil.rmtree(os.path.join(base, "net", "2"))
    export.export_saved_model(tiny_model(2), base, "net", version=2)
    assert repository.get("net").version == 2
    assert attempts == [2, 1, 2] and repository.status("net") == [(1, None), (2, None)]


def test_every_version_failing_is_one_clear_error(tmp_path):
    os.makedirs(tmp_path / "net" / "1")
    (tmp_path / "net" / "1" / "saved_model.pb").write_bytes(b"junk")
    with pytest.raises(VersionLoadError, match="no version of model 'net' loads: model 'net' version 1 failed"):
        ModelRepository(str(tmp_path)).get("net")


def test_both_status_apis_report_the_failed_version_and_predict_serves_the_previous(broken_latest):
    # pylint: disable=import-outside-toplevel
    import grpc
    from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

    base, _ = broken_latest
    with ModelServer(base, rest_port=0, grpc_port=0) as server:
        rest = requests.get(f"{server.rest_url}/v1/models/net", timeout=30).json()["model_version_status"]
        assert rest[0] == {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        assert rest[1]["version"] == "2" and rest[1]["state"] == "END"
        assert rest[1]["status"]["error_code"] == "UNKNOWN"
        assert "version 2 failed to load" in rest[1]["status"]["error_message"]
        with grpc.insecure_channel(server.grpc_target) as channel:
            request = get_model_status_pb2.GetModelStatusRequest()
            request.model_spec.name = "net"
            request.model_spec.version.value = 2
            answer = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=30)
        (status,) = answer.model_version_status
        assert status.version == 2 and status.state == get_model_status_pb2.ModelVersionStatus.END
        assert "version 2 failed to load" in status.status.error_message
        client = export.load(f"grpc://{server.grpc_target}/net")
        assert client.version == 1
        client.close()
        failed = requests.get(f"{server.rest_url}/v1/models/net/versions/2/metadata", timeout=30)
        assert failed.status_code == 500 and "version 2 failed to load" in failed.json()["error"]
