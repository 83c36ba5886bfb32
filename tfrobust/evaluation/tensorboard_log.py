"""Evaluation results as TensorBoard event files (``tf.summary``), one TensorBoard run per model.

Under ``log_dir/<model label>/``: scalars ``accuracy/clean``, ``accuracy/<attack>`` and
``accuracy/worst_case`` at ``step`` (pass the training step to follow a model across checkpoints); when
the report has sanity curves, ``sanity/pgd_accuracy_vs_eps`` (TensorBoard steps are integers, so the step
is round(1000·ε), said in the tag's description) and ``sanity/pgd_accuracy_vs_steps`` (step = PGD
iterations). Images: a strip of the evaluated points (``images``) and, when adversarial examples are
given (``adversarial``: {label: {attack: x_adv}}, the hook for ``--save_adversarial`` outputs), one strip
per attack. Reports do not keep x_adv today, so callers pass only ``images``.
"""

import os
import re

import numpy as np
import tensorflow as tf

from tfrobust.evaluation.leaderboard import file_name

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-/]+")
STRIP_LENGTH = 8  # images per strip


def _tag(text):
    return _UNSAFE.sub("_", str(text)).strip("_")


def _run_dir(label):
    """The run folder of a model label, named as its leaderboard entry (``cnn@1:saved_model`` →
    ``cnn@1_saved_model``)."""
    return os.path.splitext(file_name(label))[0]


def image_strip(images, length=STRIP_LENGTH):
    """The first ``length`` images side by side: [1, H, length·W, C] float32 in [0, 1]."""
    images = np.clip(np.asarray(images[:length], np.float32), 0.0, 1.0)
    if images.ndim == 3:
        images = images[..., None]
    return np.concatenate(list(images), axis=1)[None]


def write_tensorboard(report, log_dir, *, images=None, adversarial=None, step=0):
    """Writes the report's scalars (and image strips) under ``log_dir``; returns the run directories."""
    runs = []
    for model in report["models"]:
        run_dir = os.path.join(log_dir, _run_dir(model["model"]))
        writer = tf.summary.create_file_writer(run_dir)
        with writer.as_default():
            tf.summary.scalar("accuracy/clean", model["clean"], step=step)
            for row in model["rows"]:
                tf.summary.scalar(f"accuracy/{_tag(row['attack'])}", row["accuracy"], step=step,
                                  description=f"{row['attack']} ({row['mode']})")
            tf.summary.scalar("accuracy/worst_case", model["worst_case"], step=step,
                              description="a point counts only if it survived every ε-bounded attack")
            curves = (model.get("sanity") or {}).get("curves")
            if curves:
                for point in curves["accuracy_vs_eps"][:-1]:  # the last point is the unbounded ε
                    tf.summary.scalar("sanity/pgd_accuracy_vs_eps", point["accuracy"],
                                      step=int(round(1000 * point["eps"])),
                                      description="PGD accuracy; step = round(1000·ε)")
                for point in curves["accuracy_vs_steps"]:
                    tf.summary.scalar("sanity/pgd_accuracy_vs_steps", point["accuracy"], step=int(point["steps"]),
                                      description="PGD accuracy at ε; step = PGD iterations")
            if images is not None and len(images):
                tf.summary.image("points/clean", image_strip(images), step=step,
                                 description=f"the first {STRIP_LENGTH} evaluated points")
            for attack, x_adv in ((adversarial or {}).get(model["model"]) or {}).items():
                tf.summary.image(f"points/adversarial/{_tag(attack)}", image_strip(x_adv), step=step,
                                 description=f"{attack}'s adversarial examples of the same points")
        writer.flush()
        writer.close()
        runs.append(run_dir)
    return runs
