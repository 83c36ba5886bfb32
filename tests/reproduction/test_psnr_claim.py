"""PSNR claims (denoisers): paired per-image PSNR statistics with known answers, the verdict rule's PSNR
reading in each outcome, the ObsAtk evaluation on a denoiser with a known behaviour, result files, and the
denoising_hat recipes as trainers/train_denoiser.py commands."""

import json
import os

import numpy as np
import pytest
from absl import flags

from tfrobust.errors import TfrobustError
from tfrobust.reproduction import claims, runs
from tfrobust.reproduction.paired import paired_psnr_difference, pooled_difference
from tfrobust.reproduction.results import claim_markdown, claim_report, summary_row, write_claim
from tfrobust.reproduction.verdict import MASKED, NOT_REPRODUCED, PARTIAL, PSNR, REPRODUCED, pair_verdict

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLAIM = claims.get("denoising_hat")


# -- paired statistics -------------------------------------------------------------------------------------
def test_paired_psnr_difference_has_the_known_answer():
    baseline = np.array([20.0, 22.0, 24.0, 26.0])
    d = paired_psnr_difference(baseline, baseline + np.array([1.0, 2.0, 3.0, 2.0]))
    # mean(d) = 2; sd(d, ddof=1) = √(2/3); SE = √(2/3)/√4.
    assert d == pytest.approx({"baseline": 23.0, "defense": 25.0, "difference": 2.0, "se": np.sqrt(2 / 3) / 2,
                               "n": 4})
    # The image-to-image spread both models share does not enter the paired SE.
    shifted = paired_psnr_difference(np.array([10.0, 30.0, 50.0]), np.array([11.0, 31.0, 51.0]))
    assert shifted["difference"] == pytest.approx(1.0) and shifted["se"] == pytest.approx(0.0, abs=1e-12)
    assert paired_psnr_difference([25.0], [24.0]) == pytest.approx({"baseline": 25.0, "defense": 24.0,
                                                                    "difference": -1.0, "se": 0.0, "n": 1})
    pooled = pooled_difference([d, shifted])  # seeds pool as in the accuracy path
    assert pooled["difference"] == pytest.approx(1.5) and pooled["seeds"] == 2


@pytest.mark.parametrize("baseline, defense, message", [
    ([1.0, 2.0], [1.0], "same length"), ([], [], "empty"), ([[1.0]], [[1.0]], "1-D"),
    ([20.0, np.inf], [20.0, 21.0], "baseline PSNR values must be finite")])
def test_paired_psnr_difference_refuses_bad_arrays(baseline, defense, message):
    with pytest.raises(TfrobustError, match=message):
        paired_psnr_difference(baseline, defense)


# -- the rule's PSNR reading -------------------------------------------------------------------------------
def _d(difference, se):
    return {"baseline": 24.0, "defense": 24.0 + difference, "difference": difference, "se": se, "n": 100}


def _seed(paper, strong, flags_=()):
    return {"differences": {"gaussian": _d(-0.3, 0.05), "obsatk_paper": _d(*paper), "obsatk_strong": _d(*strong)},
            "defense_flags": list(flags_)}


@pytest.mark.parametrize("paper, strong, flags_, verdict, reason", [
    ((2.0, 0.2), (1.8, 0.2), (), REPRODUCED, "strongest ObsAtk difference +1.80 ± 0.20 dB (SE) vs the paper's +2.14 "
                                             "dB: at least half"),
    ((2.0, 0.2), (0.5, 0.1), (), MASKED, "the gain under obsatk_paper (+2.00 dB in the paper's direction) shrinks to "
                                         "+0.50 dB under obsatk_strong"),
    ((2.0, 0.2), (1.8, 0.2), ("more_steps_weaker",), MASKED, "sanity flag(s) on the defense: more_steps_weaker"),
    ((0.8, 0.2), (0.7, 0.2), (), NOT_REPRODUCED, "below half the paper's size"),   # gain kept, too small
    ((-1.0, 0.2), (-1.2, 0.2), (), NOT_REPRODUCED, "below half the paper's size"),  # the wrong way round
])
def test_psnr_verdict_outcomes(paper, strong, flags_, verdict, reason):
    decided = pair_verdict(2.14, [_seed(paper, strong, flags_)], PSNR)
    assert decided["verdict"] == verdict
    assert reason in " ".join(decided["reasons"])


def test_psnr_verdict_second_seed_and_missing_row():
    partial = pair_verdict(2.14, [_seed((0.3, 0.2), (0.1, 0.1))], PSNR)
    assert partial["verdict"] == PARTIAL and partial["provisional"] == NOT_REPRODUCED
    assert "strongest ObsAtk difference +0.10 dB is within 3 SE (0.10 dB)" in partial["reasons"][0]
    two = pair_verdict(2.14, [_seed((0.3, 0.2), (0.1, 0.1)), _seed((0.3, 0.2), (0.3, 0.1))], PSNR)
    assert two["verdict"] == NOT_REPRODUCED and two["pooled"]["obsatk_strong"]["difference"] == pytest.approx(0.2)
    with pytest.raises(TfrobustError, match="obsatk_strong"):
        pair_verdict(2.14, [{"differences": {"autoattack": _d(1, 0.1)}}], PSNR)


# -- the evaluation ----------------------------------------------------------------------------------------
def test_obsatk_evaluation_on_the_identity_denoiser():
    from tfrobust import models
    from tfrobust.reproduction.denoiser_evaluation import evaluate_denoiser_psnr

    identity = models.build("dncnn", (None, None, 1), None, depth=3, width=4)  # zero-initialised residual: f(y) = y
    rng = np.random.default_rng(0)
    images = [rng.uniform(0.2, 0.8, size=(8, 8, 1)).astype(np.float32) for _ in range(5)]
    images.append(rng.uniform(0.2, 0.8, size=(6, 10, 1)).astype(np.float32))  # another shape: its own batch
    result, arrays = evaluate_denoiser_psnr(identity, images, eps=5 / 255, level=25 / 255, paper_steps=2,
                                            strong_steps=4, strong_restarts=2, seed=0, batch_size=4)
    assert [r["attack"] for r in result["rows"]] == ["gaussian", "zero_mean", "obsatk_paper", "obsatk_strong_run0",
                                                     "obsatk_strong_run1", "obsatk_strong"]
    assert all(a.shape == (6,) for a in arrays.values()) and result["points"] == 6
    # f(y) = y: the restored image is the observation, so PSNR is the noise's; N(0, (25/255)²) ≈ 20.2 dB.
    assert np.mean(arrays["gaussian"]) == pytest.approx(20 * np.log10(255 / 25), abs=0.7)
    # ObsAtk aligns its zero-mean δ with the noise (the maximiser for f = id): worse than random noise.
    assert np.all(arrays["obsatk_paper"] < arrays["zero_mean"])
    strongest = np.minimum.reduce([arrays["obsatk_paper"], arrays["obsatk_strong_run0"], arrays["obsatk_strong_run1"]])
    np.testing.assert_array_equal(arrays["obsatk_strong"], strongest)
    assert result["flagged"] == []
    with pytest.raises(TfrobustError, match="must be positive and below the noise level"):
        evaluate_denoiser_psnr(identity, images, eps=25 / 255, level=25 / 255)


def test_sanity_flags_fire_on_constructed_rows():
    from tfrobust.reproduction.denoiser_evaluation import psnr_sanity_flags

    arrays = {"obsatk_paper": np.array([25.0, 25.0]), "zero_mean": np.array([24.0, 26.0]),
              "obsatk_strong_run0": np.array([25.2, 25.2])}
    flagged = {f["check"]: f["flagged"] for f in psnr_sanity_flags(arrays, 5, 20)}
    assert flagged == {"obsatk_weaker_than_random": True, "more_steps_weaker": True}
    arrays = {"obsatk_paper": np.array([25.0]), "zero_mean": np.array([27.0]), "obsatk_strong_run0": np.array([25.05])}
    assert not any(f["flagged"] for f in psnr_sanity_flags(arrays, 5, 20))


def test_load_denoiser_refuses_other_runs(tmp_path):
    from tfrobust.core.run_layout import RunLayout
    from tfrobust.reproduction.denoiser_evaluation import load_denoiser

    with pytest.raises(TfrobustError, match="not a finished denoiser training run"):
        load_denoiser(str(tmp_path))
    layout = RunLayout(str(tmp_path))
    os.makedirs(os.path.dirname(layout.last_weights), exist_ok=True)
    open(layout.last_weights, "wb").close()
    with open(layout.summary, "w", encoding="utf-8") as handle:
        json.dump({"task": "classify"}, handle)
    with pytest.raises(TfrobustError, match="not a denoiser run"):
        load_denoiser(str(tmp_path))


# -- result files ------------------------------------------------------------------------------------------
def _evaluation(offset, flagged=()):
    """A constructed ``(result, arrays)``; ``offset``: dB added to the ObsAtk rows, a number or per image."""
    base = np.linspace(22.0, 26.0, 10)
    arrays = {"gaussian": base + 5.0, "zero_mean": base + 6.0, "obsatk_paper": base + offset,
              "obsatk_strong_run0": base + offset - 0.1, "obsatk_strong": base + offset - 0.1}
    rows = [{"attack": k, "description": k, "psnr": float(np.mean(v)), "seconds": 1.0} for k, v in arrays.items()]
    return {"rows": rows, "sanity_flags": [], "flagged": list(flagged), "points": 10, "seconds": 3.0}, arrays


def test_psnr_result_files_and_summary_row(tmp_path):
    offsets = np.array([1.5, 2.5] * 5)  # HAT − NT per image under both ObsAtk rows: mean 2.0
    normal, hat = _evaluation(0.0), _evaluation(offsets)
    trainings = {0: {"hat": {"command": "python trainers/train_denoiser.py …", "train_seconds": 61.0,
                             "wall_seconds_per_invocation": [70.0], "val_psnr": 31.5, "val_adv_psnr": 27.0}}}
    report = claim_report(CLAIM, "cpu", {0: {"normal": normal, "hat": hat}}, trainings, complete=True,
                          commands=["python trainers/reproduce.py --claim=denoising_hat --scale=cpu"])
    pair = report["pairs"][0]
    assert report["metric"] == "psnr" and report["verdict"] == REPRODUCED
    strong = pair["differences"]["0"]["obsatk_strong"]
    assert strong["difference"] == pytest.approx(2.0)
    assert strong["se"] == pytest.approx(np.std(offsets, ddof=1) / np.sqrt(10))
    assert report["setting"]["psnr"]["strong_restarts"] == 3
    path = write_claim(report, str(tmp_path))
    text = open(path, encoding="utf-8").read()
    assert text == claim_markdown(json.loads((tmp_path / "denoising_hat.json").read_text()))  # JSON round trip
    assert "**Verdict: reproduced**" in text
    assert "| 0 | obsatk_paper | 24.00 | 26.00 | +2.00 ± 0.17 | 24.26 → 26.40 (+2.14) |" in text
    assert "| 0 | gaussian | 29.00 | 29.00 | +0.00 ± 0.00 | 29.16 → 28.88 (-0.28) |" in text
    assert "| hat | 0 | 29.00 | 26.00 | 25.90 | 30.00 | none | 31.50 dB (training attack 27.00) | 61 | 3 |" in text
    assert "python trainers/reproduce.py --claim=denoising_hat --scale=cpu" in text
    row = summary_row(report, "reproductions/denoising_hat.md")
    assert row.startswith("| denoising_hat | hat vs normal: +2.14 dB (ObsAtk-5/255")
    assert "| +2.00 ± 0.17 dB (strongest ObsAtk) (1 seed) | reproduced |" in row


def test_psnr_arrays_survive_the_run_folder(tmp_path):
    result, arrays = _evaluation(0.3)
    runs.save_evaluation(str(tmp_path), {"metric": "psnr"}, result, arrays)
    loaded = runs.load_evaluation(str(tmp_path), {"metric": "psnr"}, dtype=float)
    np.testing.assert_array_equal(loaded[1]["obsatk_paper"], arrays["obsatk_paper"])


def test_accuracy_results_render_as_committed():
    folder = os.path.join(REPOSITORY, "docs", "results", "reproductions")
    with open(os.path.join(folder, "tisode.json"), encoding="utf-8") as handle:
        report = json.load(handle)
    with open(os.path.join(folder, "tisode.md"), encoding="utf-8") as handle:
        assert claim_markdown(report) == handle.read()


# -- the recipes -------------------------------------------------------------------------------------------
def _denoiser_flags(argv):
    """trainers/train_denoiser.py's flag values for ``argv`` (its flags defined only for the call)."""
    from tfrobust.scripts import train_denoiser

    before = set(flags.FLAGS)
    try:
        train_denoiser.define_flags()
        flags.FLAGS(["train_denoiser.py", *argv])
        return {name: flags.FLAGS[name].value for name in set(flags.FLAGS) - before}
    finally:
        for name in set(flags.FLAGS) - before:
            delattr(flags.FLAGS, name)
        flags.FLAGS.unparse_flags()


@pytest.mark.parametrize("scale", claims.SCALES)
def test_denoising_hat_recipes_parse_as_train_denoiser_commands(monkeypatch, scale):
    from tfrobust import cli

    monkeypatch.chdir(REPOSITORY)  # the recipes' flagfiles are relative to the repository
    assert CLAIM.training_program == "trainers/train_denoiser.py" and CLAIM.metric == "psnr"
    parsed = {m.name: _denoiser_flags([*CLAIM.training_flags(m.name, scale), "--model_dir=/x", "--seed=4"])
              for m in CLAIM.models}
    for values in parsed.values():
        assert values["seed"] == 4 and values["gamma"] == 25 and values["color"] == "gray"
    options = cli.parse_options(parsed["hat"]["model_option"], "model_option")
    assert parsed["normal"]["alpha"] == 0 and parsed["hat"]["alpha"] == 1
    assert parsed["hat"]["eps"] == pytest.approx(255 * CLAIM.setting(scale).eps) and parsed["hat"]["attack_steps"] == 1
    if scale == "cpu":
        assert options == {"depth": 6, "width": 24} and parsed["hat"]["train_source"] == "dataset:fashion_mnist"
        assert parsed["hat"]["patch_size"] == 28 and CLAIM.setting(scale).dataset == "dataset:fashion_mnist"
    else:
        assert options == {"depth": 20, "width": 64} and parsed["hat"]["model"] == "dncnn_b"
        assert parsed["hat"]["patch_size"] == 50 and parsed["hat"]["num_patches"] == 128 * 3000


def test_psnr_claim_registration_errors():
    model = claims.ModelRecipe("a", "a", {"cpu": ()})
    other = claims.ModelRecipe("b", "b", {"cpu": ()})
    psnr = claims.PsnrSetting(level=25 / 255)
    db = claims.PaperNumbers(24.0, 26.0, "ObsAtk", "here", unit="dB")
    setting = claims.ScaleSetting("dataset:fashion_mnist", 5 / 255, 10, 10, psnr=psnr)
    claim = claims.Claim("x", "x", (model, other), (claims.Pair("a", "b", db),), {"cpu": setting}, metric="psnr")
    assert claim.headline.paper.difference == pytest.approx(2.0)  # dB, not a fraction
    with pytest.raises(TfrobustError, match="needs a PsnrSetting"):
        claims.Claim("x", "x", (model, other), (claims.Pair("a", "b", db),),
                     {"cpu": claims.ScaleSetting("d", 0.1, 10, 10)}, metric="psnr")
    with pytest.raises(TfrobustError, match="paper numbers are in %"):
        claims.Claim("x", "x", (model, other), (claims.Pair("a", "b", claims.PaperNumbers(1.0, 2.0, "A", "s")),),
                     {"cpu": setting}, metric="psnr")
    with pytest.raises(TfrobustError, match="strongest ObsAtk needs at least the paper's steps"):
        claims.PsnrSetting(level=25 / 255, paper_steps=5, strong_steps=3)
    with pytest.raises(TfrobustError, match="the cpu setting's ObsAtk budget 25/255 must be positive and below the "
                                            "noise level 25/255"):
        claims.Claim("x", "x", (model, other), (claims.Pair("a", "b", db),),
                     {"cpu": claims.ScaleSetting("dataset:fashion_mnist", 25 / 255, 10, 10, psnr=psnr)}, metric="psnr")
    with pytest.raises(TfrobustError, match="unknown metric"):
        claims.Claim("x", "x", (model, other), (claims.Pair("a", "b", db),), {"cpu": setting}, metric="ssim")


def test_every_model_restores_the_same_noisy_images():
    # The pairing of a PSNR claim: image i's observation depends only on (seed, i) (so --points=N gives a prefix),
    # not on the model or the call; another seed draws other noise.
    from tfrobust.reproduction.denoiser_evaluation import _observations

    rng = np.random.default_rng(2)
    images = [rng.uniform(0.2, 0.8, size=(8, 8, 1)).astype(np.float32) for _ in range(3)]
    for kind, eps in (("gaussian", 0.0), ("obsatk", 5 / 255)):
        first = _observations(images, kind, 25 / 255, eps, seed=0)
        np.testing.assert_array_equal(np.stack(first), np.stack(_observations(images, kind, 25 / 255, eps, seed=0)))
        np.testing.assert_array_equal(first[1], _observations(images[:2], kind, 25 / 255, eps, seed=0)[1])
        assert not np.array_equal(first[0], _observations(images, kind, 25 / 255, eps, seed=1)[0])
        assert not np.array_equal(first[0] - images[0], first[1] - images[1])  # a draw per image
