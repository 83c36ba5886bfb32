"""A served model as a prediction-only Artifact: ``connect(url)``, and the batching, timeouts, bounded
retries and counting shared by the REST and gRPC clients (``rest_client``, ``grpc_client``).

The clients live in ``export`` because a served model is one more deployed format behind the Artifact
interface (``export.load`` dispatches URLs here); the local server that speaks the same protocols is
``tfrobust.serving``, a layer above.
"""

import re
import time

import numpy as np

from tfrobust.errors import ServingError, check_int, check_number
from tfrobust.export.artifact import Artifact
from tfrobust.export.contract import NAME


class TransientError(ServingError):
    """A failure worth retrying (connection refused or reset, server unavailable or overloaded)."""


class ServedArtifact(Artifact):
    """Base of the clients: subclasses implement ``_request(x) -> logits`` (one call, raising
    ``TransientError`` for what may pass) and ``_metadata() -> (version, input_shape, num_classes)``.

    The client resolves the model's version when it connects and pins every later request to it, so an
    evaluation never mixes two versions when a new one appears mid-run (the label names that version).

    Args:
      url: the endpoint (see ``connect``).
      model_name: the served model's name.
      version: the version to query, or None for the server's latest (resolved at connect time).
      max_batch: most images per request; larger ``predict`` calls are split.
      timeout: seconds one request may take before it fails (not retried: a slow server stays slow).
      retries: further attempts after a transient failure, with exponential backoff from ``backoff``
        seconds (0.1, 0.2, 0.4 … by default), so a dead server fails within about a second.

    Attributes: besides ``Artifact``'s (``queries`` counts images scored), ``requests`` counts the
    requests sent (retries included) and ``retried`` the retries made.

    A client is not meant to be shared between threads (counters, HTTP session): give each thread its
    own, as the load test does.
    """

    differentiable = False

    def __init__(self, url, model_name, version=None, *, max_batch=128, timeout=30.0, retries=3, backoff=0.1):
        super().__init__(url)
        check_int("max_batch", max_batch, 1)
        check_number("timeout", timeout, 0, low_inclusive=False)
        check_int("retries", retries, 0, 10)
        check_number("backoff", backoff, 0)
        self.model_name, self.max_batch, self.timeout = model_name, int(max_batch), float(timeout)
        self.retries, self.backoff = int(retries), float(backoff)
        self.requests = self.retried = 0
        self.version = version
        self.version, self.input_shape, self.num_classes = self._with_retries(self._metadata)

    def predict(self, x, batch_size=None):
        """Logits for ``x``, sent in requests of at most ``min(batch_size, max_batch)`` images."""
        return super().predict(x, min(batch_size or self.max_batch, self.max_batch))

    def _predict_batch(self, x):
        logits = self._with_retries(lambda: self._request(np.ascontiguousarray(x, np.float32)))
        if logits.shape != (len(x), self.num_classes):
            raise ServingError(f"{self.path} answered logits of shape {logits.shape} for {len(x)} images")
        return logits

    def _with_retries(self, call):
        for attempt in range(self.retries + 1):
            self.requests += 1
            try:
                return call()
            except TransientError as error:
                if attempt == self.retries:
                    raise ServingError(f"{error} (gave up after {attempt + 1} attempts)") from error
                self.retried += 1
                time.sleep(self.backoff * 2 ** attempt)
        raise AssertionError("unreachable")

    def close(self):
        """Releases the connection (the artifact cannot predict afterwards)."""

    def _request(self, x):
        raise NotImplementedError

    def _metadata(self):
        raise NotImplementedError


_REST_URL = re.compile(rf"^(?P<base>https?://[^/]+)/v1/models/(?P<name>{NAME})"
                       r"(?:/versions/(?P<version>[0-9]+))?/?$")
_GRPC_URL = re.compile(rf"^grpc://(?P<target>[^/]+)/(?P<name>{NAME})"
                       r"(?:/versions/(?P<version>[0-9]+))?/?$")


def connect(url, **options):
    """A served model as an Artifact.

    Args:
      url: ``http(s)://host:port/v1/models/<name>[/versions/<n>]`` (REST) or
        ``grpc://host:port/<name>[/versions/<n>]`` (gRPC).
      **options: ``max_batch``, ``timeout``, ``retries``, ``backoff`` (see ``ServedArtifact``) and, for
        REST, ``request_format`` ("row" or "columnar").

    Raises:
      ServingError: a malformed URL, an unreachable server, an unknown model or version (one line each).
    """
    # pylint: disable=import-outside-toplevel  (each client imports its protocol's stack)
    rest, grpc_match = _REST_URL.match(url), _GRPC_URL.match(url)
    if rest:
        from tfrobust.export.rest_client import RestArtifact

        version = int(rest["version"]) if rest["version"] else None
        return RestArtifact(rest["base"], rest["name"], version, **options)
    if grpc_match:
        from tfrobust.export.grpc_client import GrpcArtifact

        version = int(grpc_match["version"]) if grpc_match["version"] else None
        return GrpcArtifact(grpc_match["target"], grpc_match["name"], version, **options)
    raise ServingError(f"{url}: expected http://host:port/v1/models/<name>[/versions/<n>] or "
                       "grpc://host:port/<name>[/versions/<n>]")
