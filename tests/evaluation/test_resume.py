"""Resumable evaluation: a run cut short (its journal truncated where a kill would leave it) and re-run
ends with exactly the uninterrupted run's numbers, attacks only what was left, and a different command's
state is refused unless restarted. The SIGKILL of a real process is tests/scripts/test_evaluate_resume.py."""

import json
import os

import numpy as np
import pytest

from tfrobust.attacks import PGD, AutoAttack
from tfrobust.core.journal import Journal
from tfrobust.errors import TfrobustError
from tfrobust.evaluation import robust_accuracy
from tfrobust.evaluation.resume import EvaluationState, command_identity
from tests.linear_problems import linear_problem

EPS = 0.15


@pytest.fixture(scope="module")
def problem():
    return linear_problem(60, 4, seed=1)


def truncate(folder, keep):
    """What a kill leaves: the first ``keep`` records of a journal (records are written in order)."""
    for name in sorted(os.listdir(folder)):
        if name.endswith(".npz") and int(name[:6]) >= keep:
            os.remove(os.path.join(folder, name))


class CountingAttack:
    """Passes calls through to ``attack`` and counts them (and the points they got)."""

    def __init__(self, attack):
        self.attack, self.calls, self.points = attack, 0, 0

    def __getattr__(self, name):
        return getattr(self.attack, name)

    def __call__(self, model_fn, x, y, **options):
        self.calls += 1
        self.points += len(x)
        return self.attack(model_fn, x, y, **options)


def assert_same_result(resumed, uninterrupted):
    np.testing.assert_array_equal(resumed["correct"], uninterrupted["correct"])
    np.testing.assert_array_equal(resumed["y_pred"], uninterrupted["y_pred"])
    np.testing.assert_array_equal(resumed["x_adv"], uninterrupted["x_adv"])  # bit for bit: same random streams
    assert resumed["accuracy"] == uninterrupted["accuracy"]
    assert resumed["counts"] == uninterrupted["counts"] and resumed["invalid"] == uninterrupted["invalid"]


def test_a_cut_short_pgd_run_resumes_to_exactly_the_uninterrupted_result(problem, tmp_path):
    model, x, y = problem
    pgd = lambda: PGD(norm="linf", eps=EPS, steps=5, random_start=True, seed=3)
    options = {"batch_size": 8, "keep_adversarial": True}
    uninterrupted = robust_accuracy(pgd(), model, x, y, **options)
    journal = Journal(tmp_path / "pgd")
    assert_same_result(robust_accuracy(pgd(), model, x, y, journal=journal, **options), uninterrupted)
    batches = len(journal.records()) - 1  # after the plan record
    assert batches == -(-int(np.sum(np.argmax(model(x), 1) == y)) // 8) >= 4

    truncate(journal.folder, keep=1 + 2)  # the plan and two batches were written before the kill
    attack = CountingAttack(pgd())
    resumed = robust_accuracy(attack, model, x, y, journal=Journal(journal.folder), **options)
    assert_same_result(resumed, uninterrupted)
    assert attack.calls == batches - 2  # only the batches the killed run had not finished

    # Without the stream named per batch, a fresh attack on batch 2 would draw stream 0: a resumed run
    # would differ. The random start matters here, so this comparison can fail.
    other = robust_accuracy(PGD(norm="linf", eps=EPS, steps=5, random_start=True, seed=4), model, x, y, **options)
    assert not np.array_equal(other["x_adv"], uninterrupted["x_adv"])


def test_an_autoattack_cut_inside_a_component_resumes_from_its_last_chunk(problem, tmp_path):
    model, x, y = problem
    # At ε = 0.05 every component has several chunks of 8 (48 → 21 → 18 standing points).
    autoattack = lambda: AutoAttack(norm="linf", eps=0.05, version="fast", batch_size=8, seed=2)
    uninterrupted = robust_accuracy(autoattack(), model, x, y, batch_size=8, keep_adversarial=True)
    journal = Journal(tmp_path / "aa")
    full = robust_accuracy(autoattack(), model, x, y, batch_size=8, keep_adversarial=True, journal=journal)
    assert_same_result(full, uninterrupted)
    inner = journal.child("attack")
    chunks = [meta for meta, _ in inner.records()[1:]]
    assert [meta["component"] for meta in chunks] == sorted(meta["component"] for meta in chunks)
    assert [sum(meta["component"] == c for meta in chunks) for c in range(3)] == [6, 3, 3]

    # Killed after the second chunk of the second component (APGD-T): the outer batch record is missing too.
    cut = 1 + next(i for i, meta in enumerate(chunks) if meta["component"] == 1) + 1
    truncate(journal.folder, keep=1)
    truncate(inner.folder, keep=1 + cut)
    attack = CountingAttack(autoattack())
    seen = []
    attack.attack.attacks = [(name, _Recording(component, name, seen)) for name, component in attack.attack.attacks]
    resumed = robust_accuracy(attack, model, x, y, batch_size=8, keep_adversarial=True, journal=Journal(journal.folder))
    assert_same_result(resumed, uninterrupted)
    assert [s["robust"] for s in resumed["attack_report"]] == [s["robust"] for s in uninterrupted["attack_report"]]
    assert [s["counts"] for s in resumed["attack_report"]] == [s["counts"] for s in uninterrupted["attack_report"]]
    assert seen and seen[0] == "apgd-t"  # APGD-CE's chunks were all replayed, not redone
    assert len(seen) == len(chunks) - cut


def test_an_autoattack_journal_of_another_batch_size_is_refused(problem, tmp_path):
    # Chunks of 16 and of 8 share (component, chunk) numbers but not their points: replaying one as the other
    # would skip points that were never attacked.
    model, x, y = problem
    autoattack = lambda size: AutoAttack(norm="linf", eps=0.05, version="fast", batch_size=size, seed=2)
    first = autoattack(16)(model, x, y, journal=Journal(tmp_path))
    again = autoattack(16)(model, x, y, journal=Journal(tmp_path))
    np.testing.assert_array_equal(again.numpy(), first.numpy())
    with pytest.raises(TfrobustError, match="state is for batch_size 16, this call has 8"):
        autoattack(8)(model, x, y, journal=Journal(tmp_path))
    # A state saved before the batch size was recorded: its chunks' points give another size away.
    start = tmp_path / "000000.npz"
    with np.load(start) as data:
        arrays = {key: data[key] for key in data.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    del meta["batch_size"]
    np.savez(start, __meta__=np.array(json.dumps(meta)), **arrays)
    with pytest.raises(TfrobustError, match="chunk 1 broke points outside this call's chunk"):
        autoattack(32)(model, x, y, journal=Journal(tmp_path))
    np.testing.assert_array_equal(autoattack(16)(model, x, y, journal=Journal(tmp_path)).numpy(), first.numpy())


class _Recording:
    """A component attack that records its name when it runs a chunk."""

    def __init__(self, attack, name, seen):
        self.attack, self.name, self.seen = attack, name, seen

    def __getattr__(self, name):
        return getattr(self.attack, name)

    def __call__(self, model_fn, x, y):
        self.seen.append(self.name)
        return self.attack(model_fn, x, y)


def test_a_finished_journal_is_replayed_without_attacking(problem, tmp_path):
    model, x, y = problem
    journal = Journal(tmp_path)
    first = robust_accuracy(PGD(norm="linf", eps=EPS, steps=3, seed=0), model, x, y, batch_size=16, journal=journal)
    attack = CountingAttack(PGD(norm="linf", eps=EPS, steps=3, seed=0))
    again = robust_accuracy(attack, model, x, y, batch_size=16, journal=Journal(tmp_path))
    assert attack.calls == 0 and again["accuracy"] == first["accuracy"] and again["counts"] == first["counts"]
    np.testing.assert_array_equal(again["correct"], first["correct"])
    with pytest.raises(TfrobustError, match="state is for 60 points, this run has 30"):
        robust_accuracy(attack, model, x[:30], y[:30], batch_size=16, journal=Journal(tmp_path))
    with pytest.raises(TfrobustError, match="does not match this run"):
        robust_accuracy(attack, model, x, y, batch_size=8, journal=Journal(tmp_path))


def test_a_different_command_is_refused_naming_what_changed_unless_restarted(problem, tmp_path):
    model, x, y = problem
    identity = lambda **changes: command_identity({"lin": model}, x, y, **{"eps": [0.1], "suite": "quick",
                                                                          "seed": 0, **changes})
    state = EvaluationState(tmp_path / "state", identity())
    state.journal("eps_0.1", "lin", "pgd-20").append({"batch": 0})
    assert EvaluationState(tmp_path / "state", identity()).resumed  # the same command resumes
    with pytest.raises(TfrobustError, match=r"different evaluation \(changed: eps, suite\).*--restart"):
        EvaluationState(tmp_path / "state", identity(eps=[0.2], suite="standard"))
    with pytest.raises(TfrobustError, match=r"changed: points"):
        EvaluationState(tmp_path / "state", command_identity({"lin": model}, x[:-1], y[:-1], eps=[0.1],
                                                              suite="quick", seed=0))
    model.layers[-1].bias.assign(model.layers[-1].bias + 1.0)  # other weights: another model
    try:
        with pytest.raises(TfrobustError, match=r"changed: models"):
            EvaluationState(tmp_path / "state", identity())
    finally:
        model.layers[-1].bias.assign(model.layers[-1].bias - 1.0)
    restarted = EvaluationState(tmp_path / "state", identity(eps=[0.2]), restart=True)
    assert not restarted.resumed and restarted.journal("eps_0.1", "lin", "pgd-20").records() == []
