"""Errors of the serving clients and server, each explained in one line."""

from tfrobust.errors import ArtifactError


class ServingError(ArtifactError):
    """A served model cannot be reached or refused a request (the server's message is kept verbatim)."""


class ModelNotFound(ServingError):
    """The server has no such model or version (REST 404, gRPC NOT_FOUND)."""


class InvalidRequest(ServingError):
    """A request the server rejects as malformed (REST 400, gRPC INVALID_ARGUMENT)."""
