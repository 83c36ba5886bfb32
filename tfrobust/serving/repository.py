"""The models a local server serves: every ``<export_base>/<name>/<version>/`` SavedModel.

Only names and versions found by listing the export base are ever served: a request's model name is
looked up in that listing (never joined into a path), and its version is an integer, so nothing a client
sends reaches the file system. New versions appear without a restart (the base is re-listed at most
once per ``rescan_seconds``, as TF Serving polls its file system); a version is loaded on its first
request, warmed up with its ``assets.extra/tf_serving_warmup_requests`` as TF Serving does, and kept.

A version that fails to load (corrupt files, no ``serving_default`` signature, a failing warm-up) is
handled as TF Serving handles it: the failure is remembered with a fingerprint of the version's files
and reported by the model status (state END with the error), the version is not loaded again until its
files change, and "latest" means the newest version that loads, so a broken new export leaves the
previous version serving. A request for the failed version itself gets the load error.
"""

import os
import threading
import time

import numpy as np
import tensorflow as tf

from tfrobust.core.messages import first_line
from tfrobust.errors import InvalidRequest, ModelNotFound, ServingError
from tfrobust.export.contract import INPUT_NAME, NAME_PATTERN, SIGNATURE, list_versions, shape_fits
from tfrobust.export.warmup import read_warmup_requests, warmup_path

__all__ = ["ModelRepository", "Servable", "VersionLoadError", "shape_fits"]


class VersionLoadError(ServingError):
    """A model version failed to load (remembered: not retried until its files change)."""


def files_fingerprint(path):
    """(relative path, size, mtime in ns) of every file under ``path``, sorted: changes when the version's
    files are replaced, rewritten or added, which is when a failed load is worth retrying."""
    entries = []
    for root, _, files in os.walk(path):
        for file in files:
            full = os.path.join(root, file)
            try:
                stat = os.stat(full)
            except OSError:  # removed while listing: the next fingerprint differs anyway
                continue
            entries.append((os.path.relpath(full, path), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(entries))


class Servable:
    """One loaded version: its ``serving_default`` signature, SignatureDef protos and input contract."""

    def __init__(self, name, version, path):
        from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=import-outside-toplevel

        self.name, self.version, self.path = name, version, path
        loaded = tf.saved_model.load(path)
        if SIGNATURE not in loaded.signatures:
            raise ServingError(f"{path} has no '{SIGNATURE}' signature")
        self._loaded = loaded  # keeps the signature's variables alive
        self.signature = loaded.signatures[SIGNATURE]
        spec = self.signature.structured_input_signature[1]
        if list(spec) != [INPUT_NAME]:
            raise ServingError(f"{path}: '{SIGNATURE}' must take one input '{INPUT_NAME}', got {sorted(spec)}")
        self.input_shape = tuple(spec[INPUT_NAME].shape[1:])
        self.output_names = sorted(self.signature.structured_outputs)
        proto = saved_model_pb2.SavedModel()
        with open(os.path.join(path, "saved_model.pb"), "rb") as handle:
            proto.ParseFromString(handle.read())
        self.signature_defs = {key: value for key, value in proto.meta_graphs[0].signature_def.items()
                               if not key.startswith("__")}
        if os.path.isfile(warmup_path(path)):
            for request in read_warmup_requests(path):
                self.predict(tf.make_ndarray(request.inputs[INPUT_NAME]))

    def predict(self, images, output_filter=()):
        """{output name: float32 array} for validated ``images`` (see ``validate``)."""
        outputs = self.signature(**{INPUT_NAME: tf.constant(images)})
        names = list(output_filter) or self.output_names
        unknown = [name for name in names if name not in outputs]
        if unknown:
            raise InvalidRequest(f"output_filter names unknown outputs {unknown}; "
                                 f"outputs: {', '.join(self.output_names)}")
        return {name: outputs[name].numpy() for name in names}

    def validate(self, inputs, max_batch):
        """The ``images`` array of a request's ``{input name: array}``; raises InvalidRequest naming what
        is wrong (missing or extra inputs, dtype, shape, batch size, NaN, values outside [0, 1])."""
        if set(inputs) != {INPUT_NAME}:
            raise InvalidRequest(f"signature '{SIGNATURE}' takes exactly one input '{INPUT_NAME}', "
                                 f"got {sorted(inputs) or 'none'}")
        images = inputs[INPUT_NAME]
        if images.dtype != np.float32:
            raise InvalidRequest(f"input '{INPUT_NAME}' must be float32 (DT_FLOAT), got {images.dtype}")
        if images.ndim != 4 or not shape_fits(images.shape[1:], self.input_shape):
            raise InvalidRequest(f"input '{INPUT_NAME}' must have shape [N, {', '.join(map(str, self.input_shape))}]"
                                 f", got {list(images.shape)}")
        if not 1 <= len(images) <= max_batch:
            raise InvalidRequest(f"batch of {len(images)} images; this server takes 1 to {max_batch} per request")
        if not np.all(np.isfinite(images)):
            raise InvalidRequest(f"input '{INPUT_NAME}' contains NaN or infinite values")
        if images.min() < 0.0 or images.max() > 1.0:
            raise InvalidRequest(f"input '{INPUT_NAME}' must lie in [0, 1], got values in "
                                 f"[{images.min():g}, {images.max():g}]")
        return images


class ModelRepository:
    """Thread-safe ``(name, version) -> Servable`` over an export base.

    Args:
      export_base: the folder holding ``<name>/<version>/saved_model.pb``.
      rescan_seconds: the listing is refreshed at most this often.
    """

    def __init__(self, export_base, rescan_seconds=1.0):
        if not os.path.isdir(export_base):
            raise ServingError(f"export base {export_base} is not a directory")
        self.export_base = os.path.abspath(export_base)
        self.rescan_seconds = rescan_seconds
        self._lock = threading.Lock()
        self._listing, self._listed_at = {}, -float("inf")
        self._servables = {}
        self._loading = {}
        self._failed = {}  # (name, version) -> (files fingerprint, load error message)

    def names(self):
        """The served model names, sorted."""
        return sorted(self._list(force=True))

    def versions(self, name):
        """Sorted versions of ``name`` found on disk (loaded, failed or not yet tried); raises
        ModelNotFound for an unknown name."""
        listing = self._list()
        if name not in listing:
            listing = self._list(force=True)
        if name not in listing:
            raise ModelNotFound(f"Servable not found for request: model '{name}' "
                                f"(served models: {', '.join(sorted(listing)) or 'none'})")
        return listing[name]

    def get(self, name, version=None):
        """The Servable of ``name`` at ``version``, loading it on first use.

        ``version`` None means the newest version that loads: versions that fail are skipped (and
        remembered), as TF Serving keeps serving the previous version when a new one fails.

        Raises:
          ModelNotFound: an unknown name or version.
          VersionLoadError: the version asked for failed to load (or, for the latest, every version did).
        """
        versions = self._checked_versions(name, version)
        if version is not None:
            return self._load(name, version)
        errors = []
        for candidate in reversed(versions):
            try:
                return self._load(name, candidate)
            except VersionLoadError as error:
                errors.append(str(error))
        raise VersionLoadError(f"no version of model '{name}' loads: {'; '.join(errors)}")

    def status(self, name, version=None):
        """``[(version, None or the load error message)]`` for ``version`` or every version of ``name``
        (newest last); loads the versions not tried yet, so a version reported fine has loaded."""
        versions = self._checked_versions(name, version)
        result = []
        for candidate in versions if version is None else [version]:
            try:
                self._load(name, candidate)
                result.append((candidate, None))
            except VersionLoadError as error:
                result.append((candidate, str(error)))
        return result

    def _checked_versions(self, name, version):
        versions = self.versions(name)
        if version is not None and version not in versions:
            versions = self._list(force=True).get(name, versions)
            if version not in versions:
                raise ModelNotFound(f"Servable not found for request: Specific({name}, {version}) "
                                    f"(versions: {', '.join(map(str, versions))})")
        return versions

    def _load(self, name, version):
        key = (name, version)
        with self._lock:
            if key in self._servables:
                return self._servables[key]
            lock = self._loading.setdefault(key, threading.Lock())
        with lock:  # one load per version, other versions load in parallel
            with self._lock:
                if key in self._servables:
                    return self._servables[key]
                failed = self._failed.get(key)
            path = os.path.join(self.export_base, name, str(version))
            fingerprint = files_fingerprint(path)
            if failed is not None and failed[0] == fingerprint:
                raise VersionLoadError(failed[1])
            try:
                servable = Servable(name, version, path)
            except Exception as error:  # pylint: disable=broad-except
                # Whatever the cause (a TF error while loading, our contract checks, a failing warm-up),
                # the version is unusable until its files change.
                message = (f"model '{name}' version {version} failed to load: "
                           f"{type(error).__name__}: {first_line(error)}")
                with self._lock:
                    self._failed[key] = (fingerprint, message)
                raise VersionLoadError(message) from error
            with self._lock:
                self._servables[key] = servable
                self._failed.pop(key, None)
        return servable

    def _list(self, force=False):
        now = time.monotonic()
        with self._lock:
            if force or now - self._listed_at >= self.rescan_seconds:
                listing = {}
                for name in os.listdir(self.export_base):
                    model_base = os.path.join(self.export_base, name)
                    if NAME_PATTERN.match(name) and os.path.isdir(model_base):
                        versions = list_versions(model_base)
                        if versions:
                            listing[name] = versions
                self._listing, self._listed_at = listing, now
            return self._listing
