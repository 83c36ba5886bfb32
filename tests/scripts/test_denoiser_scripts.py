"""The denoising scripts turn bad input into one ``error:`` line and exit code 2."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")


def test_train_denoiser_rejects_a_patch_larger_than_the_images_with_exit_2(tmp_path):
    (tmp_path / "images").mkdir()
    from PIL import Image  # pylint: disable=import-outside-toplevel
    Image.new("L", (20, 30)).save(tmp_path / "images" / "01.png")
    result = subprocess.run([sys.executable, os.path.join(ROOT, "trainers/train_denoiser.py"),
                             f"--train_source={tmp_path / 'images'}", "--patch_size=40", "--epochs=1",
                             f"--model_dir={tmp_path / 'run'}"],
                            capture_output=True, text=True, env=ENV, cwd=ROOT, check=False, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: patch_size 40 is larger than image 0 of shape (30, 20)"], result.stderr[-2000:]
