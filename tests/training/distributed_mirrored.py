"""Helper process of ``test_distribute.py`` (not a test module): logical devices can only be configured
before TensorFlow initialises its devices, i.e. in a fresh process.

Splits the CPU into two logical devices, then trains the same tiny PGD-AT problem once on one device
(the default strategy) and once under ``MirroredStrategy`` over both devices, and prints one JSON line:
``{"none": run, "mirrored": run}`` with each run's replicas, per-epoch losses and final weights.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

import keras
import numpy as np

from tfrobust.training import AdversarialModel
from tfrobust.training.distribute import make_strategy


def separable_images(n=64, seed=0):
    """Two classes of 4×4 images: class 1 is brighter on the left half, class 0 on the right."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.uniform(0.3, 0.5, size=(n, 4, 4, 1)).astype(np.float32)
    x[y == 1, :, :2] += 0.3
    x[y == 0, :, 2:] += 0.3
    return x, y.astype(np.int64)


def train(name, epochs=3):
    strategy = make_strategy(name)
    keras.utils.set_random_seed(0)
    with strategy.scope():
        net = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                                keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)])
        # No random start: the single-device and 2-replica runs then craft the same adversaries
        # (the random streams are folded with the replica id, so they would differ).
        adv = AdversarialModel(net, "pgd_at", eps=0.1, steps=3, random_start="none")
        adv.compile(optimizer=keras.optimizers.SGD(0.5))
    x, y = separable_images()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)  # global batch 16 → 8 per replica
    history = adv.fit(dataset, epochs=epochs, verbose=0)
    return {"replicas": strategy.num_replicas_in_sync, "loss": history.history["loss"],
            "adv_accuracy": history.history["adv_accuracy"],
            "weights": [w.tolist() for w in net.get_weights()]}


if __name__ == "__main__":
    json.dump({"none": train("none"), "mirrored": train("mirrored")}, sys.stdout)
    print()
