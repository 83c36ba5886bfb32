"""benchmarks/autoattack_reference.py: skips cleanly without the reference, and its PyTorch mirror of a
Keras CNN computes the same logits (when the bench-only torch is installed)."""

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "benchmarks", "autoattack_reference.py")
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")


def test_without_reference_dir_it_skips_and_a_bad_dir_is_one_error_line(tmp_path):
    result = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True, env=ENV, cwd=ROOT,
                            check=False, timeout=300)
    assert result.returncode == 0 and result.stdout.startswith("skipped: give --reference_dir="), result.stderr
    result = subprocess.run([sys.executable, SCRIPT, f"--reference_dir={tmp_path}"], capture_output=True,
                            text=True, env=ENV, cwd=ROOT, check=False, timeout=300)
    assert result.returncode == 2 and "error: --reference_dir=" in result.stderr


@pytest.mark.slow  # importing torch alone takes seconds
def test_torch_mirror_matches_the_keras_logits():
    torch = pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location("autoattack_reference_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from tfrobust import models  # pylint: disable=import-outside-toplevel

    model = models.build("small_cnn", (9, 9, 1), 4, width=0.25, hidden=8)
    strided = keras.Sequential([keras.Input((9, 9, 1)), keras.layers.Conv2D(3, 3, strides=2, padding="same"),
                                keras.layers.MaxPooling2D(2, padding="same"), keras.layers.Flatten(),
                                keras.layers.Dense(5, activation="relu"), keras.layers.Dense(3)])
    x = np.random.default_rng(0).uniform(size=(5, 9, 9, 1)).astype(np.float32)
    for keras_model in (model, strided):
        mirror = module.torch_mirror(torch, keras_model)
        with torch.no_grad():
            logits = mirror(torch.tensor(x.transpose(0, 3, 1, 2).copy())).numpy()
        np.testing.assert_allclose(logits, keras_model(x).numpy(), rtol=1e-4, atol=1e-5)
