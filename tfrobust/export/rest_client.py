"""TF Serving REST client: ``http://host:8501/v1/models/<name>[/versions/<n>]`` as an Artifact.

Speaks the REST API as TF Serving documents it (https://www.tensorflow.org/tfx/serving/api_rest):
``GET /v1/models/<name>[/versions/<n>]/metadata`` for the signature, ``POST …:predict`` with
``{"signature_name": "serving_default", "instances": […]}`` (row format, default) or ``{"inputs": …}``
(columnar format). JSON numbers carry float32 values exactly (Python prints the shortest repr that
round-trips), so served and in-process logits agree bit for bit on the same model.
"""

import json

import numpy as np
import requests

from tfrobust.errors import InvalidRequest, ModelNotFound, ServingError, check_choice
from tfrobust.export.contract import INPUT_NAME, SIGNATURE
from tfrobust.export.served_artifact import ServedArtifact, TransientError

_TRANSIENT_STATUS = (429, 502, 503, 504)


class RestArtifact(ServedArtifact):
    """A model behind TF Serving's REST API (see ``ServedArtifact`` for the common arguments).

    Args:
      base_url: ``http://host:port`` of the server.
      request_format: "row" (``instances``) or "columnar" (``inputs``).
    """

    format = "served_rest"

    def __init__(self, base_url, model_name, version=None, *, request_format="row", **options):
        check_choice("request_format", request_format, ("row", "columnar"))
        self.base_url, self.request_format = base_url.rstrip("/"), request_format
        self._session = requests.Session()
        try:  # connects (metadata call): a failure must not leak the session's connection pool
            super().__init__(f"{self.base_url}/v1/models/{model_name}" +
                             (f"/versions/{version}" if version is not None else ""), model_name, version, **options)
        except BaseException:
            self._session.close()
            raise

    @property
    def _model_url(self):
        return f"{self.base_url}/v1/models/{self.model_name}" + \
            (f"/versions/{self.version}" if self.version is not None else "")

    def _call(self, method, url, payload=None):
        try:
            response = self._session.request(method, url, data=payload, timeout=(min(self.timeout, 10.0), self.timeout),
                                             headers={"Content-Type": "application/json"} if payload else None)
        except requests.ConnectionError as error:
            reason = "connection refused" if "refused" in str(error).lower() else "connection failed"
            raise TransientError(f"cannot reach {url}: {reason}") from error
        except requests.Timeout as error:
            raise ServingError(f"{url} did not answer within {self.timeout:g} s") from error
        if response.status_code in _TRANSIENT_STATUS:
            raise TransientError(f"{url} answered {response.status_code}: {_message(response)}")
        if response.status_code == 404:
            raise ModelNotFound(f"{url}: {_message(response)}")
        if 400 <= response.status_code < 500:
            raise InvalidRequest(f"{url} answered {response.status_code}: {_message(response)}")
        if response.status_code != 200:
            raise ServingError(f"{url} answered {response.status_code}: {_message(response)}")
        try:
            return response.json()
        except ValueError as error:
            raise ServingError(f"{url} answered with a body that is not JSON") from error

    def _metadata(self):
        metadata = self._call("GET", f"{self._model_url}/metadata")
        try:
            version = int(metadata["model_spec"]["version"])
            signature = metadata["metadata"]["signature_def"]["signature_def"][SIGNATURE]
            input_dims = [int(d["size"]) for d in signature["inputs"][INPUT_NAME]["tensor_shape"]["dim"]]
            output_dims = [int(d["size"]) for d in signature["outputs"]["logits"]["tensor_shape"]["dim"]]
        except (KeyError, TypeError, ValueError) as error:
            raise ServingError(f"{self._model_url}/metadata has no '{SIGNATURE}' signature mapping "
                               f"'{INPUT_NAME}' to 'logits' (missing {error})") from error
        return version, tuple(input_dims[1:]), output_dims[-1]

    def close(self):
        self._session.close()

    def _request(self, x):
        if self.request_format == "row":
            body = {"signature_name": SIGNATURE, "instances": x.tolist()}
        else:
            body = {"signature_name": SIGNATURE, "inputs": {INPUT_NAME: x.tolist()}}
        answer = self._call("POST", f"{self._model_url}:predict", json.dumps(body))
        try:
            if self.request_format == "row":
                return np.asarray([row["logits"] for row in answer["predictions"]], np.float32)
            return np.asarray(answer["outputs"]["logits"], np.float32)
        except (KeyError, TypeError, ValueError) as error:
            raise ServingError(f"{self._model_url}:predict answered without logits ({error})") from error


def _message(response):
    """The server's ``{"error": …}`` message verbatim, else the start of the body."""
    try:
        return str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        return response.text.strip()[:200] or response.reason
