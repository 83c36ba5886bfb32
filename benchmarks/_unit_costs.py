"""The unit costs of a model on this machine: seconds per example of one compiled forward pass and of one
compiled forward+backward pass (the gradient of the cross-entropy with respect to the input, what an
attack's step computes). Shared by the AutoAttack benchmarks (``from _unit_costs import UnitCosts``)."""

import time

import numpy as np
import tensorflow as tf


class UnitCosts:
    """Seconds per example of one compiled forward and one compiled forward+backward of ``model``.

    Both functions are traced once, on one batch of ``batch_size`` examples (the attack's batch size), so
    every ``measure`` times the same compiled graphs; call it right before and right after each timed run,
    so the floor of that run is priced under the load the run itself saw.
    """

    def __init__(self, model, x, batch_size, repeats):
        self.images = tf.constant(x[:batch_size])
        labels = tf.constant(np.zeros(len(self.images), np.int64))
        self.repeats = repeats
        self.forward = tf.function(lambda v: model(v, training=False))

        @tf.function(autograph=False)  # no control flow to convert
        def forward_backward(v):
            with tf.GradientTape() as tape:
                tape.watch(v)
                loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, model(v, training=False))
            return tape.gradient(loss, v)

        self.forward_backward = forward_backward
        self.measure()  # trace both outside any timed window

    def measure(self):
        """Lists of per-example seconds (``repeats`` calls each) of the forward and the forward+backward."""
        times = []
        for fn in (self.forward, self.forward_backward):
            fn(self.images).numpy()  # warm
            one = []
            for _ in range(self.repeats):
                start = time.perf_counter()
                fn(self.images).numpy()
                one.append((time.perf_counter() - start) / len(self.images))
            times.append(one)
        return times
