"""Progress output of evaluations (Keras's verbose 0/1/2) and the per-point files: correct.npz and the
``--save_adversarial`` examples, which must reproduce the masks and stay within ε."""

import json

import numpy as np
import pytest

from tfrobust.attacks import FGSM, AutoAttack, Square
from tfrobust.errors import TfrobustError
from tfrobust.evaluation import evaluate, robust_accuracy, write_report
from tests import linear_problems

EPS = 0.2
SUITE = "fgsm,pgd"


@pytest.fixture(scope="module")
def linear_problem():
    return linear_problems.linear_problem(40, 4)


def run(problem, **options):
    model, x, y = problem
    return evaluate({"lin": model}, x, y, eps=EPS, suite=SUITE, sanity_size=0, batch_size=16, **options)


def test_verbose_zero_prints_nothing(linear_problem, capsys):
    run(linear_problem, verbose=0)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_verbose_two_prints_one_line_per_attack_with_its_name(linear_problem, capsys):
    run(linear_problem, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("lin fgsm: 32 points attacked in 2 batch(es)")
    assert lines[1].startswith("lin pgd: 32 points attacked in 2 batch(es)")
    assert all(" of 40 standing" in line for line in lines)


def test_verbose_one_shows_a_progress_bar_with_the_points_standing(linear_problem, capsys):
    model, x, y = linear_problem
    result = robust_accuracy(None, None, x, y, predict_fn=lambda batch: model(batch).numpy(), verbose=1)
    assert capsys.readouterr().out == ""  # clean accuracy runs no attack: no bar
    run(linear_problem, verbose=1)
    out = capsys.readouterr().out
    assert "lin fgsm: 32 of 40 points standing" in out and "lin pgd: 32 of 40 points standing" in out
    assert "2/2" in out and "standing:" in out
    assert result["accuracy"] == pytest.approx(32 / 40)


def test_verbose_outside_zero_to_two_is_refused(linear_problem):
    model, x, y = linear_problem
    with pytest.raises(TfrobustError, match="verbose must be 0, 1 or 2"):
        robust_accuracy(None, None, x, y, predict_fn=lambda batch: model(batch).numpy(), verbose=3)


def test_saved_adversarial_examples_reproduce_the_masks_and_stay_within_eps(linear_problem, tmp_path):
    model, x, y = linear_problem
    report = run(linear_problem, save_adversarial=True)
    write_report(report, tmp_path)
    masks = np.load(tmp_path / "correct.npz")
    assert sorted(masks.files) == ["lin/clean", "lin/fgsm", "lin/pgd", "lin/worst_case"]
    assert "adversarial" not in json.loads((tmp_path / "report.json").read_text())
    for attack in ("fgsm", "pgd"):
        saved = np.load(tmp_path / "adversarial" / "lin" / f"{attack}.npz")
        x_adv, y_pred = saved["x_adv"], saved["y_pred"]
        assert x_adv.shape == x.shape and x_adv.dtype == np.float32 and y_pred.shape == y.shape
        mask = masks[f"lin/{attack}"]
        np.testing.assert_array_equal(np.argmax(model(x_adv).numpy(), axis=1) == y, mask)
        np.testing.assert_array_equal(y_pred == y, mask)
        assert np.max(np.abs(x_adv - x)) <= EPS * (1 + 1e-6) + 1e-7
        assert 0.0 <= x_adv.min() and x_adv.max() <= 1.0
        assert mask.sum() < masks["lin/clean"].sum()  # the attack broke points: the check has teeth
        np.testing.assert_array_equal(x_adv[~masks["lin/clean"]], x[~masks["lin/clean"]])


def test_a_report_without_adversarial_examples_removes_an_overwritten_runs(linear_problem, tmp_path):
    write_report(run(linear_problem, save_adversarial=True), tmp_path)
    assert (tmp_path / "adversarial" / "lin" / "pgd.npz").exists()
    write_report(run(linear_problem), tmp_path, overwrite=True)
    assert not (tmp_path / "adversarial").exists()


def test_autoattack_reports_each_component_through_the_progress_callback(linear_problem, capsys):
    model, x, y = linear_problem
    attack = AutoAttack(norm="linf", eps=0.02, version="fast", batch_size=20)  # some points survive
    # Short components: only AutoAttack's survivor loop and its reporting are under test here.
    attack.attacks = [("fgsm", FGSM(norm="linf", eps=0.02)), ("square", Square(norm="linf", eps=0.02, queries=20))]
    result = robust_accuracy(attack, model, x, y, verbose=2, name="aa")
    lines = capsys.readouterr().out.splitlines()
    components = [name for name, _ in attack.attacks]
    assert attack.last_report[-1]["robust"] > 0  # so every component ran on some points
    assert [line.split(":")[0] for line in lines[:-1]] == [f"aa / {name}" for name in components]
    for line, step in zip(lines, attack.last_report):
        assert f"{step['robust']} of the attacked points standing" in line
    assert lines[-1].startswith(f"aa: 32 points attacked in 1 batch(es), {int(result['correct'].sum())} of 40")
    robust_accuracy(attack, model, x, y, verbose=1, name="aa")
    out = capsys.readouterr().out
    assert "aa / fgsm\n" in out and "aa / square\n" in out and "standing: " in out
