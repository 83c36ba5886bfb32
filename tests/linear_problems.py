"""A random 10-class linear Keras model and labels it gets right except on every fifth point: the
evaluation tests' shared problem (known clean accuracy 80 %, cheap to attack)."""

import keras
import numpy as np


def linear_problem(points, side, seed=0):
    """(model, x float32 [points, side, side, 1] in [0, 1], y int64): ``y`` is the model's prediction,
    shifted by one class on every fifth point."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((side, side, 1)), keras.layers.Flatten(), keras.layers.Dense(10)],
                             name="lin")
    x = np.random.default_rng(seed).uniform(0, 1, size=(points, side, side, 1)).astype(np.float32)
    y = np.argmax(model(x).numpy(), axis=1)
    y[::5] = (y[::5] + 1) % 10
    return model, x, y
