"""``evaluation.progress``: the progress read back from a saved evaluation state agrees with the numbers the
evaluation itself reports, both when it finished and when a kill cut it inside an attack or an AutoAttack
component (the journals truncated where a kill leaves them)."""

import json
import math
import shutil
import warnings

import numpy as np
import pytest
import tensorflow as tf

from tfrobust.attacks import PGD, AutoAttack
from tfrobust.errors import TfrobustError
from tfrobust.core.journal import Journal
from tfrobust.evaluation import robust_accuracy, run_suite
from tfrobust.evaluation.progress import format_progress, read_progress
from tfrobust.evaluation.resume import EvaluationState, command_identity
from tests.evaluation.test_resume import truncate
from tests.linear_problems import linear_problem

BATCH = 8


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A suite (clean, PGD, fast AutoAttack in chunks of 8) run to the end with its state kept, and its result."""
    model, x, y = linear_problem(60, 4, seed=1)
    folder = tmp_path_factory.mktemp("progress") / "state"
    state = EvaluationState(folder, command_identity({"lin": model}, x, y, suite="pgd,autoattack", batch_size=BATCH))
    attacks = {"pgd": PGD(norm="linf", eps=0.05, steps=5, random_start=True, seed=3),
               "autoattack": AutoAttack(norm="linf", eps=0.05, version="fast", batch_size=BATCH, seed=2)}
    result = run_suite(model, x, y, attacks, batch_size=BATCH, name="lin", journal=state.journal("standard", "lin"))
    return folder, result


def by_attack(entries):
    return {entry["journal"].split("/")[-1]: entry for entry in entries}


def copy_state(folder, tmp_path):
    """A copy of the finished state to cut as a kill would."""
    return shutil.copytree(folder, tmp_path / "state")


def drop_from_autoattack_start(state, key):
    """Removes ``key`` from the AutoAttack start record's meta in ``state``: the record an older version wrote."""
    drop_from_first_record(state / "standard" / "lin" / "autoattack" / "attack", key)


def drop_from_first_record(journal_folder, key):
    """Removes ``key`` from the meta of a journal's record 0."""
    start = journal_folder / "000000.npz"
    with np.load(start) as saved:
        arrays = {name: saved[name] for name in saved.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    del meta[key]
    np.savez(start, __meta__=np.array(json.dumps(meta)), **arrays)


def test_a_finished_state_reads_back_the_evaluations_numbers(finished):
    folder, result = finished
    entries = read_progress(folder)
    assert [e["journal"] for e in entries] == ["standard/lin/clean", "standard/lin/pgd", "standard/lin/autoattack"]
    found = by_attack(entries)
    clean = int(result["correct"]["clean"].sum())
    assert found["clean"]["standing"] == clean and found["clean"]["points"] == 60
    pgd = found["pgd"]
    assert pgd["finished"] and pgd["attacked"] == clean
    assert pgd["batches_done"] == pgd["batches"] == math.ceil(clean / BATCH)
    assert pgd["standing"] == int(result["correct"]["pgd"].sum())
    autoattack = found["autoattack"]
    assert autoattack["finished"] and autoattack["standing"] == int(result["correct"]["autoattack"].sum())
    components = result["rows"][1]["components"]
    assert [c["name"] for c in autoattack["components"]] == [c["attack"] for c in components]
    assert [c["standing"] for c in autoattack["components"]] == [c["robust"] for c in components]
    assert all(c["finished"] and c["chunks_done"] == c["chunks"] for c in autoattack["components"])
    lines = format_progress(entries)
    assert lines[0] == f"standard/lin/clean: {clean} of 60 correct ({100 * clean / 60:.1f} %)"
    assert lines[1].startswith(f"standard/lin/pgd: done, {pgd['batches']} of {pgd['batches']} batch(es), "
                               f"{pgd['standing']} of 60 standing")
    assert "provisional" not in "\n".join(lines)


def test_a_cut_attack_counts_only_its_finished_batches(finished, tmp_path):
    folder, result = finished
    state = copy_state(folder, tmp_path)
    truncate(state / "standard" / "lin" / "pgd", keep=1 + 2)  # the plan and two batches before the kill
    pgd = by_attack(read_progress(state))["pgd"]
    # The first two batches attacked the first 16 clean-correct points; the others still count as standing.
    attacked = np.flatnonzero(result["correct"]["clean"])[:2 * BATCH]
    assert not pgd["finished"] and pgd["batches_done"] == 2
    assert pgd["standing"] == pgd["attacked"] - int(np.sum(~result["correct"]["pgd"][attacked]))
    assert pgd["standing"] > int(result["correct"]["pgd"].sum())  # this problem's later batches break points too
    assert "standing (" in format_progress([pgd])[0] and "provisional)" in format_progress([pgd])[0]


def test_an_autoattack_cut_between_and_inside_components(finished, tmp_path):
    folder, result = finished
    robust = [c["robust"] for c in result["rows"][1]["components"]]
    chunks = [math.ceil(n / BATCH) for n in [int(result["correct"]["clean"].sum()), *robust[:-1]]]
    state = copy_state(folder, tmp_path)
    inner = state / "standard" / "lin" / "autoattack"
    truncate(inner, keep=1)  # the batch record is written only when AutoAttack returns
    truncate(inner / "attack", keep=1 + chunks[0] + chunks[1])  # APGD-CE and APGD-T done, Square not begun
    autoattack = by_attack(read_progress(state))["autoattack"]
    assert not autoattack["finished"] and autoattack["standing"] == robust[1]
    assert [c["finished"] for c in autoattack["components"]] == [True, True, False]
    assert autoattack["components"][2]["chunks"] == chunks[2] and autoattack["components"][2]["chunks_done"] == 0
    lines = format_progress([autoattack])
    assert lines[3] == f"  square: running, 0 of {chunks[2]} chunk(s), {robust[1]} standing, 0 s"

    truncate(inner / "attack", keep=1 + chunks[0] + 1)  # one chunk of APGD-T done
    autoattack = by_attack(read_progress(state))["autoattack"]
    apgd_t, square = autoattack["components"][1:]
    assert (apgd_t["chunks_done"], apgd_t["chunks"], apgd_t["finished"]) == (1, chunks[1], False)
    assert square["chunks"] is None  # its chunks are cut from APGD-T's survivors, not known yet
    assert robust[1] <= autoattack["standing"] <= robust[0]
    lines = format_progress([autoattack])
    assert lines[2].startswith(f"  apgd-t: running, 1 of {chunks[1]} chunk(s), ") and "min left" in lines[2]
    assert lines[3] == "  square: waiting"
    # The time left goes by points, not chunks: the last chunk holds only the remainder.
    assert robust[0] % BATCH, "the problem should leave a part-filled last chunk"
    assert apgd_t["seconds_left"] == pytest.approx(apgd_t["seconds"] / BATCH * (robust[0] - BATCH))
    assert autoattack["components"][0]["seconds_left"] is None and square["seconds_left"] is None


def test_an_autoattack_before_its_own_first_record_counts_one_batch(finished, tmp_path):
    folder, _ = finished
    state = copy_state(folder, tmp_path)
    truncate(state / "standard" / "lin" / "autoattack", keep=1)
    shutil.rmtree(state / "standard" / "lin" / "autoattack" / "attack")  # killed before AutoAttack's start record
    autoattack = by_attack(read_progress(state))["autoattack"]
    assert (autoattack["batches_done"], autoattack["batches"], autoattack["finished"]) == (0, 1, False)
    assert autoattack["standing"] == autoattack["attacked"] and "components" not in autoattack


def test_a_state_saved_before_components_were_named_numbers_them(finished, tmp_path):
    folder, _ = finished
    state = copy_state(folder, tmp_path)
    drop_from_autoattack_start(state, "components")
    autoattack = by_attack(read_progress(state))["autoattack"]
    assert [c["name"] for c in autoattack["components"]] == [None, None, None]
    assert format_progress([autoattack])[1].startswith("  component 0: done, ")


def test_an_attack_with_nothing_left_to_attack_is_done_and_an_unknown_batch_count_stays_unknown(tmp_path):
    model, x, y = linear_problem(20, 4)
    wrong = (np.argmax(model(x), axis=1) + 1) % 4  # labels no prediction matches: nothing to attack
    robust_accuracy(PGD(norm="linf", eps=0.1, steps=2), model, x, wrong, batch_size=BATCH,
                    journal=Journal(tmp_path / "none" / "pgd"))
    [entry] = read_progress(tmp_path / "none")
    assert (entry["attacked"], entry["batches"], entry["finished"], entry["standing"]) == (0, 0, True, 0)
    # Killed after the plan, before the first batch: the plan states the batch size.
    journal = Journal(tmp_path / "cut" / "pgd")
    robust_accuracy(PGD(norm="linf", eps=0.1, steps=2), model, x, y, batch_size=BATCH, journal=journal)
    truncate(journal.folder, keep=1)
    [entry] = read_progress(tmp_path / "cut")
    assert entry["batches"] == math.ceil(entry["attacked"] / BATCH) and not entry["finished"]
    # A plan saved before it did, in a state without command.json: the count is unknown.
    drop_from_first_record(tmp_path / "cut" / "pgd", "batch_size")
    [entry] = read_progress(tmp_path / "cut")
    assert entry["batches"] is None and not entry["finished"] and entry["standing"] == entry["attacked"] > 0
    assert format_progress([entry])[0].startswith("pgd: running, 0 batch(es), ")


def test_a_finished_autoattack_on_a_randomised_model_reads_the_evaluations_count(tmp_path):
    # AutoAttack's own per-chunk counts come from single noisy passes; the evaluation scores the returned points
    # with passes of its own. Once AutoAttack has returned, the reader must give the evaluation's number.
    model, x, y = linear_problem(60, 4, seed=1)
    noise = tf.random.Generator.from_seed(0)
    noisy = lambda inputs: model(inputs) + 0.5 * noise.normal((tf.shape(inputs)[0], 10))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # AutoAttack rightly warns that this model is randomised
        result = robust_accuracy(AutoAttack(norm="linf", eps=0.05, version="fast", batch_size=BATCH, seed=2), noisy,
                                 x, y, batch_size=BATCH, journal=Journal(tmp_path / "aa"))
    [entry] = read_progress(tmp_path)
    assert entry["finished"] and entry["standing"] == int(result["correct"].sum())
    assert entry["components"][-1]["standing"] != entry["standing"]  # so the two counts differ here


def test_records_being_written_are_not_read_and_foreign_or_damaged_ones_are_named(finished, tmp_path):
    folder, _ = finished
    state = copy_state(folder, tmp_path)
    expected = read_progress(state)
    # What atomic_path leaves while a record is written (or after a kill mid-write): a hidden folder.
    pgd = state / "standard" / "lin" / "pgd"
    (pgd / ".tmp-000009.npz-abc").mkdir()
    (pgd / ".tmp-000009.npz-abc" / "000000.npz").write_bytes(b"half a zip")
    shutil.copytree(state / "standard" / "lin" / "autoattack" / "attack",
                    state / "standard" / "lin" / "autoattack" / "attack" / ".tmp-000099.npz-q")
    assert read_progress(state) == expected
    other = state / "standard" / "lin" / "other"  # a folder of records some other program wrote
    other.mkdir()
    np.savez(other / "000000.npz", __meta__=np.array(json.dumps({"points": 3})), y_pred=np.zeros(3))
    with pytest.raises(TfrobustError, match=r"other holds records this version cannot read \(KeyError: 'correct'\)"):
        read_progress(state)
    (other / "000000.npz").write_bytes(b"damaged")
    with pytest.raises(TfrobustError, match=r"other/000000.npz is damaged"):
        read_progress(state)


def test_an_autoattack_start_record_without_its_chunk_size_uses_the_commands(finished, tmp_path):
    folder, _ = finished
    state = copy_state(folder, tmp_path)
    drop_from_autoattack_start(state, "batch_size")  # a state saved before AutoAttack recorded it
    components = by_attack(read_progress(state))["autoattack"]["components"]
    assert [c["chunks"] for c in components] == [c["chunks_done"] for c in components]  # command.json's size: 8
    (state / "command.json").unlink()
    components = by_attack(read_progress(state))["autoattack"]["components"]
    assert [c["chunks"] for c in components] == [None] * 3 and not any(c["finished"] for c in components)
    assert format_progress([by_attack(read_progress(state))["autoattack"]])[1].startswith(
        f"  apgd-ce: running, {components[0]['chunks_done']} chunk(s), ")


def test_an_empty_or_missing_folder_has_no_progress(tmp_path):
    assert read_progress(tmp_path) == [] and read_progress(tmp_path / "missing") == []
