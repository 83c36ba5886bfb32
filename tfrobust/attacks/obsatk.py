"""ObsAtk: the observation-based zero-mean attack on image denoisers (Yan, thesis §2.3, Algorithm 1).

A denoiser ``f`` maps a noisy observation y = x + v to an estimate of the clean image x. ObsAtk looks
for the zero-mean perturbation of the *observation* that hurts the reconstruction most (eq. 2.1):

    δ* = argmax_δ ‖f(y + δ) − x‖²   s.t.  ‖δ‖₂ ≤ ε,  M(δ) = (1/m) Σᵢ δᵢ = 0,

solved by projected gradient ascent with the two-step projection of eq. 2.2 — onto the zero-mean
hyperplane (subtract the mean), then onto the ε-ball (radial rescale) — which Theorem 2.3.1 shows is
the exact Euclidean projection onto the intersection (``project_zero_mean_ball``; the test checks it
against a constrained solver). The result is clipped into the valid range (Algorithm 1, line 6).

Denoisers are image-to-image, so the attack is called as ``attack(denoiser_fn, y_noisy, x_clean)``:
the "labels" of the classifier attacks are the ground-truth images. ``Transfer`` and the evaluation
targets work unchanged with that convention.

``ZeroMeanNoise`` is the baseline ObsAtk must beat: random zero-mean noise of exactly the same norm.
"""

import numpy as np
import tensorflow as tf

from tfrobust.attacks.base import QUERY_BASED, RANGE_TOLERANCE
from tfrobust.attacks.compiled_attack import CompiledAttack
from tfrobust.attacks.threat_model import expand_like, per_example_norm
from tfrobust.errors import TfrobustError, check_choice, check_int, check_number

EPS_UNITS = ("per_pixel", "absolute")


def zero_mean(delta):
    """Eq. 2.2a: δ − (δᵀn / ‖n‖²)·n with n = 1, i.e. δ minus its mean over all non-batch axes."""
    axes = tf.range(1, tf.rank(delta))
    return delta - tf.reduce_mean(delta, axis=axes, keepdims=True)


def project_zero_mean_ball(delta, eps):
    """Eq. 2.2: the Euclidean projection of each δ onto {z : ‖z‖₂ ≤ ε, mean(z) = 0} (Theorem 2.3.1).

    Args:
      delta: perturbations [N, ...].
      eps: the radius: a scalar or one per example [N].
    """
    projected = zero_mean(delta)
    norms = per_example_norm(projected, "l2")
    eps = tf.broadcast_to(tf.cast(eps, projected.dtype), tf.shape(norms))
    return projected * expand_like(tf.minimum(1.0, eps / tf.maximum(norms, 1e-12)), projected)


def budget_of(eps, eps_unit, shape):
    """The absolute L2 budget for images of ``shape`` [N, H, W, C]: ``eps`` or ``eps·√m`` (m = H·W·C)."""
    if eps_unit == "absolute":
        return tf.constant(eps, tf.float32)
    return tf.constant(eps, tf.float32) * tf.sqrt(tf.cast(tf.reduce_prod(shape[1:]), tf.float32))


def random_zero_mean_start(shape, budget, seed):
    """A random point of the zero-mean ε-ball per example: direction P(n)/‖P(n)‖ with n ~ N(0, I) and P the
    zero-mean projection, norm ``u·ε`` with u ~ U(0, 1) (the radius of L2-PGD's usual random start, not a
    volume-uniform draw: the start should not sit on the sphere almost surely in high dimension).

    Args:
      shape: the observations' shape [N, ...] (a tensor or list); budget: absolute ε (scalar or [N]);
      seed: a stateless seed ([2] ints).
    """
    noise_seed, radius_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    direction = zero_mean(tf.random.stateless_normal(shape, noise_seed))
    direction /= expand_like(tf.maximum(per_example_norm(direction, "l2"), 1e-12), direction)
    radius = tf.random.stateless_uniform(tf.reshape(shape[0], [1]), radius_seed) * tf.broadcast_to(
        tf.cast(budget, tf.float32), tf.reshape(shape[0], [1]))
    return direction * expand_like(radius, direction)


def obsatk_delta(gradient_fn, observed, budget, *, steps, step_size, initial=None):
    """Algorithm 1, lines 1–5, in TF ops: δ after ``steps`` projected ascent steps from δ = 0 (or from
    ``initial``, a point of the zero-mean ball of the same shape, for restarts: ``random_zero_mean_start``).

    Args:
      gradient_fn: δ-free callable ``gradient_fn(y_adv) -> ∇ ‖f(y_adv) − x‖²`` (per example, summed is fine).
      observed: the noisy observations y [N, H, W, C] (float32).
      budget: absolute ε (scalar or [N]).
      steps: T ≥ 1; step_size: η, relative to ``budget`` (each step moves δ by η·budget).

    Choice (the thesis writes line 3 as δ ← δ + η∇ without a norm): the step follows the *normalised*
    gradient projected on the zero-mean plane — the L2 steepest-ascent direction inside the feasible
    subspace, as L2-PGD does (Madry et al.) — so η is a fraction of the budget whatever the loss scale;
    line 4's projection onto the plane is then exact by construction and line 5 rescales into the ball.
    """
    budget = tf.broadcast_to(tf.cast(budget, tf.float32), tf.shape(observed)[:1])

    def body(i, delta):
        grad = zero_mean(tf.cast(gradient_fn(observed + delta), tf.float32))
        direction = grad / expand_like(tf.maximum(per_example_norm(grad, "l2"), 1e-12), grad)
        delta = delta + step_size * expand_like(budget, delta) * direction
        # A SavedModel's output has an open batch axis: keep the loop variable's static shape.
        return i + 1, tf.ensure_shape(tf.stop_gradient(project_zero_mean_ball(delta, budget)), observed.shape)

    start = tf.zeros_like(observed) if initial is None else tf.ensure_shape(
        project_zero_mean_ball(tf.cast(initial, tf.float32), budget), observed.shape)
    _, delta = tf.while_loop(lambda i, _: i < steps, body, (tf.constant(0), start), maximum_iterations=steps)
    return delta


class ObsAtk(CompiledAttack):
    """Observation-based zero-mean attack (Algorithm 1) on a denoiser.

    Args:
      eps: the budget, > 0: per pixel (``eps_unit="per_pixel"``: ε = eps·√m with m = H·W·C, the thesis'
        "Atk-5/255" is eps=5/255) or an absolute L2 norm (``"absolute"``).
      eps_unit: "per_pixel" (default) or "absolute".
      steps: PGD iterations T ≥ 1 (5 in the thesis' evaluation, 1 in HAT).
      step_size: η as a fraction of the budget, > 0; default 2.5/T (Madry's rule: the path can cross
        the ball; one step of size ≥ 1 lands on the sphere).
      clip_min, clip_max: the valid range of observations (Algorithm 1 line 6).
      random_start: start from a random point of the zero-mean ε-ball (``random_zero_mean_start``, a new
        draw per call) instead of δ = 0 (Algorithm 1). Off by default: the thesis' ObsAtk is deterministic;
        restarts (call the attack again, keep the worst per image) need it.
      seed: seed of the random starts (a fresh stream per call; unused without ``random_start``).

    Call: ``attack(denoiser_fn, y_noisy, x_clean) -> y_adv`` with ``denoiser_fn`` images → images,
    ``y_noisy`` and ``x_clean`` float [N, H, W, C] of the same shape in the valid range. The result is
    ``clip(y + δ)``; δ is exactly zero-mean with ‖δ‖ ≤ ε before the clip, which may shrink δ at
    saturated pixels (and so move its mean) — the thesis' order of operations.

    Cost: ``steps`` forward and backward passes per image (``last_counts``).

    Reference: H. Yan, "Robust Vision: ..." PhD thesis, ch. 2 (eq. 2.1–2.2, Theorem 2.3.1, Algorithm 1);
    Yan et al., "Towards Adversarially Robust Deep Image Denoising", IJCAI 2022.
    """

    def __init__(self, *, eps, eps_unit="per_pixel", steps=5, step_size=None, clip_min=0.0, clip_max=1.0,
                 random_start=False, seed=0):
        check_number("eps", eps, 0.0, low_inclusive=False)
        check_choice("eps_unit", eps_unit, EPS_UNITS)
        check_int("steps", steps, 1)
        if not isinstance(random_start, bool):
            raise TfrobustError(f"random_start must be True or False, got {random_start!r}")
        self.random_start = random_start
        super().__init__(norm="l2", eps=eps, clip_min=clip_min, clip_max=clip_max, seed=seed)
        self.eps_unit = eps_unit
        self.steps = int(steps)
        if step_size is None:
            step_size = 2.5 / self.steps
        check_number("step_size", step_size, 0.0, low_inclusive=False)
        self.step_size = float(step_size)

    def budget(self, shape):
        """The absolute L2 budget for images of ``shape`` (a float)."""
        return float(budget_of(self.threat.eps, self.eps_unit, tf.constant(shape, tf.int64)).numpy())

    def _perturb(self, model_fn, x, y, seed):
        observed, clean = x, y

        def gradient_fn(y_adv):
            with tf.GradientTape() as tape:
                tape.watch(y_adv)
                restored = tf.cast(self._forward(model_fn, y_adv), tf.float32)
                loss = tf.reduce_sum(tf.square(restored - clean))
            self._backward_count.assign_add(tf.cast(tf.shape(y_adv)[0], tf.int64))
            return tape.gradient(loss, y_adv, unconnected_gradients=tf.UnconnectedGradients.ZERO)

        budget = budget_of(self.threat.eps, self.eps_unit, tf.shape(observed))
        initial = random_zero_mean_start(tf.shape(observed), budget, seed) if self.random_start else None
        delta = obsatk_delta(gradient_fn, observed, budget, steps=self.steps, step_size=self.step_size,
                             initial=initial)
        return tf.clip_by_value(observed + delta, self.threat.clip_min, self.threat.clip_max)

    def _config(self):
        return {"eps_unit": self.eps_unit, "steps": self.steps, "step_size": self.step_size,
                "random_start": self.random_start}

    def validate(self, model_fn, x, y):
        observed, clean = validate_pair(x, y, self.threat.clip_min, self.threat.clip_max)
        restored = tf.convert_to_tensor(model_fn(observed[:1]))
        if tuple(restored.shape) != tuple(observed[:1].shape):
            raise TfrobustError(f"the denoiser must return images shaped like its input {tuple(observed[:1].shape)}, "
                                f"got {tuple(restored.shape)}")
        return observed, clean


class ZeroMeanNoise(CompiledAttack):
    """Random zero-mean noise of norm exactly ε (the budget of ``ObsAtk`` with the same arguments).

    δ = ε · P(n)/‖P(n)‖ with n ~ N(0, I) and P the zero-mean projection, then ``clip(y + δ)``: the
    random baseline an observation attack must beat. The denoiser is not evaluated.

    Args: eps, eps_unit, clip_min, clip_max, seed as in ``ObsAtk`` (the noise comes from the call's
    stateless seed stream).
    """

    kind = QUERY_BASED

    def __init__(self, *, eps, eps_unit="per_pixel", clip_min=0.0, clip_max=1.0, seed=0):
        check_number("eps", eps, 0.0, low_inclusive=False)
        check_choice("eps_unit", eps_unit, EPS_UNITS)
        super().__init__(norm="l2", eps=eps, clip_min=clip_min, clip_max=clip_max, seed=seed)
        self.eps_unit = eps_unit

    def _perturb(self, model_fn, x, y, seed):
        del model_fn, y
        noise = zero_mean(tf.random.stateless_normal(tf.shape(x), seed))
        budget = budget_of(self.threat.eps, self.eps_unit, tf.shape(x))
        delta = noise * expand_like(budget / tf.maximum(per_example_norm(noise, "l2"), 1e-12), noise)
        return tf.clip_by_value(x + delta, self.threat.clip_min, self.threat.clip_max)

    def _config(self):
        return {"eps_unit": self.eps_unit}

    def validate(self, model_fn, x, y):
        del model_fn
        return validate_pair(x, y, self.threat.clip_min, self.threat.clip_max)


def validate_pair(observed, clean, clip_min=0.0, clip_max=1.0):
    """Noisy observations and clean images: float, rank 4, same shape, finite, in the range; one line
    naming the problem otherwise. Returns both as float32 tensors."""
    checked = []
    for name, images in (("noisy images", observed), ("clean images", clean)):
        images = tf.convert_to_tensor(images)
        if not images.dtype.is_floating:
            raise TfrobustError(f"{name} must be floating point in [{clip_min}, {clip_max}], got dtype "
                                f"{images.dtype.name}")
        if images.shape.rank != 4:
            raise TfrobustError(f"{name} must be 4-D (N, H, W, C), got shape {tuple(images.shape)}")
        values = images.numpy()
        if not np.all(np.isfinite(values)):
            raise TfrobustError(f"{name} contain NaN or infinite values")
        low, high = float(values.min(initial=0.0)), float(values.max(initial=0.0))
        if low < clip_min - RANGE_TOLERANCE or high > clip_max + RANGE_TOLERANCE:
            raise TfrobustError(f"{name} must lie in [{clip_min}, {clip_max}], found values in [{low:.4g}, {high:.4g}]")
        checked.append(tf.cast(images, tf.float32))
    if checked[0].shape != checked[1].shape:
        raise TfrobustError(f"noisy images {tuple(checked[0].shape)} and clean images {tuple(checked[1].shape)} "
                            "must have the same shape")
    return checked[0], checked[1]


__all__ = ["EPS_UNITS", "ObsAtk", "ZeroMeanNoise", "budget_of", "obsatk_delta", "project_zero_mean_ball",
           "random_zero_mean_start", "validate_pair", "zero_mean"]
