"""Two-class 8×8 images a tiny network separates in a few steps: the training tests' shared data."""

import numpy as np


def separable_images(n=128, seed=0, *, spread=0.3, gap=0.7):
    """(x float32 [n, 8, 8, 1] in [0, 1], y int64 [n]): class 0 uniform in [0, spread], class 1 shifted by
    ``gap``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    low = rng.uniform(0.0, spread, (n, 8, 8, 1))
    return np.where(y[:, None, None, None] == 0, low, low + gap).astype("float32"), y.astype("int64")
