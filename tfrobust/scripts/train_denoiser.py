"""Train a DnCNN γ-denoiser — normal training (α = 0) or HAT — with Keras ``fit``, and export it.

The denoising sibling of ``trainers/train.py`` (same run folder, resume, callbacks and export layout;
``tfrobust.training.denoising.train_denoiser`` does the work). Examples (the CPU-scale reproduction of
thesis ch. 2, docs/results/denoising.md):

  python trainers/train_denoiser.py --flagfile=trainers/configs/denoise_normal.flags \\
      --model_dir=runs/dn_normal --export_dir=runs/export
  python trainers/train_denoiser.py --flagfile=trainers/configs/denoise_hat.flags \\
      --model_dir=runs/dn_hat --export_dir=runs/export

Data: ``--train_source=skimage`` (scikit-image's bundled photographs, offline), ``dataset:fashion_mnist``
(a registry dataset's images as clean signals) or an image folder (BSD400/Train400 …); noise σ ~ U(0, γ)
per patch (``--gamma`` in 1/255 units).

(or ``tfrobust-train-denoiser`` with the same flags, the console script installed with the package)
"""


from absl import flags

from tfrobust import cli
from tfrobust.attacks.obsatk import EPS_UNITS
from tfrobust.data.image_folder import COLORS
from tfrobust.scripts import run_program
from tfrobust.scripts.export_step import export_run, print_exports
from tfrobust.training import OPTIMIZERS, SCHEDULES
from tfrobust.training.denoising import train_denoiser

FLAGS = flags.FLAGS


def define_flags():
    """Defines this program's flags (once, when it runs)."""
    flags.DEFINE_string("model", "dncnn", "Denoiser name (dncnn, dncnn_b, dncnn_c).")
    flags.DEFINE_multi_string("model_option", [], "Builder option key=value, repeatable (e.g. --model_option=depth=8).")
    flags.DEFINE_enum("color", "gray", COLORS, "Gray (DnCNN-B) or RGB (DnCNN-C) images.")
    flags.DEFINE_string("train_source", "skimage", "'skimage' (embedded training split), 'dataset:<name>' (a "
                        "registry dataset's train split, e.g. dataset:fashion_mnist) or an image folder.")
    flags.DEFINE_string("test_source", "skimage", "'skimage' (embedded held-out split), 'dataset:<name>' (its test "
                        "split) or an image folder.")
    flags.DEFINE_integer("patch_size", 50, "Training patch side (50 in the thesis).")
    flags.DEFINE_integer("num_patches", 3000, "Training patches (the thesis: 128×3000).")
    flags.DEFINE_integer("test_patches", 256, "Validation patches from the test source.")
    flags.DEFINE_float("gamma", 25.0, "Largest training noise level γ, in 1/255 units (σ ~ U(0, γ) per patch).")
    flags.DEFINE_float("alpha", 0.0, "HAT α (0: normal training).")
    flags.DEFINE_float("eps", 5.0, "ObsAtk budget of HAT in 1/255 units (per pixel: ε = eps/255·√m).")
    flags.DEFINE_enum("eps_unit", "per_pixel", EPS_UNITS, "Whether --eps is per pixel or an absolute L2 norm.")
    flags.DEFINE_integer("attack_steps", 1, "ObsAtk steps during HAT (the thesis: 1).")
    flags.DEFINE_float("step_size", None, "ObsAtk step as a fraction of the budget (default 2.5/steps).")
    flags.DEFINE_integer("epochs", 5, "Training epochs.")
    flags.DEFINE_integer("batch_size", 64, "Batch size.")
    flags.DEFINE_enum("optimizer", "adam", OPTIMIZERS, "Optimizer.")
    flags.DEFINE_float("learning_rate", 1e-3, "Initial learning rate.")
    flags.DEFINE_float("weight_decay", 0.0, "Decoupled weight decay.")
    flags.DEFINE_enum("schedule", "cosine", SCHEDULES, "Learning-rate schedule.")
    flags.DEFINE_integer("seed", 0, "Seed for weights, patches and noise.")
    flags.DEFINE_string("model_dir", None, "Run folder: checkpoints, backup for resume, logs, summary.")
    flags.DEFINE_string("export_dir", None, "If set, export here when training is done.")
    flags.DEFINE_string("export_name", None, "Exported model name (default: the model_dir's basename).")
    flags.DEFINE_list("export_formats", ["saved_model", "keras", "tflite_fp32", "tflite_int8"],
                      "Formats to export (SavedModel is always written).")
    flags.DEFINE_enum("verbose", "1", ["0", "1", "2"], "Keras fit verbosity (2: one line per epoch, for log files).")
    flags.mark_flag_as_required("model_dir")



def main(argv):
    del argv
    run = train_denoiser(
        model_dir=FLAGS.model_dir, model=FLAGS.model,
        model_options=cli.parse_options(FLAGS.model_option, "model_option"),
        color=FLAGS.color, train_source=FLAGS.train_source, test_source=FLAGS.test_source,
        patch_size=FLAGS.patch_size, num_patches=FLAGS.num_patches, test_patches=FLAGS.test_patches,
        gamma=FLAGS.gamma / 255, alpha=FLAGS.alpha, eps=FLAGS.eps / 255 if FLAGS.eps_unit == "per_pixel" else FLAGS.eps,
        eps_unit=FLAGS.eps_unit, attack_steps=FLAGS.attack_steps, step_size=FLAGS.step_size, epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size, optimizer=FLAGS.optimizer, learning_rate=FLAGS.learning_rate,
        weight_decay=FLAGS.weight_decay, schedule=FLAGS.schedule, seed=FLAGS.seed, verbose=int(FLAGS.verbose))
    summary = export_run(run)
    adversarial = f", ObsAtk (training attack) {summary['val_adv_psnr']:.2f} dB" if "val_adv_psnr" in summary else ""
    print(f"validation PSNR {summary['val_psnr']:.2f} dB{adversarial} after {summary['epochs']} epochs "
          f"({summary['train_seconds']:.0f} s); summary: {summary['summary_path']}")
    print_exports(summary)


def run():
    """The ``tfrobust-train-denoiser`` console script."""
    run_program(define_flags, main, __doc__)
