"""Evaluation sharded over Ray workers on a local instance (127.0.0.1, 2 single-threaded workers): the
per-point results equal a single-process run's bit for bit, and a worker killed mid-evaluation is
restarted, its calls retried, and nothing is lost or counted twice."""

import os
import signal

import numpy as np
import pytest

from tfrobust import export
from tfrobust.core.journal import Journal
from tfrobust.errors import TfrobustError
from tfrobust.evaluation import evaluate
from tfrobust.evaluation.distributed import EvaluationSpec, EvaluationWorker, RayExecutor
from tfrobust.evaluation.robustness import attack_batch
from tfrobust.evaluation.suite import build_suite, run_suite
from tfrobust.evaluation.target import as_target
from tests.linear_problems import linear_problem

pytest.importorskip("ray")

SUITE = "pgd,autoattack"
OVERRIDES = {"pgd": {"steps": 10}, "autoattack": {"version": "fast", "batch_size": 10}}
OPTIONS = {"eps": 0.05, "suite": SUITE, "suite_overrides": OVERRIDES, "sanity_size": 0, "batch_size": 10, "seed": 3,
           "save_adversarial": True}


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    """A 10-class linear model on 8×8 images saved as .keras, and labels it gets right except every fifth."""
    model, x, y = linear_problem(80, 8)
    paths = export.export_all(model, str(tmp_path_factory.mktemp("model")), "lin", formats=("keras", "tflite_fp32"))
    return paths, x, y


@pytest.fixture(scope="module")
def executor(problem):
    paths = problem[0]
    spec = EvaluationSpec(sources={"lin": ("artifact", paths["keras"], {}),
                                   "lin:tflite": ("artifact", paths["tflite_fp32"], {}),
                                   "lin:saved_model": ("artifact", paths["saved_model"], {})},
                          suite=SUITE, seed=3, overrides=OVERRIDES,
                          surrogates={"lin:tflite": "lin:saved_model"})
    with RayExecutor(spec, workers=2, threads=1) as executor:
        yield executor


@pytest.fixture(scope="module")
def single_process(problem):
    paths, x, y = problem
    return evaluate({"lin": export.load(paths["keras"])}, x, y, **OPTIONS)


def assert_same(report, reference):
    for key, mask in reference["correct"]["lin"].items():
        np.testing.assert_array_equal(report["correct"]["lin"][key], mask, err_msg=key)
    for key, arrays in reference["adversarial"]["lin"].items():
        np.testing.assert_array_equal(report["adversarial"]["lin"][key]["x_adv"], arrays["x_adv"], err_msg=key)
    rows = lambda r: [(row["attack"], row["accuracy"], row["counts"], row.get("components") and
                       [c["robust"] for c in row["components"]]) for row in r["models"][0]["rows"]]
    assert rows(report) == rows(reference)


def test_sharded_evaluation_equals_the_single_process_run(problem, executor, single_process):
    paths, x, y = problem
    before = sum(executor.stats()["jobs"])
    report = evaluate({"lin": export.load(paths["keras"])}, x, y, executor=executor, **OPTIONS)
    assert_same(report, single_process)
    jobs = np.array(executor.stats()["jobs"])
    assert jobs.sum() - before >= 12 and np.all(jobs > 0)  # both workers took batches and chunks


def test_a_worker_killed_mid_evaluation_is_restarted_and_its_calls_retried(problem, executor, single_process,
                                                                          monkeypatch):
    paths, x, y = problem
    victim = executor.worker_pids()[1]
    done_at_start = sum(executor.stats()["jobs"])
    killed = {}
    real_map = executor.map

    def map_then_kill(method, jobs):
        # The kill comes from the driver, between two results of the first map (PGD's 8 batches, dealt
        # round-robin two per worker): worker 1 almost always holds an unanswered call then, which is retried,
        # and most of the evaluation is still to come, so its restarted process answers later calls either way.
        # A polling thread could be starved on a loaded machine until the work was done.
        for result in real_map(method, jobs):
            if "jobs" not in killed and sum(executor.stats()["jobs"]) - done_at_start >= 2:
                killed["jobs"] = sum(executor.stats()["jobs"]) - done_at_start
                os.kill(victim, signal.SIGKILL)
            yield result

    monkeypatch.setattr(executor, "map", map_then_kill)
    report = evaluate({"lin": export.load(paths["keras"])}, x, y, executor=executor, **OPTIONS)
    assert_same(report, single_process)  # the retried calls are merged once: nothing lost or counted twice
    total = sum(executor.stats()["jobs"]) - done_at_start
    assert 2 <= killed["jobs"] < total - 4, "the worker was killed after the evaluation had finished"
    assert executor.stats()["restarts"][1] == 1 and victim not in executor.worker_pids()


def test_a_killed_driver_resumes_from_the_units_it_had_merged(problem, executor, single_process, tmp_path):
    """The driver keeps the state (evaluation.resume): cut its journal where a kill would, re-run on the workers,
    and only the missing units are sent out; the result is still the single-process one."""
    paths, x, y = problem
    journal = Journal(tmp_path / "state")
    evaluate({"lin": export.load(paths["keras"])}, x, y, executor=executor, journal=journal, **OPTIONS)
    chunks = journal.child("lin").child("autoattack").child("attack")
    total = len(chunks.records()) - 1
    for folder, keep in ((chunks.folder, 1 + total // 2), (journal.child("lin").child("autoattack").folder, 1)):
        for name in sorted(os.listdir(folder)):
            if name.endswith(".npz") and int(name[:6]) >= keep:
                os.remove(os.path.join(folder, name))
    before = sum(executor.stats()["jobs"])
    report = evaluate({"lin": export.load(paths["keras"])}, x, y, executor=executor, journal=Journal(journal.folder),
                      **OPTIONS)
    assert_same(report, single_process)
    assert sum(executor.stats()["jobs"]) - before == total - total // 2  # the PGD batches were all replayed


@pytest.mark.slow  # ≈ 20 s: a TFLite model and its SavedModel loaded on both workers
def test_a_tflite_target_is_queried_on_the_workers_and_its_queries_counted(problem, executor):
    """PGD transfers from the SavedModel; AutoAttack is routed (gradient parts by transfer, Square on the TFLite
    model): the workers query their own TFLite copies, and the rows count those queries as the driver would."""
    paths, x, y = problem
    x, y = x[:30], y[:30]
    attacks = lambda: build_suite(SUITE, norm="linf", eps=0.05, seed=3, overrides=OVERRIDES)
    run = lambda **options: run_suite(export.load(paths["tflite_fp32"]), x, y, attacks(), name="lin:tflite",
                                      surrogate=export.load(paths["saved_model"]), batch_size=10, **options)
    here, there = run(), run(executor=executor.for_model(0.05, "lin:tflite"))
    rows = lambda r: [(row["attack"], row["mode"], row["accuracy"], row["queries"], row["counts"]) for row in r["rows"]]
    assert rows(there) == rows(here)
    assert here["rows"][1]["queries"] > 30  # Square queried the TFLite model
    for key, mask in here["correct"].items():
        np.testing.assert_array_equal(there["correct"][key], mask, err_msg=key)


def test_workers_the_cluster_cannot_place_are_a_clear_error_not_a_hang(executor):
    """The fixture's 2 workers hold the local instance's 2 CPUs: a third cannot be placed."""
    with pytest.raises(TfrobustError, match=r"1 Ray workers of 1 CPU\(s\).*not all placed within 2s.*fewer --workers"):
        RayExecutor(executor.spec, workers=1, start_timeout=2)
    assert len(executor.worker_pids()) == 2  # the running executor is untouched


def test_a_worker_rebuilds_the_drivers_attack_from_a_run_source(problem):
    """What a Ray actor runs, called here: a model loaded as ``tfrobust-evaluate --source`` loads it and the
    suite rebuilt from the spec give the driver's batch, bit for bit."""
    paths, x, y = problem
    spec = EvaluationSpec(sources={"lin": ("run", paths["keras"], {})}, suite=SUITE, seed=3, overrides=OVERRIDES)
    worker = EvaluationWorker(spec, threads=1)
    x_adv, counts, pid = worker.attack_batch(0.05, "lin", "pgd", 2, x[:10], y[:10])
    attack = build_suite(SUITE, norm="linf", eps=0.05, seed=3, overrides=OVERRIDES)["pgd"]
    logits_fn = as_target(export.load(paths["keras"])).logits_fn
    expected, expected_counts = attack_batch(attack, logits_fn, 2, x[:10], y[:10])
    np.testing.assert_array_equal(x_adv, expected)
    assert counts == expected_counts and pid == os.getpid()
    candidate, _, _, _ = worker.attack_chunk(0.05, "lin", "autoattack", 1, 0, x[:10], y[:10])
    assert candidate.shape == x[:10].shape and np.max(np.abs(candidate - x[:10])) <= 0.05 + 1e-6
