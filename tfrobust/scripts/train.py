"""Train an image classifier with Keras ``fit`` — standard or robust training — and export it.

Example (Fashion-MNIST, small CNN, 2 epochs, then SavedModel + TFLite):

  python trainers/train.py --dataset=fashion_mnist --model=small_cnn --epochs=2 \
      --model_dir=runs/cnn --export_dir=runs/export

(or ``tfrobust-train`` with the same flags, the console script installed with the package)

Adversarial training picks a ``--method`` and its parameters (only the flags a method takes are
accepted; the others must stay unset):

  python trainers/train.py --method=pgd_at --eps=0.1 --attack_steps=10 --model_dir=runs/pgd
  python trainers/train.py --method=trades --eps=0.1 --beta=6 --model_dir=runs/trades
  python trainers/train.py --flagfile=trainers/configs/fmnist_fgsm_rs.flags --model_dir=runs/fast

Distributed: ``--distribute=mirrored`` uses every local GPU; ``--distribute=multi_worker`` runs the same
command on every worker with its ``TF_CONFIG`` (see ``tfrobust.training.distribute``); ``--batch_size``
is the global batch.

Re-running the same command after an interruption resumes from the last completed epoch
(BackupAndRestore in ``<model_dir>/backup``). ``--flagfile=trainers/configs/X.flags`` replays a
recorded experiment.

Model selection never looks at the test set: ``--validation_size=5000`` holds 5000 training examples
out, validates on them with a fixed PGD (``--validation_steps`` …) every ``--validation_freq`` epochs,
keeps the best-``val_adv_accuracy`` weights beside the last and exports ``--export_weights=best|last``;
``summary.json`` records the selected epoch and both validation metrics.

  python trainers/train.py --method=pgd_at --eps=0.1 --weight_decay_mode=coupled --validation_size=5000 \
      --export_weights=best --ema=0.999 --model_dir=runs/pgd_best
"""


from absl import flags

from tfrobust import cli, data, models
from tfrobust.errors import TfrobustError
from tfrobust.scripts import run_program
from tfrobust.scripts.export_step import export_run, print_exports
from tfrobust.training import METHODS, OPTIMIZERS, PRECISIONS, SCHEDULES
from tfrobust.layers.cifs import MASK_PATHS
from tfrobust.training.adversarial import ATTACK_BN_MODES
from tfrobust.training.config import TrainingConfig
from tfrobust.training.distribute import STRATEGIES
from tfrobust.training.methods.base import LABEL_MODES, RANDOM_STARTS
from tfrobust.training.recipe import WEIGHT_DECAY_MODES
from tfrobust.training.recipe_options import RecipeOptions
from tfrobust.training.selection import EXPORT_WEIGHTS
from tfrobust.training.standard import train

FLAGS = flags.FLAGS


def define_flags():
    """Defines this program's flags (once, when it runs)."""
    flags.DEFINE_string("dataset", "fashion_mnist", f"Dataset: {', '.join(data.names())}.")
    flags.DEFINE_string("data_dir", None, "Folder with the dataset's files in its own on-disk format.")
    flags.DEFINE_integer("train_size", None, "Use the first N training images.", lower_bound=1)
    flags.DEFINE_integer("test_size", None, "Use the first N test images.", lower_bound=1)
    flags.DEFINE_string("model", "small_cnn", f"Model: {', '.join(models.names())}.")
    flags.DEFINE_multi_string("model_option", [], "Builder option key=value, repeatable "
                              "(e.g. --model_option=strides=1-1-2-2).")
    flags.DEFINE_enum("method", "standard", METHODS, "Training method (see tfrobust.training.methods).")
    flags.DEFINE_float("eps", None, "Attack radius of an adversarial method (image units: 0.1, 8/255 …).")
    flags.DEFINE_enum("norm", None, ["linf", "l2"], "Threat-model norm of an adversarial method.")
    flags.DEFINE_integer("attack_steps", None, "Inner-maximisation steps (PGD-k, TRADES, MART, FAT, ALP, AT-id).")
    flags.DEFINE_float("step_size", None, "Inner-maximisation step size (default: the method's rule).")
    flags.DEFINE_enum("random_start", None, RANDOM_STARTS, "Random start of the inner maximisation.")
    flags.DEFINE_enum("label_mode", None, LABEL_MODES, "Craft with true or predicted labels.")
    flags.DEFINE_float("beta", None, "TRADES β / MART λ: weight of the KL term.")
    flags.DEFINE_integer("replays", None, "Free-AT: replays (updates) per minibatch.")
    flags.DEFINE_list("sigma", None, "Gaussian noise: standard deviation(s), comma-separated.")
    flags.DEFINE_float("noise_probability", None, "Gaussian noise: probability an example is noised.")
    flags.DEFINE_float("lambda", None, "ALP pairing weight / AT-id denoising weight λ.")
    flags.DEFINE_float("gamma", None, "AWP: relative weight-perturbation size γ.")
    flags.DEFINE_integer("tau", None, "FAT: extra PGD steps after misclassification τ.")
    flags.DEFINE_string("awp_base", None, "AWP: the base method (pgd_at, trades, …).")
    flags.DEFINE_string("feature_layer", None, "AT-id: the layer whose features are denoised.")
    flags.DEFINE_string("attack_loss", None, "Crafting objective: ce, margin, or cifs_beta (CIFS models: ℓβ, "
                        "β = 2, over the final and probe logits, as the CIFS reference crafts).")
    flags.DEFINE_float("omega", None, "FAT: standard deviation of the per-step noise (released: 0.001).")
    flags.DEFINE_integer("awp_warmup", None, "AWP: epochs trained with the base method before the weight "
                         "perturbation starts (released: 0 for PGD-AT, 10 for TRADES).")
    flags.DEFINE_boolean("carry_delta", None, "Free-AT: carry δ across minibatches (the paper); "
                         "--nocarry_delta resets it per minibatch (ConvNorm's trainer).")
    flags.DEFINE_integer("epochs", 10, "Training epochs.", lower_bound=1)
    flags.DEFINE_integer("batch_size", 128, "Global batch size.", lower_bound=1)
    flags.DEFINE_enum("optimizer", "sgd", OPTIMIZERS, "Optimizer.")
    flags.DEFINE_float("learning_rate", 0.05, "Initial learning rate.", lower_bound=0.0)
    flags.DEFINE_float("momentum", 0.9, "SGD momentum.", lower_bound=0.0, upper_bound=0.999)
    flags.DEFINE_float("weight_decay", 5e-4, "Weight decay λ (see --weight_decay_mode).", lower_bound=0.0)
    flags.DEFINE_enum("schedule", "cosine", SCHEDULES, "Learning-rate schedule.")
    flags.DEFINE_list("lr_boundaries", [], "Epochs where 'piecewise' multiplies the rate by --lr_factor.")
    flags.DEFINE_float("lr_factor", 0.1, "Piecewise decay factor.", lower_bound=0.0)
    flags.DEFINE_enum("augment", "none", ["none", "crop", "flip_crop"], "Training augmentation.")
    flags.DEFINE_enum("mixed_precision", "none", list(PRECISIONS), "Compute precision policy.")
    flags.DEFINE_enum("distribute", "none", STRATEGIES, "tf.distribute strategy: none, mirrored (all local "
                      "GPUs or logical CPUs), multi_worker (cluster from TF_CONFIG, same command on every "
                      "worker) or tpu. --batch_size is the global batch.")
    flags.DEFINE_string("tpu", None, "--distribute=tpu: TPU name or grpc:// address (default: the local TPU).")
    flags.DEFINE_integer("seed", 0, "Seed for weights, shuffling and augmentation.", lower_bound=0)
    flags.DEFINE_string("model_dir", None, "Run folder: checkpoints, backup for resume, logs, summary.")
    flags.DEFINE_string("export_dir", None, "If set, export here when training is done.")
    flags.DEFINE_string("export_name", None, "Exported model name (default: the model_dir's basename).")
    flags.DEFINE_list("export_formats", ["saved_model", "keras", "tflite_fp32", "tflite_int8"],
                      "Formats to export (SavedModel is always written).")
    define_recipe_flags()
    flags.mark_flag_as_required("model_dir")
    flags.register_validator("learning_rate", lambda value: value > 0, "--learning_rate must be > 0")
    flags.register_validator("lr_boundaries", lambda value: all(v.strip().isdigit() for v in value),
                             "--lr_boundaries must be a comma-separated list of epoch numbers")


def define_recipe_flags():
    """The recipe and model-selection flags (``tfrobust.training.recipe_options.RecipeOptions``)."""
    flags.DEFINE_enum("weight_decay_mode", "decoupled", WEIGHT_DECAY_MODES, "decoupled (Keras) or coupled "
                      "(PyTorch's weight_decay: λ·w added to the gradient before momentum; the references' "
                      "numbers).")
    flags.DEFINE_float("ema", None, "Exponential moving average of the weights with this momentum (e.g. "
                       "0.999), swapped in for validation, checkpoints, the final evaluation and the export.")
    flags.DEFINE_enum("attack_bn_mode", "inference", ATTACK_BN_MODES, "Mode of the crafting passes: inference "
                      "(TRADES' model.eval()) or train (Madry's and Wong's code: BatchNorm batch statistics).")
    flags.DEFINE_enum("cifs_train_mask_path", "detached", MASK_PATHS, "CIFS models: mask path of the training "
                      "steps (the reference's detached relevance); evaluation and export use the full path.")
    flags.DEFINE_integer("steady_state_warmup", 0, "Epochs without the ODE steady-state loss (TisODE: 5).",
                         lower_bound=0)
    flags.DEFINE_integer("validation_size", None, "Hold this many training examples out for validation and "
                         "model selection (seeded by --seed); unset: progress display on the test set only.",
                         lower_bound=1)
    flags.DEFINE_integer("validation_freq", 1, "Validate every N epochs.", lower_bound=1)
    flags.DEFINE_float("validation_eps", None, "Validation PGD radius (default: the method's eps).")
    flags.DEFINE_integer("validation_steps", 10, "Validation PGD steps.", lower_bound=1)
    flags.DEFINE_float("validation_step_size", None, "Validation PGD step (default 2.5·eps/steps).")
    flags.DEFINE_enum("export_weights", "last", EXPORT_WEIGHTS, "Export the last epoch's weights or the best "
                      "val_adv_accuracy epoch's (needs --validation_size).")
    flags.DEFINE_integer("early_stopping_patience", None, "Stop after N validation epochs without a better "
                         "val_adv_accuracy (needs --validation_size).", lower_bound=1)


# flag name -> method parameter name
METHOD_FLAGS = {"eps": "eps", "norm": "norm", "attack_steps": "steps", "step_size": "step_size",
                "random_start": "random_start", "label_mode": "label_mode", "beta": "beta",
                "replays": "replays", "sigma": "sigma", "noise_probability": "probability", "lambda": "lam",
                "gamma": "gamma", "tau": "tau", "awp_base": "base", "feature_layer": "feature_layer",
                "attack_loss": "attack_loss", "omega": "omega", "awp_warmup": "warmup",
                "carry_delta": "carry_delta"}


def method_params():
    """The method flags that were set, as the method's keyword arguments."""
    params = {}
    for flag, parameter in METHOD_FLAGS.items():
        value = FLAGS[flag].value
        if value is None or (flag == "attack_loss" and value == "cifs_beta"):  # cifs_beta: see recipe()
            continue
        if flag == "sigma":
            try:
                value = [float(v) for v in value]
            except ValueError:
                raise TfrobustError(f"--sigma must be comma-separated numbers, got {','.join(value)}") from None
        params[parameter] = value
    return params


def recipe():
    """The recipe and model-selection flags as ``RecipeOptions``."""
    return RecipeOptions(
        weight_decay_mode=FLAGS.weight_decay_mode, ema=FLAGS.ema, attack_bn_mode=FLAGS.attack_bn_mode,
        cifs_train_mask_path=FLAGS.cifs_train_mask_path, cifs_attack_beta=FLAGS.attack_loss == "cifs_beta",
        steady_state_warmup=FLAGS.steady_state_warmup, validation_size=FLAGS.validation_size,
        validation_freq=FLAGS.validation_freq, validation_eps=FLAGS.validation_eps,
        validation_steps=FLAGS.validation_steps, validation_step_size=FLAGS.validation_step_size,
        export_weights=FLAGS.export_weights, early_stopping_patience=FLAGS.early_stopping_patience)


def training_config():
    """The ``TrainingConfig`` the flags describe."""
    return TrainingConfig(
        dataset=FLAGS.dataset, data_dir=FLAGS.data_dir, train_size=FLAGS.train_size,
        test_size=FLAGS.test_size, model=FLAGS.model, method=FLAGS.method, method_params=method_params(),
        model_options=cli.parse_options(FLAGS.model_option, "model_option"), epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size, optimizer=FLAGS.optimizer, learning_rate=FLAGS.learning_rate,
        momentum=FLAGS.momentum, weight_decay=FLAGS.weight_decay, schedule=FLAGS.schedule,
        lr_boundaries=tuple(int(b) for b in FLAGS.lr_boundaries), lr_factor=FLAGS.lr_factor,
        augment=None if FLAGS.augment == "none" else FLAGS.augment,
        mixed_precision=FLAGS.mixed_precision, distribute=FLAGS.distribute, tpu=FLAGS.tpu,
        seed=FLAGS.seed, model_dir=FLAGS.model_dir, recipe=recipe())


def main(argv):
    del argv
    trained = train(training_config())
    summary = trained.summary
    if trained.chief:  # in multi-worker training only the chief exports
        description = {"class_names": data.info(summary["dataset"]).class_names, "dataset": summary["dataset"],
                       "method": summary["method"]}  # the export's assets.extra/tfrobust.json
        summary = export_run(trained, description)
    robust = ""
    for key in ("test_adv_accuracy", "test_noisy_accuracy"):
        if key in summary:
            kind = "noisy" if key == "test_noisy_accuracy" else (
                "adversarial (validation attack)" if "test_attack" in summary else "adversarial (training attack)")
            robust = f", {kind} {100 * summary[key]:.2f}%"
    print(f"test accuracy {100 * summary['test_accuracy']:.2f}%{robust} after {summary['epochs']} epochs "
          f"({summary['train_seconds']:.0f} s); summary: {summary['summary_path']}")
    print_exports(summary)


def run():
    """The ``tfrobust-train`` console script."""
    run_program(define_flags, main, __doc__)
