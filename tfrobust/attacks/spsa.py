"""SPSA (Uesato et al. 2018): Adam on a finite-difference gradient estimate, prediction-only."""

import numpy as np

from tfrobust.attacks.score_based import ScoreBasedAttack
from tfrobust.errors import check_int, check_number

# Adam's constants (as in CleverHans' SPSA optimiser).
BETA_1, BETA_2, ADAM_EPSILON = 0.9, 0.999, 1e-9


class SPSA(ScoreBasedAttack):
    """Simultaneous Perturbation Stochastic Approximation with Adam, inside the threat model's ball.

    Each step estimates the gradient of the loss at the current point x_t from ``samples`` random
    Rademacher directions v_i ∈ {±1}^d, each evaluated on both sides:

        ĝ = 1/n · Σ_i [ℓ(x_t + δ·v_i) − ℓ(x_t − δ·v_i)] / (2δ) · v_i,

    takes one Adam step of size ``learning_rate`` *down* the loss (``ℓ`` is the margin
    z_y − max_{j≠y} z_j, or minus the cross-entropy, so lowering it moves away from y; targeted, it moves
    toward the target), projects onto the ball and the range, and queries the new point. A point stops
    (and keeps that point) as soon as it is adversarial. The probes x_t ± δ·v_i are clipped into the
    valid range (a deployed model may reject anything else), which biases the estimate only along
    coordinates at the range's border.

    Queries per point: 1 for the clean input (points already misclassified stop there), then per step
    ``2 · samples`` probes plus 1 for the new point, so at most ``1 + steps · (2 · samples + 1)``. For
    points that stay robust, the lowest-loss iterate is returned (still classified correctly).

    Args:
      steps: Adam steps, ≥ 1 (the paper uses 100 or more).
      learning_rate: Adam's step size, > 0 (paper: 0.01); in L∞ each coordinate moves by about this much
        per step.
      delta: the probe size δ of the finite differences, > 0 (paper: 0.01).
      samples: directions v_i per step, ≥ 1; each costs two queries, all evaluated in batched calls.
      loss: "margin" (the paper's) or "ce".
      batch_size: most images per model call after the clean query (which scores the batch as given);
        the ``2 · samples`` probes of several points are stacked into one call up to this size, which
        also bounds the memory of a step (about 3 · batch_size images).
      **threat: norm ("linf" as in the paper, or "l2"), eps, clip_min, clip_max, targeted, seed (see
        ``Attack``).

    Call: ``attack(model_fn, x, y)``; ``model_fn`` may be a NumPy-only ``predict`` (e.g. a TFLite
    artifact's), a TF function or a Keras model (see ``score_based``). Any input rank works.

    Reference: Uesato, O'Donoghue, van den Oord & Kohli, "Adversarial Risk and the Dangers of Evaluating
    Against Weak Attacks", ICML 2018 (Algorithm 1, with Adam as in its experiments).

    Choices where the paper is silent or which differ from CleverHans' implementation: the run starts
    at x (CleverHans starts at uniform noise in the L∞ ball); ``samples`` counts directions, each
    evaluated twice (CleverHans' ``spsa_samples`` counts evaluations); probes are clipped to the range;
    all points of a batch are attacked together, each with its own Adam state (CleverHans handles one
    image at a time); the L2 variant uses the same estimate and Adam step with the radial L2 projection.
    """

    def __init__(self, *, steps=100, learning_rate=0.01, delta=0.01, samples=128, loss="margin",
                 batch_size=1024, **threat):
        super().__init__(loss=loss, **threat)
        check_int("steps", steps, 1)
        check_number("learning_rate", learning_rate, 0.0, low_inclusive=False)
        check_number("delta", delta, 0.0, low_inclusive=False)
        check_int("samples", samples, 1)
        check_int("batch_size", batch_size, 1)
        self.steps = int(steps)
        self.learning_rate = float(learning_rate)
        self.delta = float(delta)
        self.samples = int(samples)
        self.batch_size = int(batch_size)

    def _config(self):
        return {"steps": self.steps, "learning_rate": self.learning_rate, "delta": self.delta,
                "samples": self.samples, "loss": self.loss, "batch_size": self.batch_size}

    def _attack(self, predict, x, y, clean_value, rng):
        x_cur = x.copy()
        best, best_value = x.copy(), np.asarray(clean_value, np.float64).copy()
        first_moment = np.zeros(x.shape, np.float32)
        second_moment = np.zeros(x.shape, np.float32)
        done = np.zeros(len(x), bool)
        for step in range(1, self.steps + 1):
            active = np.flatnonzero(~done)
            if not active.size:
                break
            grad = self._gradient(predict, x_cur[active], y[active], rng)
            m = first_moment[active] = BETA_1 * first_moment[active] + (1 - BETA_1) * grad
            v = second_moment[active] = BETA_2 * second_moment[active] + (1 - BETA_2) * grad ** 2
            m_hat, v_hat = m / (1 - BETA_1 ** step), v / (1 - BETA_2 ** step)
            x_new = x_cur[active] - self.learning_rate * m_hat / (np.sqrt(v_hat) + ADAM_EPSILON)
            x_new = x_cur[active] = self._project(x_new, x[active])
            value, success = self._evaluate_in_batches(predict, x_new, y[active])
            better = success | (value < best_value[active])
            best[active[better]] = x_new[better]
            best_value[active[better]] = value[better]
            done[active[success]] = True
        return best

    def _gradient(self, predict, x, y, rng):
        """The SPSA estimate of ∇ℓ at each point of ``x`` (float32, shaped like ``x``)."""
        shape, samples = x.shape[1:], self.samples
        points_per_call = max(1, self.batch_size // (2 * samples))
        grad = np.empty(x.shape, np.float32)
        for start in range(0, len(x), points_per_call):
            chunk = slice(start, start + points_per_call)
            count = len(x[chunk])
            signs = rng.integers(0, 2, size=(count, samples) + shape, dtype=np.int8) * np.int8(2) - np.int8(1)
            signs = signs.astype(np.float32)
            center = x[chunk][:, None]
            probes = np.concatenate([center + self.delta * signs, center - self.delta * signs], axis=1)
            probes = self._clip_range(probes).reshape((count * 2 * samples,) + shape)
            labels = np.repeat(y[chunk], 2 * samples)
            values = self._evaluate_in_batches(predict, probes, labels)[0].reshape(count, 2, samples)
            slopes = (values[:, 0] - values[:, 1]) / (2 * self.delta)  # [count, samples]
            slopes = slopes.reshape((count, samples) + (1,) * len(shape)).astype(np.float32)
            grad[chunk] = np.mean(slopes * signs, axis=1)
        return grad

    def _evaluate_in_batches(self, predict, x, y):
        """``_evaluate`` in model calls of at most ``batch_size`` images."""
        parts = [self._evaluate(predict, x[i:i + self.batch_size], y[i:i + self.batch_size])
                 for i in range(0, len(x), self.batch_size)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
