"""The threat model every attack shares: norm, budget, valid input range, targeted or not.

All attacks work on images in pixel space (``[clip_min, clip_max]``, by default ``[0, 1]``) and on a
callable ``model_fn: images -> logits``; normalisation and upsampling live inside the model, so the
attacker perturbs exactly what a deployed model receives.
"""

import dataclasses

import tensorflow as tf

from tfrobust.errors import TfrobustError, check_choice, check_number

NORMS = ("linf", "l2")


@dataclasses.dataclass(frozen=True)
class ThreatModel:
    """Where an adversary may move an input.

    Args:
      norm: "linf" or "l2": the ball ``{x' : ‖x' − x‖ ≤ eps}``.
      eps: radius of the ball, ≥ 0, in the units of the image range (ε written "8" in a paper on
        CIFAR-10 means 8/255 here).
      clip_min, clip_max: the valid input range; adversarial inputs are always clipped into it.
      targeted: if True, the labels given to an attack are the *targets* to reach; otherwise they are the
        true labels to move away from.
    """

    norm: str = "linf"
    eps: float = 0.3
    clip_min: float = 0.0
    clip_max: float = 1.0
    targeted: bool = False

    def __post_init__(self):
        check_choice("norm", self.norm, NORMS)
        check_number("eps", self.eps, 0.0, finite=False)
        check_number("clip_min", self.clip_min)
        check_number("clip_max", self.clip_max)
        if not self.clip_min < self.clip_max:
            raise TfrobustError(
                f"clip_min must be < clip_max, got {self.clip_min} and {self.clip_max}")

    def project(self, x_adv, x):
        """Returns the point of the ball around ``x`` intersected with the valid range nearest ``x_adv``
        along the usual projections (clip for L∞, radial rescale for L2, then range clip).

        Clipping into the range after the L2 rescale can only shrink each coordinate of the perturbation,
        so the result still lies in the ball.
        """
        return tf.clip_by_value(x + self.project_delta(x_adv - x), self.clip_min, self.clip_max)

    def project_delta(self, delta):
        """Projects a perturbation (not a point) onto the ball: clip for L∞, radial rescale for L2."""
        if self.norm == "linf":
            return tf.clip_by_value(delta, -self.eps, self.eps)
        norms = per_example_norm(delta, "l2")
        return delta * expand_like(tf.minimum(1.0, self.eps / tf.maximum(norms, 1e-12)), delta)

    def ascent_step(self, x_adv, direction, step_size, x):
        """One projected steepest-ascent step ``Π(x_adv + step_size · d(direction))`` around ``x``, with d
        the norm's steepest-ascent direction (``direction`` is a gradient, or a momentum for MI-FGSM)."""
        return self.project(x_adv + step_size * self.steepest_ascent(direction), x)

    def random_point(self, x, seed):
        """A point drawn uniformly from the ball around ``x`` (then clipped to the range).

        ``seed`` is a stateless-RNG seed (shape [2] int32/int64 tensor) so attacks are reproducible.
        """
        if self.norm == "linf":
            delta = tf.random.stateless_uniform(tf.shape(x), seed, -self.eps, self.eps, dtype=x.dtype)
        else:
            # Uniform in the L2 ball: Gaussian direction, radius eps · u^(1/d).
            direction = tf.random.stateless_normal(tf.shape(x), seed, dtype=x.dtype)
            direction /= expand_like(tf.maximum(per_example_norm(direction, "l2"), 1e-12), x)
            dim = tf.cast(tf.reduce_prod(tf.shape(x)[1:]), x.dtype)
            u = tf.random.stateless_uniform(tf.shape(x)[:1], tf.random.experimental.stateless_split(seed, 2)[1],
                                            dtype=x.dtype)
            delta = direction * expand_like(self.eps * u ** (1.0 / dim), x)
        return tf.clip_by_value(x + delta, self.clip_min, self.clip_max)

    def steepest_ascent(self, grad):
        """The unit-norm direction maximising ⟨grad, d⟩ under this norm: sign(g) for L∞, g/‖g‖₂ for L2."""
        if self.norm == "linf":
            return tf.sign(grad)
        return grad / expand_like(tf.maximum(per_example_norm(grad, "l2"), 1e-12), grad)

    def get_config(self):
        return dataclasses.asdict(self)


def per_example_norm(delta, norm):
    """‖δ_i‖ per example over all non-batch axes; ``norm`` is "linf" or "l2"."""
    flat = tf.reshape(delta, [tf.shape(delta)[0], -1])
    if norm == "linf":
        return tf.reduce_max(tf.abs(flat), axis=1)
    return tf.sqrt(tf.reduce_sum(tf.square(flat), axis=1))


def expand_like(per_example, x):
    """Reshapes a [N] tensor to [N, 1, 1, ...] to broadcast against ``x``."""
    return tf.reshape(per_example, tf.concat([tf.shape(per_example), tf.ones([tf.rank(x) - 1], tf.int32)], 0))
