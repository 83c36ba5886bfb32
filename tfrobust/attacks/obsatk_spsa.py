"""ObsAtk-SPSA: the observation attack for denoisers without gradients (TFLite, served endpoints).

The same problem as ``ObsAtk`` (maximise ‖f(y + δ) − x‖² over zero-mean δ with ‖δ‖₂ ≤ ε, then clip),
with the gradient replaced by an SPSA estimate from queries only (Uesato et al. 2018): per step,
``samples`` random zero-mean Rademacher directions u are each evaluated on both sides,

    ĝ = 1/n · Σ_u [L(y + δ + c·u) − L(y + δ − c·u)] / (2c) · u,   L(y′) = ‖f(y′) − x‖²,

then δ moves by ``step_size``·ε along ĝ/‖ĝ‖ (already zero-mean: every u is) and is projected with
``project_zero_mean_ball``; the iterate with the highest queried loss is kept. Probes are clipped into
the valid range, as a deployed model only takes valid images.

Like ``score_based.ScoreBasedAttack`` the loop runs eagerly in NumPy (one batched model call per step:
all probes of all images stacked), so ``model_fn`` may be a NumPy ``predict`` (``TFLiteArtifact``).
Queries per image: ``steps · (2 · samples + 1) + 1`` (``last_counts["forward"]`` sums them over the batch).
"""

import numpy as np
import tensorflow as tf

from tfrobust.attacks.base import QUERY_BASED
from tfrobust.attacks.compiled_attack import CompiledAttack
from tfrobust.attacks.obsatk import EPS_UNITS, validate_pair
from tfrobust.errors import TfrobustError, check_choice, check_int, check_number


def project_zero_mean_ball_np(delta, eps):
    """NumPy ``project_zero_mean_ball`` (eq. 2.2) for [N, ...] perturbations and [N] radii."""
    flat = delta.reshape(len(delta), -1)
    flat = flat - flat.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    return (flat * np.minimum(1.0, np.asarray(eps).reshape(-1, 1) / np.maximum(norms, 1e-12))).reshape(delta.shape)


class ObsAtkSPSA(CompiledAttack):
    """Query-only ObsAtk (see the module docstring).

    Args:
      eps, eps_unit, clip_min, clip_max: as in ``ObsAtk`` (budget per pixel ε·√m, or absolute).
      steps: ascent steps ≥ 1.
      samples: directions per step ≥ 1 (two queries each).
      probe: the finite-difference size c > 0 as a fraction of the budget's per-pixel value ε/√m
        (default 1: probes of the attack's own scale).
      step_size: fraction of the budget per step > 0 (default 2.5/steps).
      seed: the direction stream (``numpy.random.default_rng([seed, call])``).

    Call: ``attack(predict_fn, y_noisy, x_clean) -> y_adv``; ``predict_fn`` maps a float32 NumPy batch
    to denoised images.
    """

    kind = QUERY_BASED

    def __init__(self, *, eps, eps_unit="per_pixel", steps=10, samples=16, probe=1.0, step_size=None,
                 clip_min=0.0, clip_max=1.0, seed=0):
        check_number("eps", eps, 0.0, low_inclusive=False)
        check_choice("eps_unit", eps_unit, EPS_UNITS)
        check_int("steps", steps, 1)
        check_int("samples", samples, 1)
        check_number("probe", probe, 0.0, low_inclusive=False)
        super().__init__(norm="l2", eps=eps, clip_min=clip_min, clip_max=clip_max, seed=seed)
        self.eps_unit = eps_unit
        self.steps = int(steps)
        self.samples = int(samples)
        self.probe = float(probe)
        step_size = 2.5 / self.steps if step_size is None else step_size
        check_number("step_size", step_size, 0.0, low_inclusive=False)
        self.step_size = float(step_size)

    def __call__(self, model_fn, x, y):
        observed, clean = (t.numpy() for t in validate_pair(x, y, self.threat.clip_min, self.threat.clip_max))
        rng = np.random.default_rng([self.seed, self._calls])
        self._calls += 1
        queries = [0]
        low, high = self.threat.clip_min, self.threat.clip_max

        def loss(points, targets):
            restored = np.asarray(model_fn(np.ascontiguousarray(points, np.float32)), np.float64)
            queries[0] += len(points)
            if restored.shape != points.shape:
                raise TfrobustError(f"the denoiser must return images shaped like its input {points.shape[1:]}, "
                                    f"got {restored.shape[1:]}")
            return np.sum((restored - targets) ** 2, axis=tuple(range(1, points.ndim)))

        n, shape = len(observed), observed.shape[1:]
        m = int(np.prod(shape))
        budget = self.threat.eps * (np.sqrt(m) if self.eps_unit == "per_pixel" else 1.0)
        probe = self.probe * budget / np.sqrt(m)
        delta = np.zeros_like(observed, dtype=np.float64)
        best, best_loss = delta.copy(), loss(observed, clean)
        repeated_clean = np.repeat(clean, 2 * self.samples, axis=0)
        for _ in range(self.steps):
            directions = rng.choice([-1.0, 1.0], size=(n, self.samples) + shape)
            directions = directions - directions.reshape(n, self.samples, -1).mean(axis=2).reshape(
                (n, self.samples) + (1,) * len(shape))
            center = (observed + delta)[:, None]
            probes = np.concatenate([center + probe * directions, center - probe * directions], axis=1)
            values = loss(np.clip(probes, low, high).reshape((-1,) + shape), repeated_clean)
            values = values.reshape(n, 2, self.samples)
            slopes = (values[:, 0] - values[:, 1]) / (2 * probe)
            grad = np.mean(slopes.reshape((n, self.samples) + (1,) * len(shape)) * directions, axis=1)
            norms = np.linalg.norm(grad.reshape(n, -1), axis=1).reshape((n,) + (1,) * len(shape))
            delta = project_zero_mean_ball_np(delta + self.step_size * budget * grad / np.maximum(norms, 1e-12),
                                              np.full(n, budget))
            current = loss(np.clip(observed + delta, low, high), clean)
            better = current > best_loss
            best[better], best_loss[better] = delta[better], current[better]
        self.last_counts = {"forward": queries[0], "backward": 0}
        return tf.constant(np.clip(observed + best, low, high), tf.float32)

    def _perturb(self, model_fn, x, y, seed):
        raise NotImplementedError("ObsAtkSPSA runs eagerly in NumPy")

    def _config(self):
        return {"eps_unit": self.eps_unit, "steps": self.steps, "samples": self.samples, "probe": self.probe,
                "step_size": self.step_size}


__all__ = ["ObsAtkSPSA", "project_zero_mean_ball_np"]
