"""trainers/reproduce.py on a tiny PSNR claim (two denoisers, trained by trainers/train_denoiser.py), end to end
and again without retraining or re-evaluating."""

import json

import pytest

from tfrobust.reproduction import claims

TINY_DENOISER = ("--model=dncnn", "--model_option=depth=3", "--model_option=width=4", "--color=gray",
                 "--train_source=dataset:fashion_mnist", "--test_source=dataset:fashion_mnist", "--patch_size=28",
                 "--num_patches=64", "--test_patches=16", "--gamma=25", "--epochs=1", "--batch_size=32",
                 "--verbose=0")


@pytest.fixture
def tiny_psnr_claim(monkeypatch):
    claim = claims.Claim(
        name="tiny_psnr_claim", title="two tiny denoisers (test only)", metric="psnr",
        models=(claims.ModelRecipe("normal", "NT", {"cpu": (*TINY_DENOISER, "--alpha=0")}),
                claims.ModelRecipe("hat", "HAT", {"cpu": (*TINY_DENOISER, "--alpha=1", "--eps=5")})),
        pairs=(claims.Pair("normal", "hat", claims.PaperNumbers(24.0, 26.0, "ObsAtk-5/255", "made up", unit="dB")),),
        scales={"cpu": claims.ScaleSetting("dataset:fashion_mnist", 5 / 255, 6, 6, "test setting",
                                           psnr=claims.PsnrSetting(level=25 / 255, paper_steps=2, strong_steps=3,
                                                                   strong_restarts=2))})
    monkeypatch.setitem(claims._CLAIMS, claim.name, claim)
    return claim


@pytest.mark.slow  # two denoiser trainings in subprocesses and two ObsAtk evaluations: ~30-60 s on 2 shared cores
def test_a_tiny_psnr_claim_end_to_end_and_again(in_process, tiny_psnr_claim, tmp_path):
    args = ["--claim=tiny_psnr_claim", f"--out_dir={tmp_path / 'out'}", f"--work_dir={tmp_path / 'work'}",
            "--summary=", "--seeds=0"]
    code, out, err = in_process("reproduce", *args)
    assert code == 0, err
    assert "training normal seed 0 (new)" in out and "training hat seed 0 (new)" in out
    report = json.loads((tmp_path / "out" / "tiny_psnr_claim.json").read_text())
    assert report["metric"] == "psnr" and report["status"] == "complete" and report["setting"]["points"] == 6
    differences = report["pairs"][0]["differences"]["0"]
    assert set(differences) == {"gaussian", "obsatk_paper", "obsatk_strong"}
    assert all(d["n"] == 6 for d in differences.values())
    for name in ("normal", "hat"):
        entry = report["models"][name]["0"]
        rows = {r["attack"]: r["psnr"] for r in entry["evaluation"]["rows"]}
        assert rows["obsatk_strong"] <= rows["obsatk_paper"] < rows["zero_mean"]
        assert entry["training"]["command"].startswith("python trainers/train_denoiser.py ")
        assert entry["training"]["val_psnr"] > 0
    # A complete claim's verdict is its headline pair's, and its .md file says the same.
    assert report["verdict"] == report["pairs"][0]["verdict"]
    assert report["verdict"] in ("reproduced", "not reproduced", "masked", "partial")
    assert f"**Verdict: {report['verdict']}**" in (tmp_path / "out" / "tiny_psnr_claim.md").read_text()
    markdown = (tmp_path / "out" / "tiny_psnr_claim.md").read_text()
    assert "Paper: under ObsAtk-5/255: normal 24.00 dB → hat 26.00 dB (Δ = +2.00 dB)" in markdown

    code, out, err = in_process("reproduce", *args)
    assert code == 0, err
    assert "hat seed 0: trained already" in out and "evaluating" not in out
    assert json.loads((tmp_path / "out" / "tiny_psnr_claim.json").read_text())["pairs"] == report["pairs"]
