"""Result files of a claim from constructed per-model evaluations: pairs, verdict, Markdown and the summary row."""

import json

import numpy as np
import pytest

from tfrobust.errors import TfrobustError
from tfrobust.reproduction import claims
from tfrobust.reproduction.results import claim_report, summary_row, update_summary, write_claim

CLAIM = claims.Claim(
    name="made_up", title="made up",
    models=(claims.ModelRecipe("base", "b", {"cpu": ()}), claims.ModelRecipe("defense", "d", {"cpu": ()}, "cifs")),
    pairs=(claims.Pair("base", "defense", claims.PaperNumbers(50.0, 60.0, "PGD-100", "nowhere")),),
    scales={"cpu": claims.ScaleSetting("fashion_mnist", 0.1, 200, 50, "constructed")})


def evaluation(correct_until, strongest_until, flagged=()):
    mask = np.arange(200) < correct_until
    masks = {key: mask for key in ("clean", "fgsm", "pgd-20", "autoattack", "worst_case")}
    masks["strongest"] = np.arange(200) < strongest_until
    result = {"clean": 1.0, "rows": [{"attack": a, "accuracy": correct_until / 200, "seconds": 1.0, "mode": "white-box"}
                                     for a in ("fgsm", "pgd-20", "autoattack")],
              "worst_case": correct_until / 200, "strongest": strongest_until / 200, "flagged": list(flagged),
              "seconds": 2.0}
    return result, masks


def test_reproduced_pair_markdown_and_summary_row(tmp_path):
    evaluations = {0: {"base": evaluation(20, 20), "defense": evaluation(80, 80)}}
    evaluations[0]["defense"][0]["adaptive"] = {"recipe": "r", "worst_case": 0.4, "rows": [{"label": "beta=2",
                                                                                            "accuracy": 0.4}]}
    report = claim_report(CLAIM, "cpu", evaluations, {}, complete=True, commands=["python trainers/reproduce.py"])
    pair = report["pairs"][0]
    assert report["verdict"] == "reproduced" and pair["verdict"] == "reproduced"
    assert pair["differences"]["0"]["autoattack"]["difference"] == pytest.approx(0.30)
    assert pair["differences"]["0"]["adaptive"]["mcnemar"]["defense_only"] == 60
    path = write_claim(report, tmp_path)
    text = open(path, encoding="utf-8").read()
    assert "**Verdict: reproduced**" in text and "| 0 | autoattack | 10.0 | 40.0 | +30.00 ± 3.25 | 60 / 0 |" in text
    assert json.loads((tmp_path / "made_up.json").read_text())["pairs"][0]["verdict"] == "reproduced"
    summary = tmp_path / "summary.md"
    summary.write_text("<!-- reproductions-summary:start -->\n| claim | a | b | c | d |\n|---|---|---|---|---|\n"
                       "| made_up | x | x | x | x |\n| other | y | y | y | y |\n<!-- reproductions-summary:end -->\n")
    update_summary(str(summary), report, "reproductions/made_up.md")
    lines = summary.read_text().splitlines()
    assert lines[3] == ("| made_up | defense vs base: +10.00 pt (PGD-100) | +30.00 ± 3.25 pt (1 seed) | reproduced | "
                        "[made_up](reproductions/made_up.md) |")
    assert lines[4] == "| other | y | y | y | y |"


def test_an_incomplete_claim_has_no_verdict(tmp_path):
    report = claim_report(CLAIM, "cpu", {0: {"base": evaluation(20, 20)}}, {}, complete=False, commands=[],
                          missing=["defense seed 0"])
    assert report["verdict"] == "partial" and report["status"] == "partial"
    assert "Not done yet: defense seed 0." in open(write_claim(report, tmp_path), encoding="utf-8").read()
    summary = tmp_path / "s.md"
    summary.write_text("no table\n")
    with pytest.raises(TfrobustError, match="reproductions-summary:start"):
        update_summary(str(summary), report, "x.md")


def test_a_resumed_training_says_its_seconds_cover_the_last_invocation_only(tmp_path):
    # summary.json's train_seconds count the invocation that finished the run: a resumed one ran fewer epochs.
    trainings = {0: {"base": {"command": "c", "train_seconds": 1440.2, "epochs": 3, "epochs_last_invocation": 2},
                     "defense": {"command": "c", "train_seconds": 300.0, "epochs": 3, "epochs_last_invocation": 3}}}
    report = claim_report(CLAIM, "cpu", {0: {"base": evaluation(20, 20)}}, trainings, complete=False, commands=[],
                          missing=["defense seed 0"])
    text = open(write_claim(report, tmp_path), encoding="utf-8").read()
    assert "| base | 0 | 100.0 | 10.0 | 10.0 | 10.0 | 10.0 | 10.0 | none | 1440 (last 2 of 3 epochs) | 2 |" in text
    assert "| defense | 0 | not evaluated yet | | | | | | | 300 | |" in text


def test_summary_row_names_every_other_pairs_verdict():
    """The row's numbers are the headline pair's; a second pair's verdict (here reproduced, while the headline is
    not) still shows in the verdict cell."""
    claim = claims.Claim(
        name="two_pairs", title="two pairs",
        models=tuple(claims.ModelRecipe(name, name, {"cpu": ()}) for name in ("base", "defense", "ablation")),
        pairs=(claims.Pair("base", "defense", claims.PaperNumbers(50.0, 60.0, "PGD-100", "nowhere")),
               claims.Pair("defense", "ablation", claims.PaperNumbers(60.0, 55.0, "PGD-100", "nowhere"))),
        scales={"cpu": claims.ScaleSetting("fashion_mnist", 0.1, 200, 50, "constructed")})
    evaluations = {0: {"base": evaluation(100, 100), "defense": evaluation(100, 100), "ablation": evaluation(20, 20)},
                   1: {"base": evaluation(100, 100), "defense": evaluation(100, 100)}}
    report = claim_report(claim, "cpu", evaluations, {}, complete=True, commands=[])
    assert [pair["verdict"] for pair in report["pairs"]] == ["not reproduced", "reproduced"]
    row = summary_row(report, "two_pairs.md")
    assert row.endswith("| not reproduced; other pairs — ablation vs defense: reproduced | [two_pairs](two_pairs.md) |")
    assert "+0.00 ± 0.00 pt (2 seeds)" in row


def test_a_resumed_evaluation_counts_the_earlier_invocations_autoattack_chunks(tmp_path):
    """The evaluation that finished after a resume clocked 100 s (its AutoAttack row 90 s), but AutoAttack's
    journaled components took 30 + 360 s over both invocations: 300 s of finished work came from the earlier one."""
    base, defense = evaluation(20, 20), evaluation(80, 80)
    result = defense[0]
    result["rows"][2].update(seconds=90.0, components=[{"attack": "apgd-ce", "seconds": 30.0},
                                                       {"attack": "square", "seconds": 360.0}])
    result.update(seconds=100.0, resumed=True)
    report = claim_report(CLAIM, "cpu", {0: {"base": base, "defense": defense}}, {}, complete=True, commands=[])
    text = open(write_claim(report, tmp_path), encoding="utf-8").read()
    assert text.count("| 2 |") == 1 and "| 400 (resumed) |" in text  # base: its own 2 s; defense: 100 + 300 s
    assert "evaluation 6.7 min" in text  # (2 + 400) s
