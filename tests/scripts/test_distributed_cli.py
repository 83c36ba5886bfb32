"""``tfrobust-compare --distribute=ray``: a local Ray instance with 2 workers is started, used and stopped,
and the report equals the in-process one; Ray flags without --distribute=ray are refused."""

import json

import keras
import numpy as np
import pytest

pytest.importorskip("ray")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)], name="lin")
    path = str(tmp_path_factory.mktemp("model") / "lin.keras")
    model.save(path)
    return path


def test_compare_on_ray_workers_writes_the_in_process_numbers(model_file, tmp_path, in_process):
    import ray  # pylint: disable=import-outside-toplevel

    args = [f"--artifacts={model_file}", "--dataset=fashion_mnist", "--test_size=60", "--eps=0.02",
            "--suite=fgsm,pgd", "--attack_option=pgd.steps=5", "--batch_size=10", "--sanity_size=0", "--verbose=0"]
    code, _, stderr = in_process("compare", *args, f"--out_dir={tmp_path / 'here'}")
    assert code == 0, stderr
    code, stdout, stderr = in_process("compare", *args, "--distribute=ray", "--workers=2",
                                      f"--out_dir={tmp_path / 'ray'}")
    assert code == 0, stderr
    assert not ray.is_initialized()  # the local instance was stopped
    assert "ray: 2 workers, jobs per worker [" in stdout
    report = json.load(open(tmp_path / "ray" / "report.json", encoding="utf-8"))
    local = json.load(open(tmp_path / "here" / "report.json", encoding="utf-8"))
    assert report["distributed"]["workers"] == 2 and sum(report["distributed"]["jobs"]) >= 2
    rows = lambda r: [(row["attack"], row["accuracy"], row["counts"]) for row in r["models"][0]["rows"]]
    assert rows(report) == rows(local)
    with np.load(tmp_path / "ray" / "correct.npz") as ray_masks, np.load(tmp_path / "here" / "correct.npz") as masks:
        for key in masks.files:
            np.testing.assert_array_equal(ray_masks[key], masks[key], err_msg=key)


@pytest.mark.parametrize("flag", ["--workers=3", "--ray_address=auto"])
def test_ray_flags_need_distribute_ray(in_process, flag, model_file):
    code, _, stderr = in_process("compare", f"--artifacts={model_file}", flag)
    assert code == 2 and stderr.count("\n") == 1 and "only apply with --distribute=ray" in stderr
