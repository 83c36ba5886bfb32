"""Denoiser evaluation: PSNR/SSIM wiring (known answers on the identity denoiser), the report table,
figures, and exported denoisers (SavedModel images → denoised, TFLite fp32/int8) compared white-box,
by transfer and by the query attack."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tests.denoising_fixtures import trained_denoiser  # noqa: F401  (fixture)
from tfrobust import export
from tfrobust.errors import TfrobustError
from tfrobust.evaluation.denoising import (center_crop, compare_denoisers, evaluate_denoiser, markdown_table,
                                          picture_grid, plot_psnr_vs_eps, psnr_vs_eps, quality)


def identity(images):
    return tf.identity(images)


MID_GRAY = [np.full((64, 64, 1), 0.5, np.float32)]


def test_quality_is_tf_image_psnr_and_ssim():
    clean = np.full((1, 16, 16, 1), 0.5, np.float32)
    psnr, ssim = quality(clean + 0.1, clean)
    assert psnr == pytest.approx(20.0, abs=1e-4)  # MSE 0.01 on a peak of 1
    assert quality(clean, clean)[1] == pytest.approx(1.0)
    assert ssim < 1.0


def test_identity_denoiser_known_answers():
    # With f = identity the restored error is the noise itself: N and U give 20·log10(1/γ̂); ObsAtk on
    # N(0, (γ̂ − e)²) aligns δ with the noise (total std ≈ γ̂, the same PSNR); random zero-mean noise of
    # the same norm adds energy orthogonally: −10·log10((γ̂ − e)² + e²).
    report = evaluate_denoiser(identity, MID_GRAY, levels=(10 / 255,), attack_eps=(5 / 255,), steps=5)
    psnr = {row["noise"]: row["psnr"] for row in report["rows"]}
    level, e = 10 / 255, 5 / 255
    assert psnr["gaussian"] == pytest.approx(20 * np.log10(1 / level), abs=0.15)
    assert psnr["uniform"] == pytest.approx(20 * np.log10(1 / level), abs=0.15)
    assert psnr["obsatk"] == pytest.approx(20 * np.log10(1 / level), abs=0.15)
    assert psnr["zero_mean"] == pytest.approx(-10 * np.log10((level - e) ** 2 + e ** 2), abs=0.15)
    assert [row["mode"] for row in report["rows"]] == ["random", "random", "white-box", "random"]
    table = markdown_table({"num_images": 1, "models": [report]})
    assert "| γ̂ | N | U | Atk-5/255 | rand0-5/255 |" in table
    assert f"| 10/255 | {psnr['gaussian']:.2f} / " in table
    assert [image.shape for image in center_crop([MID_GRAY[0], MID_GRAY[0][:20]], 24)] == [(24, 24, 1), (20, 24, 1)]
    with pytest.raises(TfrobustError, match="exceeds the noise level"):
        evaluate_denoiser(identity, MID_GRAY, levels=(3 / 255,), attack_eps=(5 / 255,))


@pytest.mark.slow  # ~15 s: two white-box evaluations and a curve (the reproduction draws the same figures)
def test_figures_and_crop(tmp_path, trained_denoiser):  # noqa: F811
    model, _, clean = trained_denoiser
    images = center_crop(list(clean[:2]), 24)
    assert [image.shape for image in images] == [(24, 24, 1)] * 2
    report = {"num_images": 2, "models": [evaluate_denoiser(model, images, levels=(15 / 255,), attack_eps=(5 / 255,),
                                                            name="dncnn")]}
    assert os.path.getsize(picture_grid(report, str(tmp_path / "grid.png"), level=15 / 255, eps=5 / 255)) > 1000
    curve = psnr_vs_eps(model, images, level=15 / 255, eps_values=(2 / 255, 6 / 255))
    assert all(a < r for a, r in zip(curve["obsatk"], curve["zero_mean"]))
    assert curve["obsatk"][1] < curve["obsatk"][0]
    assert os.path.getsize(plot_psnr_vs_eps({"dncnn": curve}, str(tmp_path / "curve.png"), 15 / 255)) > 1000


def test_exported_denoiser_serves_any_size_and_is_compared(tmp_path, trained_denoiser):  # noqa: F811
    model, noisy, clean = trained_denoiser
    paths = export.export_all(model, str(tmp_path), "dn", ("saved_model", "tflite_fp32", "tflite_int8"),
                              representative_images=noisy)
    image = noisy[:1, :20, :12]
    expected = model(image, training=False).numpy()
    artifacts = {fmt: export.load(path) for fmt, path in paths.items()}
    for fmt, artifact in artifacts.items():
        assert artifact.task == "denoise" and artifact.input_shape == (None, None, 1) and artifact.num_classes is None
        tolerance = 0.03 if fmt == "tflite_int8" else 1e-4
        assert np.abs(artifact.predict(image) - expected).mean() < tolerance, fmt
    signature = tf.saved_model.load(paths["saved_model"]).signatures["serving_default"]
    assert list(signature.structured_outputs) == ["denoised"]
    report = compare_denoisers({"dn:saved_model": artifacts["saved_model"], "dn:tflite_int8": artifacts["tflite_int8"]},
                               [clean[0, :16, :16]], levels=(15 / 255,), attack_eps=(5 / 255,), query_steps=1,
                               query_samples=2)
    saved, int8 = ({(row["noise"], row["mode"]): row["psnr"] for row in entry["rows"]} for entry in report["models"])
    assert ("obsatk", "white-box") in saved
    assert {("obsatk", "transfer"), ("obsatk", "query")} <= set(int8)
    # The same attack crafted on the SavedModel transfers to its own int8 copy.
    assert int8[("obsatk", "transfer")] < int8[("gaussian", "random")]
