"""TF Serving warm-up records: ``<version>/assets.extra/tf_serving_warmup_requests``.

TF Serving replays these requests when it loads a version, before the version is marked AVAILABLE, so
the first real request does not pay for graph optimisation and memory allocation. The file is a
TFRecord of ``tensorflow.serving.PredictionLog`` protos, each holding one ``PredictRequest`` (the format
TF Serving's ``saved_model_warmup`` reads; at most 1000 records are replayed). The requests carry real
images from the export's representative data, so a warm-up also runs the same kernels the traffic
will.
"""

import os

import numpy as np
import tensorflow as tf

from tfrobust.errors import ArtifactError
from tfrobust.export.contract import ASSETS_EXTRA, INPUT_NAME, SIGNATURE, shape_fits

WARMUP_FILE = "tf_serving_warmup_requests"
#: Batch sizes of the recorded requests: a single image and a small batch, the two shapes traffic has.
WARMUP_BATCHES = (1, 8)


def warmup_path(saved_model_dir):
    return os.path.join(saved_model_dir, ASSETS_EXTRA, WARMUP_FILE)


def predict_request(images, model_name, version=None, signature_name=SIGNATURE):
    """A ``PredictRequest`` for float32 ``images`` [N, H, W, C] (``version`` None: the latest)."""
    from tensorflow_serving.apis import predict_pb2  # pylint: disable=import-outside-toplevel

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    request.inputs[INPUT_NAME].CopyFrom(tf.make_tensor_proto(np.asarray(images, np.float32)))
    return request


def check_warmup_images(images, input_shape):
    """``images`` as float32 [N, H, W, C], checked against one image's ``input_shape`` (None: an open axis).

    A mismatch is an export-time error: written anyway, the records would make every load of the version
    fail its warm-up (TF Serving refuses such a version; the local server reports it failed).

    Raises:
      ArtifactError: an empty batch, or images whose shape the model does not take.
    """
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or not len(images):
        raise ArtifactError(f"warm-up needs a non-empty image batch [N, H, W, C], got shape {images.shape}")
    if not shape_fits(images.shape[1:], tuple(input_shape)):
        expected = ", ".join("any" if d is None else str(d) for d in input_shape)
        raise ArtifactError(f"warm-up (representative) images have shape {list(images.shape)} but the model "
                            f"takes [N, {expected}]: pass images of the model's input shape")
    return images


def write_warmup_requests(saved_model_dir, images, model_name, input_shape, batch_sizes=WARMUP_BATCHES):
    """Writes one warm-up ``PredictionLog`` per batch size, from the first ``images``; returns the path.

    Call it on the export's (temporary) directory before it is renamed into place, so a server never
    sees a version without its warm-up file.

    Args:
      saved_model_dir: the SavedModel's directory.
      images: float32 images in [0, 1] (see ``check_warmup_images``).
      model_name: the model name the requests address.
      input_shape: one image's shape the model takes (None for an open axis).
      batch_sizes: one request per batch size (images repeat when there are fewer).
    """
    from tensorflow_serving.apis import prediction_log_pb2  # pylint: disable=import-outside-toplevel

    images = check_warmup_images(images, input_shape)
    path = warmup_path(saved_model_dir)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for size in batch_sizes:
            batch = images[np.arange(size) % len(images)]  # fewer images than the batch: repeat them
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=predict_request(batch, model_name)))
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(saved_model_dir):
    """The ``PredictRequest`` protos recorded in a SavedModel's warm-up file, in order."""
    from tensorflow_serving.apis import prediction_log_pb2  # pylint: disable=import-outside-toplevel

    path = warmup_path(saved_model_dir)
    if not os.path.isfile(path):
        raise ArtifactError(f"{saved_model_dir} has no warm-up file {ASSETS_EXTRA}/{WARMUP_FILE}")
    requests = []
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        if log.WhichOneof("log_type") != "predict_log":
            raise ArtifactError(f"{path}: expected predict_log records, got {log.WhichOneof('log_type')}")
        requests.append(log.predict_log.request)
    return requests
