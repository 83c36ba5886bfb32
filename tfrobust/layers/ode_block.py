"""Neural-ODE blocks (Yan, thesis ch. 3): ``ODEBlock`` solves dz/dt = f(z) on [0, t1]; TisODE's
steady-state loss (eq. 3.5) is added through Keras ``add_loss``.

Evaluating ODE models honestly. Adaptive solvers are known to mask gradients (Huang et al. 2022: PGD
fails on them while C&W and SPSA do not), and the adjoint gradient of DormandPrince is only accurate to
the solver tolerance. The evaluation recipe for any model with an ODE block is therefore:

1. white-box attacks on the model as deployed;
2. the same attacks crafted on a *fixed-step surrogate* — the same weights with every ODE block
   switched to fixed-step RK4 (``with_solver(model, "rk4", steps=…)``), whose backprop gradients are
   exact — and evaluated on the deployed model (transfer);
3. gradient-free attacks (Square, SPSA) on the deployed model;

reporting the worst case per point. ``tfrobust.evaluation.defense_analyses.ode_evaluation`` runs it.
"""

import keras
import tensorflow as tf

from tfrobust.core.group_norm import group_count
from tfrobust.core.layer_config import with_dtype
from tfrobust.errors import (TfrobustError, check_choice, check_int, check_number, check_positive_float,
                             check_positive_int)
from tfrobust.layers.reconfigure import with_layer_options

SOLVERS = ("euler", "rk4", "dopri5")
#: Function evaluations per step of the fixed-grid solvers.
STAGES = {"euler": 1, "rk4": 4}
STEADY_STATE_NORMS = ("l2", "mean")


@keras.saving.register_keras_serializable(package="tfrobust")
class ConvDynamics(keras.layers.Layer):
    """ODE dynamics of the thesis' ODEnets: ``num_layers`` × [3×3 conv → GroupNorm → ReLU], keeping the
    channel count (thesis Tables 3.5/3.9, "RM"; the TisODE code's ODE function).

    Args:
      num_layers: conv–GroupNorm–ReLU units (2 in the thesis).
      kernel_size: convolution size (3).
      time_dependent: False (TisODE: f(z), the default) or True (vanilla ODEnet: the time t is
        concatenated as an extra input channel before every convolution, as the thesis' ODEnet and
        torchdiffeq's ``ConcatConv2d`` do).

    Call arguments:
      inputs: the state z [N, H, W, C]. t: the time (scalar), used when ``time_dependent``.

    GroupNorm groups: the largest divisor of C that is ≤ 32 (the reference code's min(32, C) for
    C ∈ {16, 32, 64}); He-normal convolutions with bias-free "same" padding.
    """

    def __init__(self, num_layers=2, kernel_size=3, time_dependent=False, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("num_layers", num_layers)
        check_positive_int("kernel_size", kernel_size)
        self.num_layers = int(num_layers)
        self.kernel_size = int(kernel_size)
        self.time_dependent = bool(time_dependent)
        self.convs, self.norms = [], []

    def build(self, input_shape):
        channels = int(input_shape[-1])
        conv_shape = (*input_shape[:-1], channels + int(self.time_dependent))
        for i in range(self.num_layers):
            conv = keras.layers.Conv2D(channels, self.kernel_size, padding="same", use_bias=False,
                                       kernel_initializer="he_normal", dtype=self.dtype_policy,
                                       name=f"conv{i + 1}")
            norm = keras.layers.GroupNormalization(groups=group_count(channels), epsilon=1e-5,
                                                   dtype=self.dtype_policy, name=f"norm{i + 1}")
            conv.build(conv_shape)
            norm.build(input_shape)
            self.convs.append(conv)
            self.norms.append(norm)

    def call(self, inputs, t=None, training=None):
        z = inputs
        for conv, norm in zip(self.convs, self.norms):
            if self.time_dependent:
                time = tf.cast(0.0 if t is None else t, z.dtype)
                z = tf.concat([z, tf.ones_like(z[..., :1]) * time], axis=-1)
            z = tf.nn.relu(norm(conv(z), training=training))
        return z

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "num_layers": self.num_layers, "kernel_size": self.kernel_size,
                "time_dependent": self.time_dependent}


@keras.saving.register_keras_serializable(package="tfrobust")
class ODEBlock(keras.layers.Layer):
    """z(t1) of the initial-value problem dz/dt = f(z) (or f(z, t)), z(0) = inputs (thesis eq. 3.1/3.2).

    Solvers: "rk4" (default) and "euler" integrate on a fixed grid of ``steps`` steps, unrolled: exact
    backprop gradients (what white-box attacks need), builtin TFLite ops with any batch size.
    "dopri5" (opt-in) is ``tfp.math.ode.DormandPrince`` with tolerances ``rtol``/``atol`` and adjoint
    gradients (all variables, those of the dynamics included); it exports to SavedModel (first-order
    input gradients survive a reload), but its TFLite conversion needs a fixed batch size and
    SELECT_TF_OPS kernels the ai_edge_litert runtime lacks. Measured here on a [32, 14, 14, 16] state:
    RK4 with 4 steps 78 ms forward+backward vs 667 ms for DormandPrince at 1e-3 (30 evaluations).

    NFE: ``block.nfe`` (a non-trainable int32 weight) holds the number of evaluations of f in the last
    forward pass: ``steps × stages`` for the fixed solvers (1 stage for Euler, 4 for RK4), the solver's
    count for "dopri5" (updated at every call, in graph mode too). The block reports it through the
    generic layer-diagnostics hook (``diagnostics()`` → ``{"nfe": …}``, see ``tfrobust.core.layer_needs``):
    ``tfrobust.training.DiagnosticsLogger`` (part of ``make_callbacks``) logs it as the ``nfe`` metric of
    each epoch, and the evaluation reads it after a forward pass.

    TisODE steady-state loss (eq. 3.5): with ``steady_state_weight`` w > 0, in training mode
    ``∫ |f(z(t))| dt`` over ``steady_state_interval`` (default [t1, 2·t1], the thesis' [T, 2T]; the
    released code integrates over [0.9, 1.5] with T = 1) is accumulated element-wise along the
    prediction's own trajectory, continued past t1, with the same solver (an augmented state). An
    interval starting before t1 splits the prediction's integration at its start (on a fixed grid
    that is the same grid when the start is a grid point, e.g. 0.9 with step 0.1);
    ``w · mean over the batch of ‖·‖₂`` ("l2", eq. 3.5 per sample) or ``w · mean of all elements``
    ("mean", the released code's reduction) goes to ``add_loss``. Any Keras training loop
    that adds ``model.losses`` picks it up (``AdversarialModel`` does, averaged over its training-mode
    forward passes). Thesis weight 0.1 with "l2"; the released code used 0.01 with "mean" — on a
    16×14×14 state "l2" is ≈ 56× "mean", and 0.1 × "l2" kept a Fashion-MNIST TisODE at chance here (the
    penalty flattened the features), so the ``tisode`` builder defaults to the released code's weighting.

    Mixed precision: the state is integrated in float32 (small steps would round away in bfloat16);
    the dynamics compute in their own policy and their output is cast to the state dtype; the output
    is cast to the block's compute dtype.

    Evaluation: do not trust white-box attacks alone on an ODE model (especially with "dopri5"); see
    the module docstring for the recipe (fixed-step surrogate + Square/SPSA), implemented by
    ``tfrobust.evaluation.defense_analyses.ode_evaluation``.

    Args:
      dynamics: a Keras layer mapping the state to its derivative (same shape); it is called as
        ``dynamics(z, t=t)`` if it has ``time_dependent = True`` (``ConvDynamics(time_dependent=True)``),
        else ``dynamics(z)``. Default: ``ConvDynamics()`` (time-invariant, TisODE).
      t1: end time T > 0 (thesis: 1).
      solver: "rk4", "euler" or "dopri5".
      steps: fixed-grid steps ≥ 1 on [0, t1] (the thesis' Euler step 0.1 is ``steps=10``).
      rtol, atol: DormandPrince tolerances (> 0).
      steady_state_weight: w ≥ 0 of the steady-state loss (0 = off, plain ODEnet).
      steady_state_interval: (start, end) with 0 ≤ start < end and end ≥ t1; default (t1, 2·t1).
      steady_state_norm: "l2" (eq. 3.5) or "mean".

    Call arguments:
      inputs: z(0) [N, ...]. training: passed to the dynamics; enables the steady-state loss.

    Example:
      >>> block = ODEBlock(ConvDynamics(), t1=1.0, solver="rk4", steps=4, steady_state_weight=0.1)
      >>> z_t1 = block(features)          # same shape as features

    Reference: Yan et al., "On Robustness of Neural Ordinary Differential Equations" (ICLR 2020) =
    thesis ch. 3, eq. 3.1–3.5; Chen et al., "Neural Ordinary Differential Equations" (2018). Choices
    where the thesis is silent: RK4 as default solver, float32 state, the l2/mean reductions above, the
    steady-state integral uses the prediction's solver and step size (steps scaled to the interval).
    """

    def __init__(self, dynamics=None, t1=1.0, solver="rk4", steps=4, rtol=1e-3, atol=1e-3,
                 steady_state_weight=0.0, steady_state_interval=None, steady_state_norm="l2", **kwargs):
        super().__init__(**kwargs)
        if isinstance(dynamics, dict):  # from a config: the block's dtype policy wins (float32 export copies)
            dynamics = keras.saving.deserialize_keras_object(with_dtype(dynamics, kwargs.get("dtype")))
        if dynamics is None:
            dynamics = ConvDynamics(name="dynamics")
        if not isinstance(dynamics, keras.layers.Layer):
            raise TfrobustError(f"dynamics must be a keras Layer, got {dynamics!r}")
        check_positive_float("t1", t1)
        check_choice("solver", solver, SOLVERS)
        check_int("steps", steps, 1)
        check_positive_float("rtol", rtol)
        check_positive_float("atol", atol)
        check_number("steady_state_weight", steady_state_weight, 0.0)
        if steady_state_interval is None:
            steady_state_interval = (float(t1), 2.0 * float(t1))
        interval = tuple(float(v) for v in steady_state_interval)
        if len(interval) != 2 or not 0.0 <= interval[0] < interval[1] or interval[1] < float(t1):
            raise TfrobustError(f"steady_state_interval must be (start, end) with 0 <= start < end and "
                                f"end >= t1={t1}, got {steady_state_interval!r}")
        check_choice("steady_state_norm", steady_state_norm, STEADY_STATE_NORMS)
        self.dynamics = dynamics
        self.t1 = float(t1)
        self.solver = solver
        self.steps = int(steps)
        self.rtol = float(rtol)
        self.atol = float(atol)
        self.steady_state_weight = float(steady_state_weight)
        self.steady_state_interval = interval
        self.steady_state_norm = steady_state_norm

    @property
    def time_dependent(self):
        return bool(getattr(self.dynamics, "time_dependent", False))

    @property
    def fixed_nfe(self):
        """Evaluations of f per forward pass of a fixed-grid solver (None for "dopri5")."""
        return self.steps * STAGES[self.solver] if self.solver in STAGES else None

    def build(self, input_shape):
        if not self.dynamics.built:  # a deserialised dynamics layer arrives built
            self.dynamics.build(input_shape)
        self.nfe = self.add_weight(name="nfe", shape=(), dtype="int32", trainable=False,
                                   initializer=keras.initializers.Constant(self.fixed_nfe or 0))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def diagnostics(self):
        """``{"nfe": evaluations of f in the last forward pass}`` (the layer-diagnostics hook)."""
        return {"nfe": self.nfe}

    def get_config(self):
        return {**super().get_config(), "dynamics": keras.saving.serialize_keras_object(self.dynamics),
                "t1": self.t1, "solver": self.solver, "steps": self.steps, "rtol": self.rtol, "atol": self.atol,
                "steady_state_weight": self.steady_state_weight,
                "steady_state_interval": list(self.steady_state_interval),
                "steady_state_norm": self.steady_state_norm}

    # -- the computation --------------------------------------------------------------------------
    def call(self, inputs, training=None):
        z0 = tf.cast(inputs, tf.float32)
        f = self.ode_fn(training)
        if training and self.steady_state_weight > 0 and self.steady_state_interval[0] < self.t1:
            z1, loss = self._prediction_and_early_steady_state(f, z0)
            self.add_loss(self.steady_state_weight * loss)
            return tf.cast(z1, self.compute_dtype)
        z1 = self.integrate(f, z0, 0.0, self.t1)
        if training and self.steady_state_weight > 0:
            self.add_loss(self.steady_state_weight * self.steady_state_loss(z1, training=training))
        return tf.cast(z1, self.compute_dtype)

    def _prediction_and_early_steady_state(self, f, z0):
        """z(t1) and the reduced steady-state integral for an interval starting before t1: integrate
        to the start, then carry ∫|f| along [start, t1] (the prediction's path) and on to the end."""
        start, end = self.steady_state_interval

        def augmented(t, state):
            derivative = f(t, state[0])
            return derivative, tf.abs(derivative)

        z = self.integrate(f, z0, 0.0, start) if start > 0 else z0
        z1, integral = self.integrate(augmented, (z, tf.zeros_like(z)), start, self.t1, record_nfe=False)
        if end > self.t1:
            _, integral = self.integrate(augmented, (z1, integral), self.t1, end, record_nfe=False)
        return z1, self._reduce_steady_state(integral)

    def ode_fn(self, training=None):
        """f(t, z) → dz/dt in the state's dtype (float32)."""
        def f(t, z):
            if self.time_dependent:
                value = self.dynamics(z, t=t, training=training)
            else:
                value = self.dynamics(z, training=training)
            return tf.cast(value, z.dtype)

        return f

    def integrate(self, f, state, t0, t1, *, record_nfe=True):
        """The state at ``t1`` from ``state`` at ``t0`` (a tensor or a tuple of tensors) with the
        block's solver; fixed-grid solvers take ``steps`` steps per ``t1`` of time."""
        if self.solver in STAGES:
            count = max(1, int(round(self.steps * (t1 - t0) / self.t1)))
            return _fixed_grid(f, state, t0, t1, count, self.solver)
        from tensorflow_probability.python.math import ode

        solver = ode.DormandPrince(rtol=self.rtol, atol=self.atol)
        results = solver.solve(f, t0, state, solution_times=[t1])
        if record_nfe:
            self.nfe.assign(tf.cast(results.diagnostics.num_ode_fn_evaluations, tf.int32))
        return tf.nest.map_structure(lambda s: s[-1], results.states)

    def steady_state_loss(self, z1, training=None):
        """The reduced ∫|f(z(t))| dt over ``steady_state_interval``, continuing from z(t1) (before ×w)."""
        f = self.ode_fn(training)
        start, end = self.steady_state_interval
        if start < self.t1:
            raise TfrobustError(f"steady_state_interval {self.steady_state_interval} starts before t1={self.t1}: "
                                "the loss needs the trajectory before z(t1) (call the block in training mode)")
        z = z1
        if start > self.t1:
            z = self.integrate(f, z, self.t1, start, record_nfe=False)

        def augmented(t, state):
            derivative = f(t, state[0])
            return derivative, tf.abs(derivative)

        _, integral = self.integrate(augmented, (z, tf.zeros_like(z)), start, end, record_nfe=False)
        return self._reduce_steady_state(integral)

    def _reduce_steady_state(self, integral):
        if self.steady_state_norm == "mean":
            return tf.reduce_mean(integral)
        flat = tf.reshape(integral, [tf.shape(integral)[0], -1])
        return tf.reduce_mean(tf.norm(flat, axis=-1))


def _fixed_grid(f, state, t0, t1, count, method):
    h = (t1 - t0) / count

    def axpy(a, x, y):
        return tf.nest.map_structure(lambda xi, yi: yi + a * xi, x, y)

    for i in range(count):
        t = t0 + i * h
        k1 = f(t, state)
        if method == "euler":
            state = axpy(h, k1, state)
            continue
        k2 = f(t + h / 2, axpy(h / 2, k1, state))
        k3 = f(t + h / 2, axpy(h / 2, k2, state))
        k4 = f(t + h, axpy(h, k3, state))
        state = tf.nest.map_structure(lambda s, a, b, c, d: s + h / 6 * (a + 2 * b + 2 * c + d),
                                      state, k1, k2, k3, k4)
    return state


# -- model-level helpers ------------------------------------------------------------------------------
def ode_blocks(model):
    """The ODEBlock layers of the functional ``model``."""
    return [layer for layer in model.layers if isinstance(layer, ODEBlock)]


def with_solver(model, solver, *, steps=None, rtol=None, atol=None):
    """A copy of ``model`` (weights copied) whose ODE blocks use ``solver`` (and ``steps`` / tolerances
    when given). ``with_solver(model, "rk4", steps=8)`` is the fixed-step surrogate of the evaluation
    recipe; ``with_solver(model, "dopri5", rtol=1e-5, atol=1e-5)`` a tolerance sweep point."""
    check_choice("solver", solver, SOLVERS)
    if not ode_blocks(model):
        raise TfrobustError(f"model {model.name!r} has no ODEBlock layers")
    changes = {"solver": solver, "steps": steps, "rtol": rtol, "atol": atol}

    def is_nfe_counter(layer, variable):  # the copy counts its own function evaluations
        return isinstance(layer, ODEBlock) and variable is layer.nfe

    return with_layer_options(model, ODEBlock, changes, keep_weight=is_nfe_counter)

