"""An evaluation sharded over Ray workers: the same suite, the same seeds, exactly the same numbers.

The driver runs the evaluation as always (``compare.evaluate`` → ``run_suite`` → ``robust_accuracy``) and
hands the expensive units of work to a ``RayExecutor``: an attack's batches (``map_batches``) and, for
AutoAttack, each component's chunks (``map_chunks``, ``AutoAttack.run_chunk``). Each worker is a Ray actor
that loads its own copy of every model once (an artifact by path or served URL, a training run by folder)
and rebuilds the same attacks from the same ``EvaluationSpec``. A unit of work is a pure function of its
inputs and its random stream (batch b draws stream b, ``Attack.set_stream``), so where it runs does not
change its result, and the driver merges results in job order: the per-point results equal a
single-process run's, bit for bit (tested). The driver also keeps the resumable state
(``evaluation.resume``), so a killed driver resumes from the units already merged.

Faults: actors restart after their process dies (``max_restarts``) and the calls they had not answered are
retried on the restarted actor (``max_task_retries``); since a unit is pure and merged once by job index,
a retried unit is neither lost nor counted twice. ``stats()`` reports jobs per worker and restarts.

Threads: each worker runs TensorFlow with ``threads`` intra-op threads (and one inter-op thread) and
reserves as many Ray CPUs, so N workers on an N·threads-core machine do not oversubscribe it.

Ray is an optional dependency (``pip install 'tfrobust[distributed]'`` or ``requirements-distributed.txt``).
Without an address a local instance is started on 127.0.0.1 (no dashboard) and shut down by ``close()``;
``address="auto"`` or ``"host:port"`` joins an existing cluster (e.g. KubeRay), which must have this
package importable on its nodes.
"""

import dataclasses
import os

from tfrobust.core.messages import first_line
from tfrobust.errors import TfrobustError, check_int, check_number

#: The count a worker adds to a batch's counts: images its copy of the target scored for that batch.
TARGET_QUERIES = "worker_target_queries"
#: How many calls each worker has queued at most (one running, one waiting), so none idles between calls.
QUEUE_PER_WORKER = 2


def _import_ray():
    try:
        import ray  # pylint: disable=import-outside-toplevel  (an optional dependency)
    except ImportError as error:
        raise TfrobustError("--distribute=ray needs Ray: pip install 'tfrobust[distributed]' "
                            "(or pip install -r requirements-distributed.txt)") from error
    return ray


@dataclasses.dataclass(frozen=True)
class EvaluationSpec:
    """What a worker needs to rebuild the driver's models and attacks.

    Attributes:
      sources: {label: (kind, path, options)}: kind "artifact" (``export.load(path, **options)``: a SavedModel,
        .keras, .tflite or served URL) or "run" (``export.source.load_source_model(path)``: a training run
        folder or .keras file, as ``tfrobust-evaluate --source`` loads it).
      suite, norm, seed, overrides: as ``compare.evaluate`` (``suite_overrides``).
      surrogates: {label: surrogate label} for the models without gradients (``compare.choose_surrogate``).
    """

    sources: dict
    suite: str
    norm: str = "linf"
    seed: int = 0
    overrides: dict = dataclasses.field(default_factory=dict)
    surrogates: dict = dataclasses.field(default_factory=dict)


class EvaluationWorker:
    """The body of a Ray actor: loaded models and built attacks, cached, and the two units of work."""

    def __init__(self, spec, threads):
        import tensorflow as tf  # pylint: disable=import-outside-toplevel  (before any op runs in this process)

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # TensorFlow already ran ops in this process (a worker built in the driver)
            pass
        self.spec, self._models, self._attacks = spec, {}, {}

    def pid(self):
        return os.getpid()

    def attack_batch(self, eps, model, attack, stream, x, y):
        """(x_adv, counts, pid): batch ``stream`` of ``attack`` on ``model`` (``robustness.attack_batch``)."""
        from tfrobust.evaluation.robustness import attack_batch  # pylint: disable=import-outside-toplevel

        routed, craft_fn = self._routed(eps, model, attack)
        query_count = self._model(model).query_count or (lambda: 0)
        before = query_count()
        x_adv, counts = attack_batch(routed, craft_fn, stream, x, y)
        # The images this worker's copy of the target scored (a query-based attack on a TFLite or served
        # model): the driver's own counter never sees them; ``run_suite`` adds them to the row's queries.
        queries = query_count() - before
        return x_adv, {**counts, **({TARGET_QUERIES: queries} if queries else {})}, os.getpid()

    def attack_chunk(self, eps, model, attack, component, stream, x, y):
        """(candidate, counts, zero gradients, pid): ``AutoAttack.run_chunk`` of the routed AutoAttack."""
        routed, craft_fn = self._routed(eps, model, attack)
        return (*routed.run_chunk(craft_fn, component, stream, x, y), os.getpid())

    def _model(self, label):
        if label not in self._models:
            from tfrobust.evaluation.target import as_target  # pylint: disable=import-outside-toplevel

            kind, path, options = self.spec.sources[label]
            if kind == "artifact":
                from tfrobust.export import load  # pylint: disable=import-outside-toplevel

                model = load(path, **options)
            else:
                from tfrobust.export.source import load_source_model  # pylint: disable=import-outside-toplevel

                model = load_source_model(path)[0]
            self._models[label] = as_target(model, label)
        return self._models[label]

    def _routed(self, eps, model, attack):
        key = (float(eps), model, attack)
        if key not in self._attacks:
            from tfrobust.evaluation.suite import build_suite, route  # pylint: disable=import-outside-toplevel

            spec = self.spec
            attacks = build_suite(spec.suite, norm=spec.norm, eps=eps, seed=spec.seed, overrides=spec.overrides)
            if attack not in attacks:
                raise TfrobustError(f"the worker's suite has no attack {attack!r}")
            surrogate = self._model(spec.surrogates[model]) if model in spec.surrogates else None
            routed, craft_fn, _ = route(attacks[attack], attack, self._model(model), surrogate)
            self._attacks[key] = (routed, craft_fn)
        return self._attacks[key]


class RayExecutor:
    """``RayExecutor(spec, workers=2, address=None, threads=1)``: Ray workers that attack batches and chunks.

    Args:
      spec: the ``EvaluationSpec`` every worker rebuilds.
      workers: number of actors (≥ 1).
      address: None starts a local Ray instance (127.0.0.1, no dashboard; stopped by ``close``); "auto" or
        "host:port" joins a running cluster.
      threads: TensorFlow intra-op threads (and Ray CPUs) per worker.
      gpus: GPUs per worker (0 on CPU machines; 1 gives each worker its own accelerator on a GPU cluster).
      max_restarts: restarts of a worker process that dies; its pending calls are retried after it restarts.
      start_timeout: seconds the workers may take to be placed and started (a cluster without the free CPUs or
        GPUs asked for would otherwise keep them pending for ever).

    Use as a context manager (or call ``close``). ``for_model(eps, label)`` gives what ``run_suite`` takes as
    ``executor``; ``stats()`` the jobs each worker did and how often it was restarted.
    """

    def __init__(self, spec, *, workers=2, address=None, threads=1, gpus=0, max_restarts=3, start_timeout=300.0):
        check_int("workers", workers, 1)
        check_int("threads", threads, 1)
        check_int("max_restarts", max_restarts, 0)
        check_number("start_timeout", start_timeout, 0.0, low_inclusive=False)
        self.ray = ray = _import_ray()
        self.spec, self.workers = spec, workers
        self._started = False
        if not ray.is_initialized():
            options = {"include_dashboard": False, "configure_logging": False, "log_to_driver": False}
            try:
                if address is None:
                    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
                    env = {"PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
                           "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
                           "OMP_NUM_THREADS": str(threads)}
                    ray.init(num_cpus=workers * threads, num_gpus=0, _node_ip_address="127.0.0.1",
                             object_store_memory=256 << 20, runtime_env={"env_vars": env}, **options)
                else:
                    ray.init(address=address, **options)
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise TfrobustError(f"cannot start or reach Ray at {address or 'a local instance'}: "
                                    f"{first_line(error)}") from error
            self._started = True
        actor = ray.remote(EvaluationWorker).options(num_cpus=threads, num_gpus=gpus, max_restarts=max_restarts,
                                                     max_task_retries=-1)
        self.actors = [actor.remote(spec, threads) for _ in range(workers)]
        try:
            references = [worker.pid.remote() for worker in self.actors]
            try:
                self.pids = [{pid} for pid in ray.get(references, timeout=start_timeout)]
            except ray.exceptions.GetTimeoutError as error:
                raise TfrobustError(f"{workers} Ray workers of {threads} CPU(s) and {gpus} GPU(s) each were not all "
                                    f"placed within {start_timeout:g}s (the cluster has {ray.available_resources()} "
                                    "free); ask for fewer --workers or a larger cluster") from error
            except ray.exceptions.RayError as error:
                raise TfrobustError(f"a Ray worker failed to start: {first_line(error)}") from error
        except TfrobustError:
            self.close()
            raise
        self.jobs = [0] * workers

    def for_model(self, eps, model):
        """The executor ``run_suite`` takes for ``model`` at ``eps``."""
        return _ModelExecutor(self, float(eps), model)

    def worker_pids(self):
        """The current process id of every worker (a test kills one)."""
        return self._get([worker.pid.remote() for worker in self.actors])

    def stats(self):
        """{"workers", "jobs" per worker, "restarts" per worker (seen processes − 1)}."""
        return {"workers": self.workers, "jobs": list(self.jobs), "restarts": [len(p) - 1 for p in self.pids]}

    def map(self, method, jobs):
        """Results of ``worker.<method>(*job)`` for every job, yielded in the order of ``jobs``, with the jobs
        spread over the workers as they free up (each holds at most ``QUEUE_PER_WORKER`` calls)."""
        pending, finished, queued = {}, {}, [0] * self.workers
        submitted = 0
        for index in range(len(jobs)):
            while submitted < len(jobs) and min(queued) < QUEUE_PER_WORKER:
                worker = queued.index(min(queued))
                reference = getattr(self.actors[worker], method).remote(*jobs[submitted])
                pending[reference] = (submitted, worker)
                queued[worker] += 1
                submitted += 1
            while index not in finished:
                ready, _ = self.ray.wait(list(pending), num_returns=1)
                job, worker = pending.pop(ready[0])
                queued[worker] -= 1
                result = self._get(ready[0])
                self.jobs[worker] += 1
                self.pids[worker].add(result[-1])
                finished[job] = result[:-1]
            yield finished.pop(index)

    def close(self):
        """Stops the workers (and the local Ray instance this executor started)."""
        for worker in self.actors:
            self.ray.kill(worker)
        self.actors = []
        if self._started:
            self.ray.shutdown()
            self._started = False

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _get(self, references):
        try:
            return self.ray.get(references)
        except self.ray.exceptions.RayError as error:
            raise TfrobustError(f"a Ray worker failed: {first_line(error)}") from error


class _ModelExecutor:
    """One model's view of a ``RayExecutor``: per attack, the ``map_batches`` / ``map_chunks`` of
    ``robust_accuracy``."""

    def __init__(self, executor, eps, model):
        self.executor, self.eps, self.model = executor, eps, model

    def attack_maps(self, attack):
        def map_batches(jobs):
            return self.executor.map("attack_batch", [(self.eps, self.model, attack, *job) for job in jobs])

        def map_chunks(jobs):
            return self.executor.map("attack_chunk", [(self.eps, self.model, attack, *job) for job in jobs])

        return {"map_batches": map_batches, "map_chunks": map_chunks}

