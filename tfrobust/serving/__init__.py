"""Serving: a local server speaking TF Serving's REST and gRPC APIs over an export base
(``server.ModelServer``, ``export/serve.py``), and — re-exported from ``tfrobust.export``, where served
models load as prediction-only Artifacts — the clients: ``connect(url)``, ``RestArtifact``,
``GrpcArtifact``. See docs/SERVING.md."""

from tfrobust.errors import InvalidRequest, ModelNotFound, ServingError
from tfrobust.export.served_artifact import ServedArtifact, connect

__all__ = ["InvalidRequest", "ModelNotFound", "ServedArtifact", "ServingError", "connect"]
