"""One interface over every exported format: ``load(path) -> Artifact``.

An Artifact predicts logits for float32 images in [0, 1] (``predict``); differentiable formats
(SavedModel, ``.keras``) also give a ``logits_fn`` that white-box attacks can take gradients through.
TFLite models run in the ``ai_edge_litert`` interpreter and are evaluated with gradient-free or transfer
attacks. Served models (``http://…/v1/models/<name>``, ``grpc://host:port/<name>``) load through
``served_artifact.connect`` as prediction-only artifacts. Nothing here needs the Python code that built the
model, except ``.keras`` files holding custom tfrobust layers (registered when ``tfrobust`` is imported).

Denoisers (image-to-image exports, output ``denoised``) load through the same classes: ``task`` is
"denoise", ``predict`` and ``logits_fn`` return images, ``num_classes`` is None and ``input_shape`` may
hold None for open spatial axes.
"""

import abc
import functools
import os

import numpy as np
import tensorflow as tf

from tfrobust.core.messages import first_line
from tfrobust.data.validation import validate_images
from tfrobust.errors import ArtifactError, TfrobustError
from tfrobust.export.contract import DENOISED_NAME, INPUT_NAME, SIGNATURE, list_versions
from tfrobust.export.description import read_description

FORMATS = ("saved_model", "keras", "tflite", "served_rest", "served_grpc")
_URL_SCHEMES = ("http://", "https://", "grpc://")


class Artifact(abc.ABC):
    """A deployed model: images in [0, 1] → logits.

    Attributes:
      path: where it was loaded from (for a TF-Serving base, the chosen version directory; for a served
        model, its URL).
      format: one of ``FORMATS``.
      input_shape: (H, W, C).
      num_classes: number of logits.
      differentiable: whether ``logits_fn`` exists.
      version: the TF Serving version number, or None for a file outside that layout.
      fingerprint: the SavedModel fingerprint's checksum (``tf.saved_model.experimental.read_fingerprint``)
        as a hex string, or None where there is none.
      description: the export's ``tfrobust.json`` (see ``description``), or None.
      queries: images scored through ``predict`` so far (the query counter reports show).
    """

    format = None
    differentiable = False
    version = None
    fingerprint = None
    description = None
    #: "classify" (outputs ``logits``) or "denoise" (outputs ``denoised`` images).
    task = "classify"

    def __init__(self, path):
        self.path = path
        self.queries = 0

    @property
    def logits_fn(self):
        """A TensorFlow callable images → float32 logits that gradients flow through."""
        raise ArtifactError(
            f"{self.path} is a {self.format} artifact with no input gradients; use a gradient-free "
            "attack (Square, SPSA) or a transfer attack from a differentiable surrogate")

    def predict(self, x, batch_size=256):
        """Logits as a float32 NumPy array [N, num_classes] for images ``x`` in [0, 1]."""
        x = validate_images(x, "images").astype(np.float32, copy=False)
        if len(x.shape[1:]) != len(self.input_shape) or any(
                want is not None and got != want for got, want in zip(x.shape[1:], self.input_shape)):
            raise TfrobustError(
                f"{self.path} expects images of shape (N, {', '.join(map(str, self.input_shape))}), "
                f"got {x.shape}")
        outputs = []
        for i in range(0, len(x), batch_size):
            outputs.append(self._predict_batch(x[i:i + batch_size]))
            self.queries += len(outputs[-1])  # counted once answered: a failed request scored nothing
        if not outputs:
            return np.zeros((0, self.num_classes) if self.task == "classify" else x.shape, np.float32)
        return np.concatenate(outputs).astype(np.float32)

    @abc.abstractmethod
    def _predict_batch(self, x):
        """Logits for one batch (a NumPy float32 array)."""

    def __repr__(self):
        return f"{type(self).__name__}({self.path!r}, input_shape={self.input_shape}, " \
               f"num_classes={self.num_classes})"


class DifferentiableArtifact(Artifact):
    """An artifact whose loader sets ``self._logits_fn``: one TensorFlow callable for the artifact's
    lifetime (attacks trace each distinct callable once), compiled once more for ``predict``."""

    differentiable = True
    _logits_fn = None

    @property
    def logits_fn(self):
        return self._logits_fn

    @functools.cached_property
    def _compiled(self):
        return tf.function(self._logits_fn, reduce_retracing=True)

    def _predict_batch(self, x):
        return self._compiled(tf.constant(x)).numpy()


class SavedModelArtifact(DifferentiableArtifact):
    """A SavedModel with the ``serving_default`` signature that tfrobust exports."""

    format = "saved_model"

    def __init__(self, path):
        super().__init__(path)
        self._loaded = tf.saved_model.load(path)
        if SIGNATURE not in self._loaded.signatures:
            raise ArtifactError(f"{path} has no '{SIGNATURE}' signature "
                                f"(found: {', '.join(self._loaded.signatures) or 'none'})")
        self._signature = self._loaded.signatures[SIGNATURE]
        inputs = self._signature.structured_input_signature[1]
        outputs = self._signature.structured_outputs
        if DENOISED_NAME in outputs:
            self.task = "denoise"
        output = "logits" if self.task == "classify" else DENOISED_NAME
        if INPUT_NAME not in inputs or output not in outputs:
            raise ArtifactError(f"{path}: '{SIGNATURE}' must map '{INPUT_NAME}' to 'logits' (or '{DENOISED_NAME}'), "
                                f"got inputs {sorted(inputs)} and outputs {sorted(outputs)}")
        self.input_shape = tuple(inputs[INPUT_NAME].shape[1:])
        self.num_classes = int(outputs["logits"].shape[-1]) if self.task == "classify" else None
        signature = self._signature
        self._logits_fn = lambda images: signature(**{INPUT_NAME: images})[output]
        base = os.path.basename(os.path.normpath(path))
        self.version = int(base) if base.isdigit() else None
        self.fingerprint = saved_model_fingerprint(path)
        self.description = read_description(path)


class KerasArtifact(DifferentiableArtifact):
    """A native ``.keras`` file."""

    format = "keras"

    def __init__(self, path):
        super().__init__(path)
        import keras
        import tfrobust.models  # noqa: F401  registers tfrobust's serializable layers

        self._model = keras.saving.load_model(path)
        self.input_shape = tuple(self._model.inputs[0].shape[1:])
        self.task = "denoise" if len(self._model.outputs[0].shape) == 4 else "classify"
        self.num_classes = int(self._model.outputs[0].shape[-1]) if self.task == "classify" else None
        model = self._model
        self._logits_fn = lambda images: tf.cast(model(images, training=False), tf.float32)


class TFLiteArtifact(Artifact):
    """A ``.tflite`` flatbuffer run by ``ai_edge_litert``; quantised int8 inputs and outputs handled."""

    format = "tflite"

    def __init__(self, path, num_threads=None):
        super().__init__(path)
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=path, num_threads=num_threads or os.cpu_count())
        signatures = self._interpreter.get_signature_list()
        if SIGNATURE not in signatures:
            raise ArtifactError(f"{path} has no '{SIGNATURE}' signature (found: {', '.join(signatures)})")
        self._runner = self._interpreter.get_signature_runner(SIGNATURE)
        self._input = self._runner.get_input_details()[INPUT_NAME]
        output_details = self._runner.get_output_details()
        if DENOISED_NAME in output_details:
            self.task = "denoise"
        self._output_name = "logits" if self.task == "classify" else DENOISED_NAME
        self._output = output_details[self._output_name]
        # -1 in a shape signature is an open axis (a fully convolutional denoiser).
        self.input_shape = tuple(None if int(d) < 0 else int(d) for d in self._input["shape_signature"][1:])
        self.num_classes = int(self._output["shape_signature"][-1]) if self.task == "classify" else None
        self.quantized = np.issubdtype(self._input["dtype"], np.integer)

    def _predict_batch(self, x):
        if self.quantized:
            scale, zero_point = self._input["quantization"]
            info = np.iinfo(self._input["dtype"])
            x = np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(self._input["dtype"])
        logits = self._runner(**{INPUT_NAME: x})[self._output_name]
        if np.issubdtype(self._output["dtype"], np.integer):
            scale, zero_point = self._output["quantization"]
            logits = (logits.astype(np.float32) - zero_point) * scale
        return logits


def saved_model_fingerprint(path):
    """The SavedModel's fingerprint checksum as 16 hex digits, or None when it has no fingerprint.pb
    (SavedModels written before TF 2.12)."""
    if not os.path.isfile(os.path.join(path, "fingerprint.pb")):
        return None
    return f"{tf.saved_model.experimental.read_fingerprint(path).saved_model_checksum:016x}"


def resolve_saved_model(path):
    """``path`` itself if it holds ``saved_model.pb``; for a TF-Serving model base, its newest version."""
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    versions = list_versions(path)
    if not versions:
        raise ArtifactError(f"{path} is neither a SavedModel (no saved_model.pb) nor a TF-Serving model "
                            "base with numbered version directories")
    return os.path.join(path, str(versions[-1]))


def load(path, **client_options):
    """Loads a SavedModel directory (or TF-Serving base), a ``.keras`` file, a ``.tflite`` file, or a
    served model by URL: ``http://host:8501/v1/models/<name>[/versions/<n>]`` (TF Serving REST) or
    ``grpc://host:8500/<name>[/versions/<n>]`` (TF Serving gRPC). ``client_options`` go to the serving
    client (``served_artifact.connect``: timeout, max_batch, retries …).

    Raises:
      ArtifactError: one line naming the path when it is missing, of an unknown kind, or unreadable.
    """
    path = os.fspath(path)
    if path.startswith(_URL_SCHEMES):
        from tfrobust.export import served_artifact  # pylint: disable=import-outside-toplevel  (it subclasses Artifact)

        return served_artifact.connect(path, **client_options)
    if client_options:
        raise TfrobustError(f"options {sorted(client_options)} apply to served models only, not to {path}")
    if not os.path.exists(path):
        raise ArtifactError(f"no model at {path}")
    if os.path.isdir(path):
        loader, path = SavedModelArtifact, resolve_saved_model(path)
    elif path.endswith(".tflite"):
        loader = TFLiteArtifact
    elif path.endswith(".keras"):
        loader = KerasArtifact
    else:
        raise ArtifactError(f"{path}: expected a SavedModel directory, a .keras or a .tflite file")
    try:
        return loader(path)
    except ArtifactError:
        raise
    except Exception as error:  # see below: re-raised as one ArtifactError
        # Loaders raise many types (protobuf DecodeError, ValueError, OSError, RuntimeError …) for a
        # corrupted file; what the user needs is the path and the first line of the cause.
        raise ArtifactError(f"cannot load {loader.format} artifact {path}: {first_line(error)}") from error
