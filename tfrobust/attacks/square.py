"""Square Attack (Andriushchenko et al. 2020), L∞ and L2, as configured in AutoAttack."""

import math

import numpy as np

from tfrobust.attacks.score_based import ScoreBasedAttack, per_example_l2
from tfrobust.errors import TfrobustError, check_int, check_number


class Square(ScoreBasedAttack):
    """Square Attack: random search over square-shaped updates, using only the model's predictions.

    Each iteration proposes one change of the current best point inside a random square window (shared
    by the batch) and keeps it for a point only if it strictly lowers that point's loss (or makes the
    point adversarial). The side of the square shrinks with the iteration count along AutoAttack's
    piecewise schedule of ``p``, the fraction of the image area it covers.

    - L∞: the start is ``x + ε·σ`` with one random sign per (image, column, channel) ("vertical
      stripes"); an update sets the window to ``x + ε·σ_c``, one random sign per channel.
    - L2: the start tiles the image with ⌊h/5⌋-sized blocks of the centred "double square" pattern η
      (two stacked rectangles of opposite sign, each a sum of concentric squares with weights
      1/(k+1)²) with random signs per (image, channel), scaled to norm ε. An update moves the
      perturbation mass of a second random window into the first one, adds a new ±η there and
      renormalises the whole perturbation to norm ε.

    Every point is first queried once on the clean input; points already misclassified (or at their
    target) are returned unchanged and cost that one query. Each restart then costs one query for its
    start and one per iteration, and a point stops being queried once it is adversarial, so a point
    costs at most ``1 + restarts · (1 + queries)`` queries. For points where every restart fails, the
    lowest-loss point found is returned (it is still classified correctly).

    Args:
      queries: iterations per restart after the initial query (AutoAttack: 5000), ≥ 1.
      p_init: initial fraction of the image covered by the square, in (0, 1] (AutoAttack: 0.8).
      restarts: independent runs, ≥ 1; each runs only on the points still robust.
      loss: "margin" (AutoAttack's default, z_y − max_{j≠y} z_j) or "ce" (minus the cross-entropy);
        accepting a step needs a strict decrease of this loss or a misclassification.
      rescale_schedule: stretch the ``p`` schedule, written for 10 000 iterations, to ``queries``
        (the original Square code; the class default of AutoAttack's port). AutoAttack's evaluation
        uses False, the default here, so with 5000 queries the square never shrinks below p_init/128.
      **threat: norm ("linf" or "l2"), eps, clip_min, clip_max, targeted, seed (see ``Attack``).

    Call: ``attack(model_fn, x, y)`` with NHWC images ``x``; ``model_fn`` may be a NumPy-only
    ``predict`` (e.g. a TFLite artifact's), a TF function or a Keras model (see ``score_based``).

    Reference: Andriushchenko, Croce, Flammarion & Hein, "Square Attack: a query-efficient black-box
    adversarial attack via random search", ECCV 2020; the port in AutoAttack (fra31/auto-attack,
    ``autoattack/square.py``) as specified in ``AUTOATTACK-SPEC.md`` §5.

    Where we follow AutoAttack's port: window positions (and the L∞ per-channel signs, the L2 transpose
    of η) are drawn once per iteration for the whole batch; positions are drawn from {0, …, h − s − 1}
    (position h − s is never drawn once s < h, so the last row and column only change through the
    start and full-size windows); no re-draw of windows that would not change the image; the p schedule
    is not rescaled by default; a point succeeds when its prediction changes, and its best point is then
    frozen; the L2 union norm n_U is per (image, channel) as in the specification and the original code
    (the AutoAttack file we checked, commit 1706c9b, takes it per image; the two agree for one channel).

    Where we depart: randomness comes from NumPy (``default_rng([seed, call index])``), so streams
    differ from torch's; success is decided by argmax (AutoAttack uses margin ≤ 0 inside the loop and
    re-queries argmax after it, which only differs on exact ties) and no re-query is made; the clean
    query is made inside the attack; a failed point returns its lowest-loss point instead of ``x``;
    the L∞ window side is capped at min(h, w), the L2 side (odd, ≥ 3) too; the L2 start uses
    s₀ = max(⌊min(h, w)/5⌋, 1) with the offset computed per axis, and skips blocks that would cross the
    border (cases where AutoAttack's port fails, e.g. non-square images, fra31/auto-attack#95).
    """

    def __init__(self, *, queries=5000, p_init=0.8, restarts=1, loss="margin", rescale_schedule=False,
                 **threat):
        super().__init__(loss=loss, **threat)
        check_int("queries", queries, 1)
        check_number("p_init", p_init, 0.0, 1.0, low_inclusive=False)
        check_int("restarts", restarts, 1)
        self.queries = int(queries)
        self.p_init = float(p_init)
        self.restarts = int(restarts)
        self.rescale_schedule = bool(rescale_schedule)

    def _config(self):
        return {"queries": self.queries, "p_init": self.p_init, "restarts": self.restarts,
                "loss": self.loss, "rescale_schedule": self.rescale_schedule}

    def _check_shape(self, x):
        if x.ndim != 4:
            raise TfrobustError(f"Square needs NHWC image batches [N, H, W, C], got shape {x.shape}")

    # -- schedule ---------------------------------------------------------------------------------
    def p_selection(self, iteration):
        """The fraction of the image covered by the square at 0-based ``iteration`` (spec §5.1)."""
        it = int(iteration / self.queries * 10000) if self.rescale_schedule else iteration
        for bound, divisor in ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32),
                               (4000, 64), (6000, 128), (8000, 256)):
            if it <= bound:
                return self.p_init / divisor
        return self.p_init / 512

    def window_size(self, iteration, height, width):
        """The side s of the square at ``iteration`` for ``height × width`` images."""
        side = int(round(math.sqrt(self.p_selection(iteration) * height * width)))
        if self.threat.norm == "linf":
            side = max(side, 1)
        else:
            side = max(side, 3)
            side += side % 2 == 0
        return min(side, height, width)

    # -- attack -----------------------------------------------------------------------------------
    def _attack(self, predict, x, y, clean_value, rng):
        x_adv = x.copy()
        best_value = np.asarray(clean_value, np.float64).copy()
        done = np.zeros(len(x), bool)
        run = self._run_linf if self.threat.norm == "linf" else self._run_l2
        for _ in range(self.restarts):
            todo = np.flatnonzero(~done)
            if not todo.size:
                break
            x_run, value, success = run(predict, x[todo], y[todo], rng)
            better = success | (value < best_value[todo])
            x_adv[todo[better]] = x_run[better]
            best_value[todo[better]] = value[better]
            done[todo[success]] = True
        return x_adv

    def _search(self, predict, x, y, x_best, rng, propose):
        """The random search shared by both norms: from ``x_best`` (queried here), ``queries`` rounds of
        ``propose(x_active, x_best_active, iteration, rng) -> candidates`` on the still-robust points,
        accepting strict improvements and successes. Returns (x_best, loss, success)."""
        loss_min, success = self._evaluate(predict, x_best, y)
        for iteration in range(self.queries):
            active = np.flatnonzero(~success)
            if not active.size:
                break
            candidates = propose(x[active], x_best[active], iteration, rng)
            loss, fooled = self._evaluate(predict, candidates, y[active])
            improved = loss < loss_min[active]
            loss_min[active[improved]] = loss[improved]
            accept = improved | fooled
            x_best[active[accept]] = candidates[accept]
            success[active[fooled]] = True
        return x_best, loss_min, success

    def _window(self, rng, side, height, width):
        """A window position drawn as AutoAttack's random_int: uniform over {0, …, extent − side − 1}
        (0 when the window spans the image)."""
        top = int((height - side) * rng.random())
        left = int((width - side) * rng.random())
        return slice(top, top + side), slice(left, left + side)

    def _run_linf(self, predict, x, y, rng):
        eps = self.threat.eps
        n, height, width, channels = x.shape
        stripes = _signs(rng, (n, 1, width, channels))
        x_best = self._clip_range(x + eps * stripes)

        def propose(x_cur, x_best_cur, iteration, rng):
            side = self.window_size(iteration, height, width)
            rows, cols = self._window(rng, side, height, width)
            signs = _signs(rng, (channels,))
            window = x_best_cur[:, rows, cols] + 2.0 * eps * signs
            window = np.clip(window, x_cur[:, rows, cols] - eps, x_cur[:, rows, cols] + eps)
            x_best_cur[:, rows, cols] = self._clip_range(window)  # x_best_cur is a copy: the candidates
            return x_best_cur

        return self._search(predict, x, y, x_best, rng, propose)

    def _run_l2(self, predict, x, y, rng):
        eps = self.threat.eps
        n, height, width, channels = x.shape
        delta = np.zeros(x.shape, np.float64)
        block = max(min(height, width) // 5, 1)
        for top in _grid(height, block):
            for left in _grid(width, block):
                pattern = eta(block, rng)[None, :, :, None]
                delta[:, top:top + block, left:left + block] += pattern * _signs(rng, (n, 1, 1, channels))
        x_best = self._clip_range(x + eps * _normalize(delta))

        def propose(x_cur, x_best_cur, iteration, rng):
            side = self.window_size(iteration, height, width)
            first = self._window(rng, side, height, width)
            second = self._window(rng, side, height, width)
            delta = np.subtract(x_best_cur, x_cur, out=x_best_cur)  # x_best_cur is a copy
            old = delta[(slice(None),) + first].astype(np.float64)
            norm_image = per_example_l2(delta)[:, None, None, None]
            # ‖δ‖ on the union of the windows, per (image, channel), from the windows alone.
            union = _channel_sq(old) + _channel_sq(delta[(slice(None),) + second].astype(np.float64))
            overlap = tuple(slice(max(a.start, b.start), min(a.stop, b.stop)) for a, b in zip(first, second))
            union -= _channel_sq(delta[(slice(None),) + overlap].astype(np.float64))
            new = eta(side, rng)[None, :, :, None] * _signs(rng, (len(x_cur), 1, 1, channels))
            new = new + old / (np.sqrt(_channel_sq(old)) + 1e-12)
            budget = np.maximum(eps ** 2 - norm_image ** 2, 0.0) / channels + np.maximum(union, 0.0)
            new = new / (np.sqrt(_channel_sq(new)) + 1e-12) * np.sqrt(budget)
            delta[(slice(None),) + second] = 0.0
            delta[(slice(None),) + first] = new
            scale = eps / (per_example_l2(delta) + 1e-12)
            return self._clip_range(x_cur + delta * scale[:, None, None, None].astype(np.float32))

        return self._search(predict, x, y, x_best, rng, propose)


def eta_rectangles(rows, cols):
    """A rows × cols matrix of concentric squares around its centre (⌊rows/2⌋, ⌊cols/2⌋), the k-th of
    side 2k + 1 weighted 1/(k+1)², normalised to unit Frobenius norm."""
    if rows == 0:
        return np.zeros((0, cols))
    ring = np.maximum(np.abs(np.arange(rows)[:, None] - rows // 2),  # which square a cell is on
                      np.abs(np.arange(cols)[None, :] - cols // 2))
    count = max(rows // 2 + 1, cols // 2 + 1)
    tail = np.cumsum((1.0 / np.arange(1, count + 1) ** 2)[::-1])[::-1]  # tail[k] = Σ_{j≥k} 1/(j+1)²
    matrix = tail[ring]
    return matrix / np.sqrt(np.sum(matrix ** 2))


def eta(side, rng):
    """The side × side "double square": eta_rectangles on the top ⌊side/2⌋ rows, minus it on the rest,
    unit norm, transposed with probability 1/2."""
    half = side // 2
    pattern = np.concatenate([eta_rectangles(half, side), -eta_rectangles(side - half, side)])
    pattern /= np.sqrt(np.sum(pattern ** 2))
    return pattern.T if rng.random() > 0.5 else pattern


def _grid(extent, block):
    """Start positions of the L2 start's blocks along one axis (AutoAttack: ⌊extent/block⌋ blocks from
    offset ⌊(extent − 5·block)/2⌋), skipping blocks that would cross the border."""
    offset = max((extent - 5 * block) // 2, 0)
    return [offset + k * block for k in range(extent // block) if offset + (k + 1) * block <= extent]


def _signs(rng, shape):
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0)


def _channel_sq(values):
    """Per (image, channel) sum of squares over the spatial axes, shaped [n, 1, 1, C]."""
    return np.sum(np.square(values), axis=(1, 2), keepdims=True)


def _normalize(delta):
    return delta / (per_example_l2(delta)[:, None, None, None] + 1e-12)
