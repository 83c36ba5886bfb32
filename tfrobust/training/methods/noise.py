"""Gaussian-noise augmentation: training on x + σ·N(0, I) (the TisODE thesis' σ sets)."""

import tensorflow as tf

from tfrobust.attacks import losses
from tfrobust.errors import TfrobustError, check_number
from tfrobust.training.methods.base import LossRecord, Method, cross_entropy

#: The thesis' MNIST set: σ ∈ {50, 75, 100}/255, each example noised with probability 0.5.
DEFAULT_SIGMAS = (50 / 255, 75 / 255, 100 / 255)


class GaussianNoise(Method):
    """Trains on Gaussian-noised inputs: x̃ = clip(x + m · σ · n), n ~ N(0, I), m ~ Bernoulli(p),
    σ drawn uniformly from ``sigma`` per example; loss CE(f(x̃), y).

    Args:
      sigma: one standard deviation or a list of them (image units), each > 0. Default: the
        TisODE thesis' MNIST set {50, 75, 100}/255 (Yan et al., "On Robustness of Neural Ordinary
        Differential Equations", ICLR 2020, Sec. 4 and their released code).
      probability: probability that an example is noised, in (0, 1] (0.5 in the released code).
      clip_min, clip_max: the noised image is clipped into the valid range (the released code clamps
        to [0, 1]).

    Reports ``ce`` and ``noisy_accuracy`` (accuracy on x̃). Not an adversarial method: no ε.
    """

    name = "gaussian"
    components = ("ce",)
    crafted = "noisy"

    def __init__(self, *, sigma=DEFAULT_SIGMAS, probability=0.5, clip_min=0.0, clip_max=1.0):
        sigmas = [float(s) for s in (sigma if isinstance(sigma, (list, tuple)) else [sigma])]
        if not sigmas:
            raise TfrobustError("sigma needs at least one value")
        for value in sigmas:
            check_number("sigma", value, 0.0, low_inclusive=False)
        check_number("probability", probability, 0.0, 1.0, low_inclusive=False)
        self.sigma = sigmas
        self.probability = float(probability)
        self.clip_min, self.clip_max = float(clip_min), float(clip_max)

    def craft(self, adv, x, labels, seed):
        del adv, labels
        seeds = tf.random.experimental.stateless_split(seed, 3)
        n = tf.shape(x)[:1]
        which = tf.random.stateless_uniform(n, seeds[0], 0, len(self.sigma), dtype=tf.int32)
        sigma = tf.gather(tf.constant(self.sigma, tf.float32), which)
        noised = tf.cast(tf.random.stateless_uniform(n, seeds[1]) < self.probability, tf.float32)
        scale = tf.reshape(sigma * noised, tf.concat([n, tf.ones([tf.rank(x) - 1], tf.int32)], 0))
        noise = tf.random.stateless_normal(tf.shape(x), seeds[2], dtype=x.dtype)
        return tf.clip_by_value(x + scale * noise, self.clip_min, self.clip_max)

    def loss(self, adv, x, y, x_crafted, training):
        del x
        logits = losses.logits_of(adv.forward(x_crafted, y, training=training))
        ce = cross_entropy(logits, y)
        return LossRecord(ce, {"ce": ce}, crafted_logits=logits)
