"""Image folders (Set12 / BSD68 / Kodak24 / SIDD layouts) on small files the tests write, the embedded
scikit-image split, seeded patches and the γ-noise pipeline."""

import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfrobust.data.denoising import add_noise, make_denoising_dataset, sample_patches
from tfrobust.data.image_folder import (EMBEDDED_SPLITS, embedded_folder, embedded_images,
                                        load_images, read_image, read_image_folder, read_noisy_clean_pairs)
from tfrobust.errors import TfrobustError

RNG = np.random.default_rng(0)
GRAY = RNG.integers(0, 256, size=(9, 11), dtype=np.uint8)
RGB = RNG.integers(0, 256, size=(7, 6, 3), dtype=np.uint8)


def write(path, pixels, **kwargs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(pixels).save(path, **kwargs)
    return path


def test_reads_png_bmp_and_16_bit_files_exactly(tmp_path):
    np.testing.assert_allclose(read_image(write(str(tmp_path / "01.png"), GRAY))[..., 0], GRAY / 255, atol=1e-7)
    np.testing.assert_allclose(read_image(write(str(tmp_path / "a.bmp"), RGB), "rgb"), RGB / 255, atol=1e-7)
    deep = (GRAY.astype(np.uint16) * 257)
    tf.io.write_file(str(tmp_path / "deep.png"), tf.io.encode_png(deep[..., None]))
    np.testing.assert_allclose(read_image(str(tmp_path / "deep.png"))[..., 0], GRAY / 255, atol=1e-6)


def test_color_conversions_and_jpeg(tmp_path):
    gray_of_rgb = read_image(write(str(tmp_path / "c.png"), RGB), "gray")
    expected = tf.image.rgb_to_grayscale(tf.constant(RGB / 255, tf.float32)).numpy()
    np.testing.assert_allclose(gray_of_rgb, expected, atol=1e-6)
    assert read_image(write(str(tmp_path / "g.png"), GRAY), "rgb").shape == (9, 11, 3)
    smooth = np.broadcast_to(np.linspace(40, 200, 16, dtype=np.uint8)[None, :, None], (16, 16, 3)).copy()
    jpeg = read_image(write(str(tmp_path / "k.jpg"), smooth, quality=95), "rgb")
    assert jpeg.shape == (16, 16, 3) and jpeg.dtype == np.float32 and np.abs(jpeg - smooth / 255).max() < 0.03


def test_folder_layouts_sorted_recursive_and_filtered(tmp_path):
    # Set12: 01.png …; Kodak24: kodim01.png; SIDD: Data/<scene>/GT_SRGB_010.PNG beside NOISY_SRGB_010.PNG.
    for name in ("02.png", "01.png", "sub/03.bmp", "notes.txt"):
        if name.endswith("txt"):
            (tmp_path / "set12" / name).write_text("not an image")
        else:
            write(str(tmp_path / "set12" / name), GRAY)
    images, names = read_image_folder(tmp_path / "set12")
    assert names == ["01.png", "02.png", os.path.join("sub", "03.bmp")]
    assert all(image.shape == (9, 11, 1) for image in images)
    assert read_image_folder(tmp_path / "set12", recursive=False)[1] == ["01.png", "02.png"]
    for scene in ("0001_S6", "0002_N6"):
        write(str(tmp_path / "sidd" / "Data" / scene / "GT_SRGB_010.PNG"), RGB)
        write(str(tmp_path / "sidd" / "Data" / scene / "NOISY_SRGB_010.PNG"), 255 - RGB)
    noisy, clean, names = read_noisy_clean_pairs(tmp_path / "sidd")
    assert names == [os.path.join("Data", scene, "GT_SRGB_010.PNG") for scene in ("0001_S6", "0002_N6")]
    np.testing.assert_allclose(noisy[0] + clean[0], 1.0, atol=1e-6)
    assert len(load_images(str(tmp_path / "sidd"), color="rgb", pattern="GT_*")[0]) == 2


def test_folder_errors_are_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(TfrobustError, match="holds no png/jpg/jpeg/bmp/gif file"):
        read_image_folder(tmp_path / "empty")
    with pytest.raises(TfrobustError, match="is not an existing directory"):
        read_image_folder(tmp_path / "missing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"not a png")
    with pytest.raises(TfrobustError, match="cannot decode image .*x.png"):
        read_image_folder(tmp_path / "bad")
    write(str(tmp_path / "lonely" / "GT_1.png"), GRAY)
    with pytest.raises(TfrobustError, match="no noisy partner NOISY_1.png"):
        read_noisy_clean_pairs(tmp_path / "lonely")
    with pytest.raises(TfrobustError, match="unknown color"):
        read_image(tmp_path / "lonely" / "GT_1.png", "cmyk")


def test_embedded_split_ships_in_the_wheel_and_is_disjoint():
    folder = embedded_folder()
    names = {split: [name for name, _ in entries] for split, entries in EMBEDDED_SPLITS.items()}
    assert not set(names["train"]) & set(names["test"])
    assert all(os.path.isfile(os.path.join(folder, name)) for split in names.values() for name in split)
    images, test_names = embedded_images("test", "rgb")
    assert test_names == ["chelsea", "coffee"] and images[0].shape == (300, 451, 3)


def test_patches_are_seeded_in_range_and_cover_the_images():
    images = [np.linspace(0, 1, 20 * 30, dtype=np.float32).reshape(20, 30, 1), np.full((12, 12, 1), 0.5, np.float32)]
    patches = sample_patches(images, 8, 500, seed=3)
    assert patches.shape == (500, 8, 8, 1) and patches.dtype == np.float32
    np.testing.assert_array_equal(patches, sample_patches(images, 8, 500, seed=3))
    assert not np.array_equal(patches, sample_patches(images, 8, 500, seed=4))
    constant = np.all(patches == 0.5, axis=(1, 2, 3)).mean()
    # 25 of the 23·13 + 25 = 324 crop positions lie in the constant image.
    assert abs(constant - 25 / 324) < 0.04
    with pytest.raises(TfrobustError, match="patch_size 13 is larger than image 1 of shape"):
        sample_patches(images, 13, 10)
    with pytest.raises(TfrobustError, match=r"must lie in \[0, 1\]"):
        sample_patches([images[0] * 255], 8, 10)
    with pytest.raises(TfrobustError, match=r"must be \(H, W, C\)"):
        sample_patches([images[0][..., 0]], 8, 10)


def test_noise_levels_are_uniform_up_to_gamma_and_fresh_each_epoch():
    patches = np.full((256, 16, 16, 1), 0.5, np.float32)
    dataset = make_denoising_dataset(patches, 256, gamma=0.1, seed=0, shuffle=False)
    noisy, clean = next(iter(dataset))
    sigma = np.std((noisy - clean).numpy().reshape(256, -1), axis=1)
    assert sigma.max() < 0.1 * 1.25 and sigma.min() < 0.02 and 0.04 < sigma.mean() < 0.06  # σ ~ U(0, 0.1)
    # Evaluation data (shuffle=False) keeps its noise from pass to pass; training data draws it afresh.
    assert np.array_equal(noisy.numpy(), next(iter(dataset))[0].numpy())
    training = make_denoising_dataset(patches, 256, gamma=0.1, seed=0, shuffle=True)
    assert not np.array_equal(next(iter(training))[0].numpy(), next(iter(training))[0].numpy())
    uniform = add_noise(tf.fill([1, 64, 64, 1], 0.5), "uniform", 0.1, tf.constant([1, 2], tf.int64)).numpy() - 0.5
    assert abs(uniform.std() - 0.1) < 0.01 and np.abs(uniform).max() <= np.sqrt(3) * 0.1 + 1e-6
    with pytest.raises(TfrobustError, match="gamma must be"):
        make_denoising_dataset(patches, 8, gamma=0.0)
