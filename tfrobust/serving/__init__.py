"""Served models: TF Serving's REST and gRPC clients as prediction-only Artifacts, and a local server
speaking both protocols over an export base (``export/serve.py``). See docs/SERVING.md."""

import re

from tfrobust.serving.errors import InvalidRequest, ModelNotFound, ServingError

_REST_URL = re.compile(r"^(?P<base>https?://[^/]+)/v1/models/(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)"
                       r"(?:/versions/(?P<version>[0-9]+))?/?$")
_GRPC_URL = re.compile(r"^grpc://(?P<target>[^/]+)/(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)"
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
    # pylint: disable=import-outside-toplevel
    rest, grpc_match = _REST_URL.match(url), _GRPC_URL.match(url)
    if rest:
        from tfrobust.serving.rest_client import RestArtifact

        version = int(rest["version"]) if rest["version"] else None
        return RestArtifact(rest["base"], rest["name"], version, **options)
    if grpc_match:
        from tfrobust.serving.grpc_client import GrpcArtifact

        version = int(grpc_match["version"]) if grpc_match["version"] else None
        return GrpcArtifact(grpc_match["target"], grpc_match["name"], version, **options)
    raise ServingError(f"{url}: expected http://host:port/v1/models/<name>[/versions/<n>] or "
                       "grpc://host:port/<name>[/versions/<n>]")


__all__ = ["InvalidRequest", "ModelNotFound", "ServingError", "connect"]
