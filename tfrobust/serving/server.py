"""A local model server speaking TF Serving's two APIs over an export base (for users without TF Serving,
and for the tests).

- gRPC: ``tensorflow.serving.PredictionService`` (``Predict``, ``GetModelMetadata``) and
  ``ModelService.GetModelStatus`` with the servicers generated in ``tensorflow-serving-api``, on
  ``grpcio``'s thread-pool server.
- REST: TF Serving's REST API on uvicorn + starlette: ``GET /v1/models/<name>[/versions/<n>]`` (status),
  ``…/metadata``, ``POST …:predict`` with the row (``instances`` → ``predictions``) or columnar
  (``inputs`` → ``outputs``) format, errors as ``{"error": "<message>"}``.

Why uvicorn + starlette rather than KServe's ``ModelServer`` (whose V1 protocol follows TF Serving's REST
API): the two packages add four small dependencies (h11, anyio, click, typing-extensions) and no pins
on what TensorFlow needs; KServe pulls ~30 packages, a Kubernetes client among them, and pins
protobuf < 7, which TF 2.21 does not accept. Here the ASGI stack does HTTP, and the API's semantics
(paths, JSON layouts, status codes) are this module's few hundred lines.

Safety: binds 127.0.0.1 unless told otherwise; caps the request body (``max_body_bytes``, REST and gRPC
message size) and the batch (``max_batch``); serves only ``ModelRepository``'s listing; rejects
malformed requests with 4xx / INVALID_ARGUMENT and keeps serving; ``stop`` drains in-flight requests.
"""

import concurrent.futures
import json
import re
import socket
import threading
import time

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format

from tfrobust.core.messages import first_line
from tfrobust.errors import InvalidRequest, ModelNotFound, ServingError, check_int
from tfrobust.export.contract import MAX_MESSAGE_BYTES, NAME
from tfrobust.serving.repository import ModelRepository

DEFAULT_MAX_BATCH = 1024
DEFAULT_MAX_BODY_BYTES = MAX_MESSAGE_BYTES
_REST_PATH = re.compile(rf"^(?P<name>{NAME})(?:/versions/(?P<version>[0-9]{{1,18}}))?"
                        r"(?P<suffix>/metadata|:[a-z]+)?$")


# -- requests shared by both protocols ----------------------------------------------------------------
def predict(repository, name, version, signature_name, inputs, output_filter, max_batch):
    """(servable, {output: array}) for one predict request; raises ModelNotFound / InvalidRequest."""
    servable = repository.get(name, version)
    if signature_name not in ("", "serving_default"):
        raise InvalidRequest(f"Serving signature name: \"{signature_name}\" not found in signature def "
                             f"(signatures: serving_default)")
    images = servable.validate(inputs, max_batch)
    return servable, servable.predict(images, output_filter)


def signature_def_map(servable):
    from tensorflow_serving.apis import get_model_metadata_pb2  # pylint: disable=import-outside-toplevel

    result = get_model_metadata_pb2.SignatureDefMap()
    for key, value in servable.signature_defs.items():
        result.signature_def[key].CopyFrom(value)
    return result


# -- gRPC ---------------------------------------------------------------------------------------------
def _grpc_servicers(repository, max_batch, max_message_bytes=DEFAULT_MAX_BODY_BYTES):
    # pylint: disable=import-outside-toplevel
    from tensorflow.core.protobuf import error_codes_pb2
    from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc,
                                         predict_pb2, prediction_service_pb2_grpc)

    def guarded(context, call):
        try:
            return call()
        except ModelNotFound as error:
            context.abort(grpc.StatusCode.NOT_FOUND, str(error))
        except InvalidRequest as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        except ServingError as error:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))

    def version_of(spec):
        return spec.version.value if spec.HasField("version") else None

    class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
        """Predict and GetModelMetadata; Classify, Regress and MultiInference stay UNIMPLEMENTED (the
        exported signature is a predict signature)."""

        def Predict(self, request, context):
            def call():
                # The declared shape is checked before the tensor is materialised: make_ndarray fills a
                # declared shape from an empty or one-value proto, so ~100 bytes could allocate gigabytes.
                for key, value in request.inputs.items():
                    dims = [dim.size for dim in value.tensor_shape.dim]
                    if int(np.prod(dims, dtype=np.int64)) * 4 > max_message_bytes:
                        raise InvalidRequest(f"input '{key}' declares shape {dims}: more than the "
                                             f"{max_message_bytes}-byte message limit")
                try:
                    inputs = {key: tf.make_ndarray(value) for key, value in request.inputs.items()}
                except (TypeError, ValueError) as error:
                    raise InvalidRequest(f"malformed TensorProto: {error}") from error
                servable, outputs = predict(repository, request.model_spec.name, version_of(request.model_spec),
                                            request.model_spec.signature_name, inputs,
                                            list(request.output_filter), max_batch)
                response = predict_pb2.PredictResponse()
                response.model_spec.name = servable.name
                response.model_spec.version.value = servable.version
                response.model_spec.signature_name = "serving_default"
                for key, value in outputs.items():
                    response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
                return response
            return guarded(context, call)

        def GetModelMetadata(self, request, context):
            def call():
                if list(request.metadata_field) != ["signature_def"]:
                    raise InvalidRequest("Metadata field must be exactly 'signature_def', got "
                                         f"{list(request.metadata_field)}")
                servable = repository.get(request.model_spec.name, version_of(request.model_spec))
                response = get_model_metadata_pb2.GetModelMetadataResponse()
                response.model_spec.name = servable.name
                response.model_spec.version.value = servable.version
                response.metadata["signature_def"].Pack(signature_def_map(servable))
                return response
            return guarded(context, call)

    class ModelService(model_service_pb2_grpc.ModelServiceServicer):
        def GetModelStatus(self, request, context):
            def call():
                response = get_model_status_pb2.GetModelStatusResponse()
                for version, error in repository.status(request.model_spec.name, version_of(request.model_spec)):
                    status = response.model_version_status.add()
                    status.version = version
                    if error is None:
                        status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
                    else:  # TF Serving reports a version that failed to load as END with the load error
                        status.state = get_model_status_pb2.ModelVersionStatus.END
                        status.status.error_code = error_codes_pb2.UNKNOWN
                        status.status.error_message = error
                return response
            return guarded(context, call)

    return (prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server, PredictionService(),
            model_service_pb2_grpc.add_ModelServiceServicer_to_server, ModelService())


# -- REST ---------------------------------------------------------------------------------------------
def _error(status, message):
    from starlette.responses import JSONResponse  # pylint: disable=import-outside-toplevel

    return JSONResponse({"error": message}, status_code=status)


def _tensor(value, what):
    try:
        array = np.asarray(value, np.float32)
    except (TypeError, ValueError, RecursionError) as error:
        raise InvalidRequest(f"{what} is not a rectangular array of numbers: {error}") from error
    return array


def parse_predict_body(body):
    """(signature_name, {input: array}, format) of a REST predict body, TF Serving's row or columnar form.

    Row: ``{"instances": [<image>, …]}`` or ``[{"images": <image>}, …]``. Columnar: ``{"inputs": <batch>}``
    or ``{"inputs": {"images": <batch>}}``. Numbers become float32.
    """
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise InvalidRequest(f"JSON Parse error: {error}") from error
    if not isinstance(request, dict):
        raise InvalidRequest("request body must be a JSON object")
    signature_name = request.get("signature_name", "serving_default")
    if not isinstance(signature_name, str):
        raise InvalidRequest("'signature_name' must be a string")
    if ("instances" in request) == ("inputs" in request):
        raise InvalidRequest("JSON object must have exactly one of 'instances' (row format) or 'inputs' "
                             "(columnar format)")
    if "instances" in request:
        instances = request["instances"]
        if not isinstance(instances, list):
            raise InvalidRequest("'instances' must be a list")
        if instances and all(isinstance(item, dict) for item in instances):
            keys = {frozenset(item) for item in instances}
            if len(keys) != 1:
                raise InvalidRequest("every instance must name the same inputs")
            inputs = {key: _tensor([item[key] for item in instances], f"input '{key}'") for key in keys.pop()}
        elif any(isinstance(item, dict) for item in instances):
            raise InvalidRequest("instances must be all objects (named inputs) or all tensors")
        else:
            inputs = {"images": _tensor(instances, "'instances'")}
        return signature_name, inputs, "row"
    columns = request["inputs"]
    if isinstance(columns, dict):
        inputs = {key: _tensor(value, f"input '{key}'") for key, value in columns.items()}
    else:
        inputs = {"images": _tensor(columns, "'inputs'")}
    return signature_name, inputs, "columnar"


def predict_response(outputs, request_format):
    """TF Serving's JSON response: row → ``{"predictions": […]}`` (objects per instance when there are
    several outputs), columnar → ``{"outputs": …}`` (an object of named outputs when there are several)."""
    names = sorted(outputs)
    if request_format == "row":
        if len(names) == 1:
            return {"predictions": outputs[names[0]].tolist()}
        columns = {name: outputs[name].tolist() for name in names}
        return {"predictions": [{name: columns[name][i] for name in names}
                                for i in range(len(columns[names[0]]))]}
    if len(names) == 1:
        return {"outputs": outputs[names[0]].tolist()}
    return {"outputs": {name: outputs[name].tolist() for name in names}}


def rest_app(repository, max_batch=DEFAULT_MAX_BATCH, max_body_bytes=DEFAULT_MAX_BODY_BYTES):
    """The starlette application of TF Serving's REST API over ``repository``."""
    # pylint: disable=import-outside-toplevel
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    def status(name, version):
        return {"model_version_status": [
            {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            if error is None else {"version": str(v), "state": "END",
                                   "status": {"error_code": "UNKNOWN", "error_message": error}}
            for v, error in repository.status(name, version)]}

    def metadata(name, version):
        servable = repository.get(name, version)
        return {"model_spec": {"name": servable.name, "signature_name": "", "version": str(servable.version)},
                "metadata": {"signature_def": json_format.MessageToDict(
                    signature_def_map(servable), preserving_proto_field_name=True)}}

    def run_predict(name, version, body):
        signature_name, inputs, request_format = parse_predict_body(body)
        _, outputs = predict(repository, name, version, signature_name, inputs, (), max_batch)
        return predict_response(outputs, request_format)

    async def read_body(request):
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            return None
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def models(request):
        match = _REST_PATH.match(request.path_params["rest"])
        if not match:
            return _error(404, f"Malformed request: {request.method} {request.url.path}")
        name, suffix = match["name"], match["suffix"]
        version = int(match["version"]) if match["version"] else None
        try:
            if request.method == "GET" and suffix is None:
                return JSONResponse(await run_in_threadpool(status, name, version))
            if request.method == "GET" and suffix == "/metadata":
                return JSONResponse(await run_in_threadpool(metadata, name, version))
            if request.method == "POST" and suffix == ":predict":
                body = await read_body(request)
                if body is None:
                    return _error(413, f"request body exceeds {max_body_bytes} bytes")
                return JSONResponse(await run_in_threadpool(run_predict, name, version, body))
            if request.method == "POST" and suffix in (":classify", ":regress"):
                return _error(400, f"{suffix[1:]} is not supported: the exported signature is a predict "
                                   "signature; use :predict")
            return _error(404, f"Malformed request: {request.method} {request.url.path}")
        except ModelNotFound as error:
            return _error(404, str(error))
        except InvalidRequest as error:
            return _error(400, str(error))
        except ServingError as error:
            return _error(500, str(error))
        except Exception as error:  # pylint: disable=broad-except
            # Whatever went wrong, the client gets TF Serving's error body and the server keeps serving.
            return _error(500, f"internal error: {type(error).__name__}: {first_line(error)}")

    async def not_found(request, exc):  # pylint: disable=unused-argument
        return _error(404, f"Malformed request: {request.method} {request.url.path}")

    return Starlette(routes=[Route("/v1/models/{rest:path}", models, methods=["GET", "POST"])],
                     exception_handlers={404: not_found, 405: not_found})


# -- the server ---------------------------------------------------------------------------------------
class ModelServer:
    """Both APIs over one export base, in background threads.

    Args:
      export_base: folder of ``<name>/<version>/`` SavedModels.
      host: interface to bind (127.0.0.1: this machine only).
      rest_port, grpc_port: ports (0: a free one, read back from ``rest_port``/``grpc_port`` after
        ``start``); None disables that protocol.
      max_batch: most images per request.
      max_body_bytes: largest REST body and gRPC message accepted.
      workers: gRPC handler threads.

    Use ``with ModelServer(...) as server:`` or ``start()`` / ``stop()``.
    """

    def __init__(self, export_base, *, host="127.0.0.1", rest_port=8501, grpc_port=8500,
                 max_batch=DEFAULT_MAX_BATCH, max_body_bytes=DEFAULT_MAX_BODY_BYTES, workers=8):
        for name, port in (("rest_port", rest_port), ("grpc_port", grpc_port)):
            if port is not None:
                check_int(name, port, 0, 65535)
        if rest_port is None and grpc_port is None:
            raise ServingError("enable at least one of rest_port and grpc_port")
        check_int("max_batch", max_batch, 1)
        check_int("max_body_bytes", max_body_bytes, 1)
        check_int("workers", workers, 1)
        self.repository = ModelRepository(export_base)
        self.host, self.rest_port, self.grpc_port = host, rest_port, grpc_port
        self.max_batch, self.max_body_bytes, self.workers = max_batch, max_body_bytes, workers
        self._grpc_server = self._uvicorn = self._rest_thread = None

    def start(self):
        try:
            if self.grpc_port is not None:
                self._start_grpc()
            if self.rest_port is not None:
                self._start_rest()
        except BaseException:
            self.stop(grace=0)
            raise
        return self

    def _start_grpc(self):
        options = [("grpc.max_receive_message_length", self.max_body_bytes),
                   ("grpc.max_send_message_length", self.max_body_bytes), ("grpc.so_reuseport", 0)]
        server = grpc.server(concurrent.futures.ThreadPoolExecutor(self.workers), options=options)
        add_prediction, prediction, add_model, model = _grpc_servicers(self.repository, self.max_batch,
                                                                       self.max_body_bytes)
        add_prediction(prediction, server)
        add_model(model, server)
        try:
            port = server.add_insecure_port(f"{self.host}:{self.grpc_port}")
        except RuntimeError as error:  # grpcio raises where older versions returned 0
            raise ServingError(f"cannot bind gRPC to {self.host}:{self.grpc_port} (address in use?)") from error
        if not port:
            raise ServingError(f"cannot bind gRPC to {self.host}:{self.grpc_port} (address in use?)")
        server.start()
        self._grpc_server, self.grpc_port = server, port

    def _start_rest(self):
        import uvicorn  # pylint: disable=import-outside-toplevel

        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.rest_port))
        except OSError as error:
            sock.close()
            raise ServingError(f"cannot bind REST to {self.host}:{self.rest_port}: {error.strerror}") from error
        self.rest_port = sock.getsockname()[1]
        config = uvicorn.Config(rest_app(self.repository, self.max_batch, self.max_body_bytes), log_level="warning",
                                lifespan="off", access_log=False)
        self._uvicorn = uvicorn.Server(config)
        self._rest_thread = threading.Thread(target=self._uvicorn.run, kwargs={"sockets": [sock]},
                                             name="rest-server", daemon=True)
        self._rest_thread.start()
        deadline = time.monotonic() + 30
        while not self._uvicorn.started and self._rest_thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self._uvicorn.started:
            raise ServingError(f"REST server on {self.host}:{self.rest_port} failed to start")

    def stop(self, grace=5.0):
        """Stops accepting requests and waits up to ``grace`` seconds for in-flight ones."""
        if self._uvicorn is not None:
            self._uvicorn.config.timeout_graceful_shutdown = grace
            self._uvicorn.should_exit = True
            self._rest_thread.join(grace + 1)
            self._uvicorn = None
        if self._grpc_server is not None:
            self._grpc_server.stop(grace).wait(grace + 1)
            self._grpc_server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    @property
    def rest_url(self):
        return f"http://{self.host}:{self.rest_port}"

    @property
    def grpc_target(self):
        return f"{self.host}:{self.grpc_port}"
