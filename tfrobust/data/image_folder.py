"""Image folders: the on-disk kind of the denoising benchmarks, and the embedded offline image set.

Denoising benchmarks are distributed as plain folders of image files of *different sizes* — Set12
(``01.png`` … ``12.png``, gray), BSD68 / CBSD68 (``test001.png`` …, gray or RGB), Kodak24
(``kodim01.png`` …, RGB) — or as scene folders holding a clean and a noisy capture (SIDD:
``Data/<scene>/GT_SRGB_010.PNG`` beside ``NOISY_SRGB_010.PNG``). They have no labels and no common
shape, so they do not fit the classifier registry (``registry.py``: one ``(N, H, W, C)`` array plus
labels per split); this module returns *lists* of float32 ``(H, W, C)`` arrays in [0, 1] instead, and
``tfrobust.data.denoising`` turns them into fixed-size training patches.

Files: PNG (8- or 16-bit), JPEG, BMP (and GIF, first frame), decoded by ``tf.io.decode_image``.
``color="gray"`` converts RGB files with ``tf.image.rgb_to_grayscale`` (ITU-R 601 luma); ``"rgb"``
repeats a gray file's channel three times; an alpha channel is dropped.

Embedded default (offline): the natural photographs scikit-image ships *inside its wheel*
(``skimage/data/*.png|jpg``, read from the installed package folder with the same folder reader, no
``pooch`` download). The split is fixed (``EMBEDDED_SPLITS``): a "Set12-like" held-out test set of
classic test photographs (camera, coins, moon, text, chelsea, coffee) and every other photograph for
training. Synthetic drawings (chessboard, logo, color wheel, phantom, horse silhouette) are excluded.
In RGB mode only the colour photographs are used (gray files carry no colour to learn).

Registry datasets as clean signals: ``"dataset:<name>"`` (e.g. ``dataset:fashion_mnist``, the embedded
classifier dataset) gives that dataset's ``split`` images (``tfrobust.data.load``; labels dropped), so small
denoisers can be trained and evaluated on 28×28 images offline.
"""

import fnmatch
import os

import numpy as np
import tensorflow as tf

from tfrobust.errors import TfrobustError, check_choice

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
COLORS = ("gray", "rgb")

#: scikit-image's bundled photographs (file names in ``skimage/data``) per split; (name, is_rgb).
EMBEDDED_SPLITS = {
    "train": (("astronaut.png", True), ("rocket.jpg", True), ("motorcycle_left.png", True),
              ("hubble_deep_field.jpg", True), ("ihc.png", True), ("retina.jpg", True),
              ("brick.png", False), ("grass.png", False), ("gravel.png", False), ("page.png", False),
              ("cell.png", False), ("clock_motion.png", False), ("microaneurysms.png", False)),
    "test": (("camera.png", False), ("coins.png", False), ("moon.png", False), ("text.png", False),
             ("chelsea.png", True), ("coffee.png", True)),
}
EMBEDDED = "skimage"
#: ``load_images`` source prefix naming a registry dataset (``dataset:fashion_mnist``).
DATASET_PREFIX = "dataset:"


def list_image_files(folder, pattern="*", recursive=True):
    """Sorted paths of the image files under ``folder`` whose base name matches ``pattern``.

    Args:
      folder: a directory (Set12/BSD68/Kodak24: the files themselves; SIDD: the ``Data`` folder).
      pattern: ``fnmatch`` pattern on the base name, case-insensitive (e.g. ``"GT_*"`` for SIDD's clean
        captures).
      recursive: also look into subfolders.

    Raises:
      TfrobustError: the folder does not exist or holds no matching image file.
    """
    folder = os.path.abspath(os.path.expanduser(os.fspath(folder)))
    if not os.path.isdir(folder):
        raise TfrobustError(f"image folder {folder} is not an existing directory")
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in files:
            if name.lower().endswith(IMAGE_EXTENSIONS) and fnmatch.fnmatch(name.lower(), pattern.lower()):
                found.append(os.path.join(root, name))
        if not recursive:
            break
    if not found:
        raise TfrobustError(f"image folder {folder} holds no {'/'.join(e[1:] for e in IMAGE_EXTENSIONS)} "
                            f"file matching {pattern!r}")
    return sorted(found)


def read_image(path, color="gray"):
    """One image file as float32 ``(H, W, 1 or 3)`` in [0, 1].

    Raises:
      TfrobustError: unknown ``color``, or the file cannot be read or decoded (one line with the path).
    """
    check_choice("color", color, COLORS)
    try:
        raw = tf.io.read_file(os.fspath(path))
        image = tf.io.decode_image(raw, expand_animations=False)
    except (tf.errors.OpError, ValueError) as error:
        message = " ".join(str(error).split())[:160]
        raise TfrobustError(f"cannot decode image {path}: {message}") from None
    image = tf.image.convert_image_dtype(image, tf.float32)  # uint8 / uint16 → [0, 1]
    channels = image.shape[-1]
    if channels in (2, 4):  # gray + alpha, RGB + alpha
        image = image[..., :channels - 1]
        channels -= 1
    if color == "gray" and channels == 3:
        image = tf.image.rgb_to_grayscale(image)
    elif color == "rgb" and channels == 1:
        image = tf.image.grayscale_to_rgb(image)
    return np.clip(image.numpy(), 0.0, 1.0).astype(np.float32)


def read_image_folder(folder, color="gray", pattern="*", recursive=True):
    """Every image under ``folder`` as ``(images, names)``: lists of float32 (H, W, C) arrays in [0, 1]
    and of paths relative to ``folder``, in sorted path order."""
    paths = list_image_files(folder, pattern, recursive)
    root = os.path.abspath(os.path.expanduser(os.fspath(folder)))
    return [read_image(p, color) for p in paths], [os.path.relpath(p, root) for p in paths]


def read_noisy_clean_pairs(folder, color="rgb", clean_token="GT", noisy_token="NOISY"):
    """Real-noise pairs in the SIDD layout: ``(noisy, clean, names)``.

    A clean file is one whose base name contains ``clean_token`` (``GT_SRGB_010.PNG``); its noisy
    partner is the file in the same folder whose name is the clean name with the token replaced
    (``NOISY_SRGB_010.PNG``).

    Raises:
      TfrobustError: no clean file, a clean file without its noisy partner, or mismatched sizes.
    """
    clean_paths = list_image_files(folder, f"*{clean_token}*")
    noisy, clean, names = [], [], []
    root = os.path.abspath(os.path.expanduser(os.fspath(folder)))
    for path in clean_paths:
        directory, name = os.path.split(path)
        partner = os.path.join(directory, name.replace(clean_token, noisy_token))
        if not os.path.isfile(partner):
            raise TfrobustError(f"{path} has no noisy partner {os.path.basename(partner)} beside it")
        clean_image, noisy_image = read_image(path, color), read_image(partner, color)
        if clean_image.shape != noisy_image.shape:
            raise TfrobustError(f"{path} is {clean_image.shape} but its noisy partner is {noisy_image.shape}")
        clean.append(clean_image)
        noisy.append(noisy_image)
        names.append(os.path.relpath(path, root))
    return noisy, clean, names


def embedded_folder():
    """The folder of scikit-image's bundled images (the installed ``skimage/data`` package folder)."""
    try:
        import skimage.data  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise TfrobustError("the embedded image set needs scikit-image (pip install -r requirements.txt)") \
            from None
    return os.path.dirname(skimage.data.__file__)


def embedded_images(split="test", color="gray"):
    """The embedded image set's ``split`` (``EMBEDDED_SPLITS``) as ``(images, names)``."""
    check_choice("split", split, tuple(EMBEDDED_SPLITS))
    check_choice("color", color, COLORS)
    folder = embedded_folder()
    images, names = [], []
    for name, is_rgb in EMBEDDED_SPLITS[split]:
        if color == "rgb" and not is_rgb:
            continue
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise TfrobustError(f"scikit-image is missing its bundled image {name} (looked in {folder})")
        images.append(read_image(path, color))
        names.append(os.path.splitext(name)[0])
    return images, names


def dataset_images(name, split="test", color="gray", size=None):
    """A registry dataset's ``split`` (its first ``size`` images) as ``(images, names)`` for denoising:
    float32 (H, W, C) arrays in [0, 1] (views into one array) and names ``<name>/<split>/<index>``; colour
    converted as ``read_image`` does."""
    from tfrobust.data.registry import load  # pylint: disable=import-outside-toplevel  (registry imports loaders)

    check_choice("color", color, COLORS)
    x, _ = load(name, split, size=size)
    channels = x.shape[-1]
    if color == "gray" and channels == 3:
        x = tf.image.rgb_to_grayscale(x).numpy()
    elif color == "rgb" and channels == 1:
        x = np.repeat(x, 3, axis=-1)
    x = np.asarray(x, np.float32)
    return list(x), [f"{name}/{split}/{i}" for i in range(len(x))]


def load_images(source, split="test", color="gray", pattern="*", size=None):
    """Images for denoising from ``source``: ``"skimage"`` (the embedded set, ``split`` applies),
    ``"dataset:<name>"`` (a registry dataset's ``split``, its first ``size`` images) or an image folder
    (``split`` is ignored: a benchmark folder is one split). ``size`` keeps the first ``size`` images of any
    source; ``pattern`` selects files of a folder only, and is refused for the other sources rather than ignored.
    Returns ``(images, names)``."""
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise TfrobustError(f"size must be a positive integer or None, got {size!r}")
    if pattern != "*" and (source == EMBEDDED or source.startswith(DATASET_PREFIX)):
        raise TfrobustError(f"pattern {pattern!r} selects files of an image folder; {source!r} is not a folder")
    if source.startswith(DATASET_PREFIX):
        return dataset_images(source[len(DATASET_PREFIX):], split, color, size)
    images, names = embedded_images(split, color) if source == EMBEDDED else read_image_folder(source, color, pattern)
    return images[:size], names[:size]


__all__ = ["COLORS", "DATASET_PREFIX", "EMBEDDED", "EMBEDDED_SPLITS", "IMAGE_EXTENSIONS", "dataset_images",
           "embedded_folder", "embedded_images",
           "list_image_files", "load_images", "read_image", "read_image_folder", "read_noisy_clean_pairs"]
