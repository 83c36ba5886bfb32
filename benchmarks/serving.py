"""Served model vs in-process: agreement, latency under load, throughput, Square's query rate.

Exports a small CNN trained briefly on Fashion-MNIST (or serves ``--export_dir``'s ``--model``), starts
``export/serve.py`` in a subprocess on free loopback ports and measures, in one run:

1. max |Δ| of served vs in-process (SavedModel) logits on ``--points`` test images: REST row format,
   REST columnar format, gRPC;
2. load: ``--clients`` concurrent clients × ``--requests`` one-image requests per protocol — errors,
   p50 / p99 latency, requests per second;
3. throughput of 128-image requests (images per second) per protocol and in-process;
4. Square (L∞, ε=0.1) queries per second against the gRPC endpoint and against the in-process SavedModel,
   and their ratio (median of ``--repeats``, the two timed in alternation).

  .venv/bin/python benchmarks/serving.py [--points=500] [--clients=8] [--requests=100]
"""

import concurrent.futures
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from absl import app, flags

from tfrobust import data, export, models
from tfrobust.attacks import Square
from tfrobust.serving import ServingError

from _machine import machine  # benchmarks/_machine.py (this script's folder)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

flags.DEFINE_string("export_dir", None, "Serve this export base (default: train and export a small CNN).")
flags.DEFINE_string("model", "cnn", "Model name under --export_dir.")
flags.DEFINE_integer("points", 500, "Test images compared served vs in-process.", lower_bound=1)
flags.DEFINE_integer("clients", 8, "Concurrent clients in the load test.", lower_bound=1)
flags.DEFINE_integer("requests", 100, "Requests per client in the load test.", lower_bound=1)
flags.DEFINE_integer("square_points", 100, "Points Square attacks per timed run.", lower_bound=1)
flags.DEFINE_integer("square_queries", 100, "Square iterations per timed run.", lower_bound=1)
flags.DEFINE_integer("repeats", 3, "Timed repeats (median reported).", lower_bound=1)
FLAGS = flags.FLAGS


def prepare_export(base):
    (x_train, y_train), _ = data.load_splits("fashion_mnist", train_size=5000, test_size=1)
    keras.utils.set_random_seed(0)
    model = models.build("small_cnn", (28, 28, 1), 10)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train, y_train, batch_size=128, epochs=1, verbose=0)
    export.export_saved_model(model, base, "cnn", representative_images=x_train[:16])
    return base, "cnn"


def start_server(base):
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "export", "serve.py"), f"--export_dir={base}",
                                "--rest_port=0", "--grpc_port=0"], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": ROOT})
    rest = grpc_target = None
    while rest is None or grpc_target is None:
        line = process.stdout.readline()
        if not line:
            raise SystemExit("error: export/serve.py exited before serving")
        if line.startswith("REST on "):
            rest = line.split()[2].rsplit("/v1/", 1)[0]
        elif line.startswith("gRPC on "):
            grpc_target = line.split()[2].rsplit("/", 1)[0][len("grpc://"):]
    return process, rest, grpc_target


def load_test(url, images):
    def client_loop(seed):
        client = export.load(url, timeout=30)
        rng = np.random.default_rng(seed)
        errors, latencies = 0, []
        for _ in range(FLAGS.requests):
            start = time.perf_counter()
            try:
                client.predict(images[rng.integers(len(images))][None])
            except ServingError:
                errors += 1
            latencies.append(time.perf_counter() - start)
        return errors, latencies

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(FLAGS.clients) as pool:
        results = list(pool.map(client_loop, range(FLAGS.clients)))
    seconds = time.perf_counter() - start
    latencies = np.concatenate([lat for _, lat in results])
    return (sum(e for e, _ in results), 1000 * np.percentile(latencies, 50), 1000 * np.percentile(latencies, 99),
            len(latencies) / seconds)


def median_seconds(fns):
    """{name: median seconds} of each function, timed in alternation (interleaved), after a warm-up,
    so load from other jobs on the machine hits all of them alike."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(FLAGS.repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv):
    del argv
    with tempfile.TemporaryDirectory() as temp:
        base, name = (FLAGS.export_dir, FLAGS.model) if FLAGS.export_dir else prepare_export(temp)
        x, _ = data.load("fashion_mnist", "test", size=FLAGS.points)
        local = export.load(os.path.join(base, name))
        process, rest, grpc_target = start_server(base)
        try:
            clients = {"rest (row)": export.load(f"{rest}/v1/models/{name}"),
                       "rest (columnar)": export.load(f"{rest}/v1/models/{name}", request_format="columnar"),
                       "grpc": export.load(f"grpc://{grpc_target}/{name}")}
            reference = local.predict(x)
            print(f"{machine()}; model {name}@{local.version}")
            print(f"\n1. served vs in-process logits on {len(x)} test images")
            for label, client in clients.items():
                print(f"   {label:16s} max |Δ| = {np.abs(client.predict(x) - reference).max():.3g}")

            print(f"\n2. load: {FLAGS.clients} clients × {FLAGS.requests} one-image requests")
            for label, url in (("rest", f"{rest}/v1/models/{name}"), ("grpc", f"grpc://{grpc_target}/{name}")):
                errors, p50, p99, rate = load_test(url, x)
                print(f"   {label:5s} errors {errors}, p50 {p50:.2f} ms, p99 {p99:.2f} ms, {rate:.0f} requests/s")

            batch = np.resize(x, (128, *x.shape[1:]))
            print("\n3. throughput, 128-image requests (images/s, median)")
            seconds = median_seconds({"in-process": lambda: local.predict(batch),
                                      **{label: lambda c=clients[label]: c.predict(batch, batch_size=128)
                                         for label in ("rest (row)", "grpc")}})
            for label, value in seconds.items():
                print(f"   {label:12s} {128 / value:9.0f} images/s")

            print(f"\n4. Square L∞ ε=0.1, {FLAGS.square_queries} iterations on {FLAGS.square_points} points")
            points, labels = x[:FLAGS.square_points], np.argmax(reference[:FLAGS.square_points], axis=1)
            attacks = {label: Square(eps=0.1, queries=FLAGS.square_queries, seed=0) for label in ("in-process", "grpc")}
            artifacts = {"in-process": local, "grpc": clients["grpc"]}
            seconds = median_seconds({label: lambda a=artifacts[label], s=attacks[label]: s(a.predict, points, labels)
                                      for label in attacks})
            speeds = {}
            for label, attack in attacks.items():
                speeds[label] = attack.last_counts["forward"] / seconds[label]
                print(f"   {label:12s} {speeds[label]:9.0f} queries/s ({attack.last_counts['forward']} queries "
                      f"in {seconds[label]:.2f} s)")
            print(f"   gRPC / in-process query rate: {speeds['grpc'] / speeds['in-process']:.2f}")
        finally:
            process.terminate()
            process.wait(30)


if __name__ == "__main__":
    app.run(main)
