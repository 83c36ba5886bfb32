"""``tf.distribute`` strategies for training: one machine, all local devices, many workers, a TPU.

Keras ``fit`` does the distribution: build the model, the ``AdversarialModel`` wrapper, the optimizer
and ``compile`` inside ``strategy.scope()`` and pass an ordinary batched ``tf.data.Dataset`` whose batch
is the **global** batch. ``fit`` splits every batch across the replicas (per-replica batch = global
batch ÷ ``num_replicas_in_sync``) and, with several workers, shards the dataset so each worker reads
its own part (``shard_dataset``). ``AdversarialModel`` divides its loss by the number of replicas, so
the summed gradient equals the single-device gradient of the global batch.

Multi-worker training runs the same command on every worker, each with its ``TF_CONFIG``, e.g. for
two workers on two hosts::

  TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker", "index": 0}}'

(``index`` 1 on the second host). Worker 0 — or the ``chief`` task if the cluster has one — is the
chief: it writes the run folder; the others write theirs under ``<model_dir>/workers/<type>_<index>``
(``worker_dir``).
"""

import json
import os

import tensorflow as tf

from tfrobust.core.messages import first_line
from tfrobust.core.run_layout import RunLayout
from tfrobust.errors import TfrobustError, check_choice

STRATEGIES = ("none", "mirrored", "multi_worker", "tpu")


def make_strategy(name, *, tpu=None):
    """Returns the ``tf.distribute.Strategy`` called ``name``.

    Args:
      name: "none" (the default strategy: one device), "mirrored" (``MirroredStrategy`` over every
        local GPU, or over every logical CPU device when there is no GPU — TF would otherwise use one
        CPU device only), "multi_worker" (``MultiWorkerMirroredStrategy``; the cluster comes from the
        ``TF_CONFIG`` environment variable, which must be set) or "tpu" (``TPUStrategy``).
      tpu: for "tpu", the TPU name or ``grpc://`` address given to ``TPUClusterResolver`` (default:
        the local TPU / the one the environment names).

    Raises:
      TfrobustError: unknown name, "multi_worker" without ``TF_CONFIG``, or no TPU reachable.
    """
    check_choice("distribute", name, STRATEGIES)
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    if name == "multi_worker":
        # Without TF_CONFIG the strategy silently trains alone on each host — a wasted cluster.
        cluster_spec(required=True)
        return tf.distribute.MultiWorkerMirroredStrategy()
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise TfrobustError(f"distribute=tpu: no TPU reachable ({first_line(error)})") from error
    return tf.distribute.TPUStrategy(resolver)


def cluster_spec(required=False):
    """The parsed ``TF_CONFIG`` (``{"cluster": …, "task": …}``), or None when it is unset."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        if required:
            raise TfrobustError("distribute=multi_worker needs the TF_CONFIG environment variable "
                                "(cluster and task of this worker; see tfrobust.training.distribute)")
        return None
    try:
        config = json.loads(raw)
        task = config["task"]
        config["cluster"][task["type"]][int(task["index"])]  # the lookup is the check: it raises if absent
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise TfrobustError(f"TF_CONFIG must be JSON with cluster and task (type, index) naming one of the "
                            f"cluster's tasks, got {raw!r}") from error
    return config


def is_chief(strategy):
    """Whether this process writes the shared results (always true outside multi-worker training)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    # Without a "chief" task, worker 0 is the chief (TF's convention).
    return resolver.task_type == "worker" and resolver.task_id == 0 and \
        "chief" not in resolver.cluster_spec().as_dict()


def worker_dir(model_dir, strategy):
    """``model_dir`` on the chief; ``<model_dir>/workers/<type>_<index>`` on the other workers, whose
    backups, checkpoints and logs must not overwrite the chief's (each keeps its own, so a restarted
    worker resumes from its own backup)."""
    if is_chief(strategy):
        return model_dir
    resolver = strategy.cluster_resolver
    return RunLayout(model_dir).worker(resolver.task_type, resolver.task_id).root


def check_global_batch(batch_size, strategy):
    """Raises unless the global batch splits evenly into per-replica batches."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise TfrobustError(f"batch_size must be a multiple of the {replicas} replicas of the distribution "
                            f"strategy (it is the global batch, split evenly), got {batch_size}")
    return batch_size // replicas


def shard_dataset(dataset):
    """Shards ``dataset`` by element across workers (``AutoShardPolicy.DATA``): in-memory datasets
    have no files to shard, which is what TF's default ``AUTO`` policy tries first (and warns)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


__all__ = ["STRATEGIES", "check_global_batch", "cluster_spec", "is_chief", "make_strategy", "shard_dataset",
           "worker_dir"]
