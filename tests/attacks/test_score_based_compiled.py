"""Score-based attacks compile a TensorFlow callable once instead of running it eagerly per query."""

import numpy as np
import tensorflow as tf

from tfrobust.attacks import Square


def test_a_tf_callable_is_traced_once_not_run_eagerly_per_query():
    w = tf.constant(np.random.default_rng(0).normal(size=(16, 3)), tf.float32)
    python_calls = []

    def model_fn(x):
        python_calls.append(1)  # runs per eager call, but only per trace once compiled
        return tf.matmul(tf.reshape(tf.convert_to_tensor(x, tf.float32), [-1, 16]), w)

    x = np.random.default_rng(1).uniform(size=(6, 4, 4, 1)).astype(np.float32)
    y = np.argmax(model_fn(x).numpy(), axis=1)
    python_calls.clear()
    attack = Square(eps=0.02, queries=60)
    x_adv = attack(model_fn, x, y).numpy()
    assert attack.last_counts["forward"] > 60  # many queries …
    assert len(python_calls) <= 4  # … but one eager probe and a few traces
    assert np.abs(x_adv - x).max() <= 0.02 + 1e-6
    # A NumPy predict function is called as given (it cannot be traced).
    numpy_calls = []

    def predict(images):
        numpy_calls.append(1)
        return np.asarray(model_fn(images))

    Square(eps=0.02, queries=10)(predict, x, y)
    assert len(numpy_calls) > 10
