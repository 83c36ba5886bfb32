"""TF Serving gRPC client: ``grpc://host:8500/<name>[/versions/<n>]`` as an Artifact, through the
``PredictionService`` stub of ``tensorflow-serving-api`` (``GetModelMetadata`` once, then ``Predict``
with ``output_filter=["logits"]``). Tensors travel as ``TensorProto`` (``tf.make_tensor_proto`` /
``tf.make_ndarray``), so values are exact."""

import re

import grpc
import tensorflow as tf

from tfrobust.errors import InvalidRequest, ModelNotFound, ServingError
from tfrobust.export.contract import INPUT_NAME, MAX_MESSAGE_BYTES, SIGNATURE
from tfrobust.export.served_artifact import ServedArtifact, TransientError
from tfrobust.export.warmup import predict_request

# Only UNAVAILABLE (refused or reset connection, server starting or draining) is worth retrying, as
# Google's API guidance (AIP-194) advises. RESOURCE_EXHAUSTED (a message over a size limit, or the server
# out of memory on the batch) fails the same way again, and DEADLINE_EXCEEDED means a slow server that
# stays slow (see ServedArtifact's ``timeout``): both are one error at once.
_TRANSIENT = (grpc.StatusCode.UNAVAILABLE,)
# grpc core's wording for a message over a limit: "Received message larger than max (1048702 vs. 1048576)"
# (the receiving side's limit) or "Sent message larger than max (…)" (the client's own send limit).
_TOO_LARGE = re.compile(r"message larger than max \((?P<size>\d+) vs\. (?P<limit>\d+)\)")


class GrpcArtifact(ServedArtifact):
    """A model behind TF Serving's gRPC API (see ``ServedArtifact`` for the common arguments).

    Args:
      target: ``host:port`` of the server.
    """

    format = "served_grpc"

    def __init__(self, target, model_name, version=None, **options):
        # pylint: disable=import-outside-toplevel
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self.target = target
        self._channel = grpc.insecure_channel(target, options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)])
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        try:  # connects (metadata call): a failure must not leak the channel and its threads
            super().__init__(f"grpc://{target}/{model_name}" + (f"/versions/{version}" if version is not None
                                                                else ""), model_name, version, **options)
        except BaseException:
            self._channel.close()
            raise

    def _rpc(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as error:
            code, details = error.code(), error.details()
            where = f"grpc://{self.target}/{self.model_name}"
            too_large = _TOO_LARGE.search(details or "") if code == grpc.StatusCode.RESOURCE_EXHAUSTED else None
            if too_large:
                raise ServingError(
                    f"{where}: a message of {too_large['size']} bytes exceeds the {too_large['limit']}-byte gRPC "
                    f"limit: lower max_batch (now {self.max_batch})" + (
                        "" if "sent message" in details.lower() else  # this client's own limit
                        " or raise the server's message limit (export/serve.py --max_body_mb; TF Serving: "
                        "grpc.max_receive_message_length)")) from error
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise ServingError(f"{where}: RESOURCE_EXHAUSTED: {details} (not retried; a smaller max_batch, now "
                                   f"{self.max_batch}, may fit)") from error
            if code in _TRANSIENT:
                reason = "connection refused" if "refused" in (details or "").lower() else details
                raise TransientError(f"cannot reach {where}: {code.name}: {reason}") from error
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise ServingError(f"{where} did not answer within {self.timeout:g} s") from error
            if code == grpc.StatusCode.NOT_FOUND:
                raise ModelNotFound(f"{where}: {details}") from error
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidRequest(f"{where}: INVALID_ARGUMENT: {details}") from error
            raise ServingError(f"{where}: {code.name}: {details}") from error

    def _metadata(self):
        # pylint: disable=import-outside-toplevel
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = self.model_name
        if self.version is not None:
            request.model_spec.version.value = self.version
        response = self._rpc(self._stub.GetModelMetadata, request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        signature = signatures.signature_def.get(SIGNATURE)
        if signature is None or INPUT_NAME not in signature.inputs or "logits" not in signature.outputs:
            raise ServingError(f"grpc://{self.target}/{self.model_name} has no '{SIGNATURE}' signature mapping "
                               f"'{INPUT_NAME}' to 'logits'")
        input_dims = [d.size for d in signature.inputs[INPUT_NAME].tensor_shape.dim]
        return (response.model_spec.version.value, tuple(input_dims[1:]),
                signature.outputs["logits"].tensor_shape.dim[-1].size)

    def _request(self, x):
        request = predict_request(x, self.model_name, self.version)
        request.output_filter.append("logits")
        response = self._rpc(self._stub.Predict, request)
        if "logits" not in response.outputs:
            raise ServingError(f"grpc://{self.target}/{self.model_name} answered without logits")
        return tf.make_ndarray(response.outputs["logits"])

    def close(self):
        self._channel.close()
