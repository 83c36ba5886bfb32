"""The seeds' recipe flagfiles (trainers/configs/fmnist_*.flags) carry the recipe and model-selection
settings explicitly, and every flagfile of trainers/train.py parses into valid options, method and model
options."""

import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPES = sorted(glob.glob(os.path.join(ROOT, "trainers", "configs", "fmnist_*.flags")))
EXPLICIT = ("--weight_decay_mode=", "--validation_size=", "--export_weights=")

CHECK = """
import glob, os
from absl import flags
from tfrobust import cli
from tfrobust.scripts import train
from tfrobust.training.methods import make_method
train.define_flags()
for path in sorted(glob.glob("trainers/configs/fmnist_*.flags") + glob.glob("trainers/configs/demo_*.flags")):
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["train.py", "--flagfile=" + path, "--model_dir=/tmp/unused"])
    train.recipe()
    make_method(flags.FLAGS.method, **train.method_params())
    cli.parse_options(flags.FLAGS.model_option, "model_option")
    print("ok", os.path.basename(path))
"""


@pytest.mark.parametrize("path", RECIPES, ids=os.path.basename)
def test_recipe_flagfiles_state_the_recipe_settings(path):
    lines = [line.strip() for line in open(path, encoding="utf-8") if line.startswith("--")]
    for prefix in EXPLICIT:
        assert any(line.startswith(prefix) for line in lines), f"{os.path.basename(path)} lacks {prefix}"
    if any(line.startswith("--eps=") for line in lines):
        assert any(line.startswith("--attack_bn_mode=") for line in lines)


@pytest.mark.slow  # a TensorFlow import in a subprocess (~15 s on the shared 2-core machine): make test-all
def test_every_flagfile_parses_into_valid_options():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, cwd=ROOT,
                            check=False, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    parsed = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("ok ")]
    # The classifier trainer's flagfiles (denoise_*.flags belong to trainers/train_denoiser.py).
    flagfiles = [p for pattern in ("fmnist_*.flags", "demo_*.flags")
                 for p in glob.glob(os.path.join(ROOT, "trainers", "configs", pattern))]
    assert parsed == sorted(os.path.basename(p) for p in flagfiles)
