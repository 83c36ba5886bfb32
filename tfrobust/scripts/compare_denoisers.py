"""Evaluate exported denoisers: PSNR/SSIM under Gaussian, uniform and ObsAtk noise (thesis Table 2.1),
a picture grid (Fig. 2.2/2.3) and a PSNR-vs-ε curve.

  python export/compare_denoisers.py \\
      --artifacts=runs/export/dncnn_normal,runs/export/dncnn_hat,runs/export/dncnn_hat_int8.tflite \\
      --source=skimage --crop=256 --out_dir=runs/denoise_compare

The denoising sibling of ``export/compare.py`` (whose suites, accuracies and sanity checks are about
classifiers): SavedModel and .keras denoisers are attacked white-box with ObsAtk; TFLite denoisers by
ObsAtk transferred from a differentiable surrogate (``--transfer_from``, default the same model's
SavedModel) and by the query-only ObsAtk-SPSA on themselves. Writes ``denoising.md``,
``denoising.json``, ``grid.png`` and ``psnr_vs_eps.png`` into ``--out_dir`` and prints the table.
Noise levels and budgets are in 1/255 units.

(or ``tfrobust-compare-denoisers`` with the same flags, the console script installed with the package)
"""

import os

from absl import flags

from tfrobust import export
from tfrobust.data.image_folder import COLORS, load_images
from tfrobust.errors import TfrobustError
from tfrobust.evaluation.compare import artifact_label
from tfrobust.evaluation.denoising import (center_crop, compare_denoisers, markdown_table, picture_grid,
                                          plot_psnr_vs_eps, psnr_vs_eps, write_denoising_report)
from tfrobust.scripts import run_program

FLAGS = flags.FLAGS


def define_flags():
    """Defines this program's flags (once, when it runs)."""
    flags.DEFINE_list("artifacts", None, "Exported denoisers: SavedModel dirs (or TF-Serving bases), "
                      ".keras or .tflite.")
    flags.DEFINE_string("source", "skimage", "'skimage' (the embedded held-out test split) or a test image folder.")
    flags.DEFINE_enum("color", "gray", COLORS, "Read the images as gray or RGB (must match the denoisers).")
    flags.DEFINE_integer("crop", None, "Evaluate the central crop×crop window of each image (CPU budget).")
    flags.DEFINE_integer("max_images", None, "Evaluate the first N images only.")
    flags.DEFINE_list("levels", ["15", "25"], "Noise levels γ̂ (×1/255).")
    flags.DEFINE_list("eps", ["5", "7"], "ObsAtk budgets per pixel e (×1/255; ε = e·√m).")
    flags.DEFINE_integer("steps", 5, "ObsAtk iterations (the thesis: 5).")
    flags.DEFINE_integer("query_steps", 10, "ObsAtk-SPSA steps on gradient-free denoisers.")
    flags.DEFINE_integer("query_samples", 16, "ObsAtk-SPSA directions per step.")
    flags.DEFINE_list("curve_eps", ["1", "3", "5", "7", "9"], "Budgets of the PSNR-vs-ε curve (×1/255); empty: none.")
    flags.DEFINE_string("transfer_from", None, "Label (model:format) of the surrogate for TFLite denoisers.")
    flags.DEFINE_integer("seed", 0, "Noise and attack seed.")
    flags.DEFINE_string("out_dir", "runs/denoise_compare", "Where the report and figures go.")
    flags.mark_flag_as_required("artifacts")



def _units(values, name):
    try:
        numbers = [float(v) / 255 for v in values]
    except ValueError:
        raise TfrobustError(f"--{name} must be comma-separated numbers, got {','.join(values)}") from None
    if any(v <= 0 for v in numbers):
        raise TfrobustError(f"--{name} must be > 0, got {','.join(values)}")
    return numbers


def main(argv):
    del argv
    levels, budgets = _units(FLAGS.levels, "levels"), _units(FLAGS.eps, "eps")
    curve = _units(FLAGS.curve_eps, "curve_eps")
    artifacts = {}
    for path in FLAGS.artifacts:
        artifact = export.load(path)
        if artifact.task != "denoise":
            raise TfrobustError(f"{path} is a classifier (outputs logits); use export/compare.py for it")
        label = artifact_label(artifact.path, artifact.format)
        if label in artifacts:
            raise TfrobustError(f"two artifacts share the label {label}")
        artifacts[label] = artifact
    images, _ = load_images(FLAGS.source, "test", FLAGS.color)
    images = center_crop(images[:FLAGS.max_images], FLAGS.crop)
    report = compare_denoisers(artifacts, images, transfer_from=FLAGS.transfer_from, levels=levels,
                               attack_eps=budgets, steps=FLAGS.steps, query_steps=FLAGS.query_steps,
                               query_samples=FLAGS.query_samples, seed=FLAGS.seed)
    path = write_denoising_report(report, FLAGS.out_dir)
    print(markdown_table(report))
    print(f"report: {path}")
    print(f"grid: {picture_grid(report, os.path.join(FLAGS.out_dir, 'grid.png'), level=max(levels), eps=max(budgets))}")
    if curve:
        curves = {label: psnr_vs_eps(artifact, images, level=max(levels), eps_values=curve, steps=FLAGS.steps,
                                     seed=FLAGS.seed)
                  for label, artifact in artifacts.items() if artifact.differentiable}
        print(f"curve: {plot_psnr_vs_eps(curves, os.path.join(FLAGS.out_dir, 'psnr_vs_eps.png'), max(levels))}")
        for label, values in curves.items():
            print(label, "ObsAtk", [round(v, 2) for v in values["obsatk"]], "random zero-mean",
                  [round(v, 2) for v in values["zero_mean"]])


def run():
    """The ``tfrobust-compare-denoisers`` console script."""
    run_program(define_flags, main, __doc__)
