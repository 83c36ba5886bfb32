"""Serve every model under an export base with TF Serving's REST and gRPC APIs (no TF Serving needed).

  python export/serve.py --export_dir=runs/export [--rest_port=8501 --grpc_port=8500]

Then e.g. ``export/compare.py --artifacts=runs/export/cnn,http://127.0.0.1:8501/v1/models/cnn``. The
latest version of each model is served by default, any version on request (``…/versions/<n>``). Binds
127.0.0.1 unless ``--host`` says otherwise; stops gracefully on SIGTERM or Ctrl-C. The equivalent with
real TF Serving (see docs/SERVING.md):

  docker run -p 8500:8500 -p 8501:8501 -v $PWD/runs/export/cnn:/models/cnn -e MODEL_NAME=cnn tensorflow/serving

(or ``tfrobust-serve`` with the same flags, the console script installed with the package)
"""

import signal
import threading

from absl import flags

from tfrobust.scripts import run_program
from tfrobust.serving.server import DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY_BYTES, ModelServer

FLAGS = flags.FLAGS


def define_flags():
    """Defines this program's flags (once, when it runs)."""
    flags.DEFINE_string("export_dir", None, "Export base: <export_dir>/<model>/<version>/saved_model.pb.")
    flags.DEFINE_string("host", "127.0.0.1", "Interface to bind (0.0.0.0 exposes the server to the network).")
    flags.DEFINE_integer("rest_port", 8501, "REST port (0: any free port; -1: no REST).", lower_bound=-1,
                         upper_bound=65535)
    flags.DEFINE_integer("grpc_port", 8500, "gRPC port (0: any free port; -1: no gRPC).", lower_bound=-1,
                         upper_bound=65535)
    flags.DEFINE_integer("max_batch", DEFAULT_MAX_BATCH, "Most images per request.", lower_bound=1)
    flags.DEFINE_integer("max_body_mb", DEFAULT_MAX_BODY_BYTES >> 20, "Largest request body / gRPC message (MiB).",
                         lower_bound=1)
    flags.DEFINE_float("grace_seconds", 5.0, "On SIGTERM, how long in-flight requests may finish.", lower_bound=0.0)
    flags.mark_flag_as_required("export_dir")



def main(argv):
    del argv
    stop = threading.Event()
    server = ModelServer(FLAGS.export_dir, host=FLAGS.host,
                         rest_port=None if FLAGS.rest_port < 0 else FLAGS.rest_port,
                         grpc_port=None if FLAGS.grpc_port < 0 else FLAGS.grpc_port,
                         max_batch=FLAGS.max_batch, max_body_bytes=FLAGS.max_body_mb << 20)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    try:
        if server.rest_port is not None:
            print(f"REST on {server.rest_url}/v1/models/<name>", flush=True)
        if server.grpc_port is not None:
            print(f"gRPC on grpc://{server.grpc_target}/<name>", flush=True)
        print(f"serving {FLAGS.export_dir}: {', '.join(server.repository.names()) or 'no models yet'}", flush=True)
        while not stop.wait(1.0):
            pass
    finally:
        server.stop(FLAGS.grace_seconds)
    print("stopped", flush=True)


def run():
    """The ``tfrobust-serve`` console script."""
    run_program(define_flags, main, __doc__)
