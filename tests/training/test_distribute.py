"""tf.distribute: strategy construction, MirroredStrategy on 2 logical CPUs (same numbers as one device)
and MultiWorkerMirroredStrategy with 2 ``trainers/train.py`` workers on loopback (same final weights)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfrobust.errors import TfrobustError
from tfrobust.training import distribute

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")


def test_unknown_strategy_names_the_choices():
    with pytest.raises(TfrobustError, match="distribute.*mirrored"):
        distribute.make_strategy("horovod")


def test_multi_worker_without_tf_config_fails_clearly(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(TfrobustError, match="TF_CONFIG"):
        distribute.make_strategy("multi_worker")


def test_tpu_without_a_tpu_fails_in_one_line():
    with pytest.raises(TfrobustError, match="distribute=tpu: no TPU reachable") as error:
        distribute.make_strategy("tpu")
    assert "\n" not in str(error.value)


def test_malformed_tf_config_fails_clearly(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["localhost:1"]},
                                                "task": {"type": "worker", "index": 3}}))
    with pytest.raises(TfrobustError, match="TF_CONFIG must be JSON"):
        distribute.cluster_spec()


def test_default_strategy_is_one_replica_chief_and_keeps_the_run_folder():
    strategy = distribute.make_strategy("none")
    assert strategy.num_replicas_in_sync == 1 and distribute.is_chief(strategy)
    assert distribute.worker_dir("runs/x", strategy) == "runs/x"


def test_global_batch_must_split_evenly_across_replicas():
    class TwoReplicas:
        num_replicas_in_sync = 2

    assert distribute.check_global_batch(128, TwoReplicas()) == 64
    with pytest.raises(TfrobustError, match="batch_size must be a multiple of the 2 replicas"):
        distribute.check_global_batch(127, TwoReplicas())


def test_shard_dataset_shards_in_memory_data_by_element():
    dataset = distribute.shard_dataset(tf.data.Dataset.range(4))
    policy = dataset.options().experimental_distribute.auto_shard_policy
    assert policy == tf.data.experimental.AutoShardPolicy.DATA


def test_mirrored_two_logical_cpus_match_one_device_pgd_at():
    """Global batch 16 split 8 + 8: the loss scaling by the replica count makes the summed gradient
    the single-device one, so losses and weights agree to float32 rounding."""
    result = subprocess.run([sys.executable, os.path.join(HERE, "distributed_mirrored.py")], env=ENV, cwd=ROOT,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = json.loads(result.stdout.strip().splitlines()[-1])
    single, mirrored = runs["none"], runs["mirrored"]
    assert single["replicas"] == 1 and mirrored["replicas"] == 2
    np.testing.assert_allclose(mirrored["loss"], single["loss"], rtol=1e-4)
    for a, b in zip(mirrored["weights"], single["weights"]):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert mirrored["loss"][-1] < 0.75 * mirrored["loss"][0]  # and it trains


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def h5_arrays(path):
    import h5py

    arrays = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda name, item: arrays.__setitem__(name, item[()])
                          if isinstance(item, h5py.Dataset) else None)
    return arrays


@pytest.mark.slow
def test_multi_worker_two_processes_on_loopback_train_the_same_model(tmp_path):
    """Two train.py workers (TF_CONFIG, loopback ports), PGD-AT, 2 epochs: both finish, end with the
    same weights, the chief writes the run folder and the export, the other worker its own folder."""
    workers = [f"localhost:{port}" for port in free_ports(2)]
    args = [sys.executable, os.path.join(ROOT, "trainers/train.py"), "--distribute=multi_worker",
            "--method=pgd_at", "--eps=0.1", "--attack_steps=2", "--model=small_cnn",
            "--model_option=width=0.25", "--train_size=256", "--test_size=64", "--epochs=2", "--batch_size=64",
            f"--model_dir={tmp_path}/run", f"--export_dir={tmp_path}/export", "--export_formats=saved_model"]
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(subprocess.Popen(args, env=dict(ENV, TF_CONFIG=json.dumps(config)), cwd=ROOT,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=600))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for process, (_, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
    chief, other = tmp_path / "run", tmp_path / "run" / "workers" / "worker_1"
    for folder in (chief, other):
        summary = json.load(open(folder / "summary.json", encoding="utf-8"))
        assert summary["replicas"] == 2 and summary["distribute"] == "multi_worker"
    assert "exports" in json.load(open(chief / "summary.json", encoding="utf-8"))
    assert (tmp_path / "export" / "run").is_dir() and not (other / "export").exists()
    chief_weights = h5_arrays(chief / "checkpoints" / "last.weights.h5")
    other_weights = h5_arrays(other / "checkpoints" / "last.weights.h5")
    assert chief_weights.keys() == other_weights.keys() and chief_weights
    for name, value in chief_weights.items():
        np.testing.assert_allclose(other_weights[name], value, atol=1e-6, err_msg=name)
    epochs = [line.split(",")[0] for line in (chief / "history.csv").read_text().splitlines()[1:]]
    assert epochs == ["0", "1"]
