"""ODEBlock (thesis eq. 3.1–3.5): layer contract, analytic linear dynamics for every solver, solver
agreement, steady-state loss, NFE, bad input. The ODE nets are tested in tests/models/test_ode_nets.py."""

import keras
import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import tensorflow as tf

from tests.layer_checks import check_layer
from tfrobust.errors import TfrobustError
from tfrobust.layers.ode_block import ConvDynamics, ODEBlock, with_solver

A = (0.5 * np.random.default_rng(0).standard_normal((3, 3))).astype(np.float32)
Z0 = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)


@keras.saving.register_keras_serializable(package="tfrobust_tests")
class LinearDynamics(keras.layers.Layer):
    """f(z) = A z (or A z scaled by 0 for ``zero``)."""

    def __init__(self, matrix, **kwargs):
        super().__init__(**kwargs)
        self.matrix = np.asarray(matrix, np.float32).tolist()

    def call(self, z, training=None):
        return tf.einsum("ij,nj->ni", tf.constant(self.matrix, z.dtype), z)

    def get_config(self):
        return {**super().get_config(), "matrix": self.matrix}


@pytest.mark.parametrize("kwargs", [{"solver": "rk4", "steps": 2}, {"solver": "euler", "steps": 2}],
                         ids=["rk4", "euler-time"])
def test_ode_block_layer_contract(kwargs, tmp_path):
    time_dependent = kwargs["solver"] == "euler"
    check_layer(lambda: ODEBlock(ConvDynamics(time_dependent=time_dependent), **kwargs), (4, 4, 4),
                expected_output_shape=(4, 4, 4), tmp_path=tmp_path)


@pytest.mark.parametrize("solver, steps, tolerance", [("euler", 400, 3e-2), ("rk4", 8, 2e-4), ("dopri5", 1, 1e-4)])
def test_linear_dynamics_match_the_matrix_exponential(solver, steps, tolerance):
    block = ODEBlock(LinearDynamics(A), t1=1.0, solver=solver, steps=steps, rtol=1e-6, atol=1e-6)
    exact = Z0 @ scipy.linalg.expm(A).T
    np.testing.assert_allclose(block(Z0), exact, atol=tolerance)
    if solver != "dopri5":
        assert int(block.nfe.numpy()) == steps * {"euler": 1, "rk4": 4}[solver]
    else:
        assert int(block.nfe.numpy()) > 6  # the solver's own count, updated by the call


def test_solvers_agree_on_conv_dynamics():
    x = tf.random.stateless_normal([2, 4, 4, 4], [0, 1])
    rk4 = ODEBlock(ConvDynamics(), solver="rk4", steps=8)
    reference = rk4(x)
    dopri5 = with_solver(keras.Sequential([keras.Input((4, 4, 4)), rk4]), "dopri5", rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dopri5(x), reference, atol=1e-3)
    euler = ODEBlock.from_config({**rk4.get_config(), "solver": "euler", "steps": 64})
    euler(x)
    euler.set_weights(rk4.get_weights())
    np.testing.assert_allclose(euler(x), reference, atol=5e-2)


class Zero(keras.layers.Layer):
    def call(self, z, training=None):
        return tf.zeros_like(z)


@pytest.mark.parametrize("solver", ["rk4", "dopri5"])
def test_steady_state_loss_is_zero_for_zero_dynamics(solver):
    zero = ODEBlock(Zero(), solver=solver, steady_state_weight=1.0)
    np.testing.assert_allclose(zero(Z0, training=True), Z0, atol=1e-5)  # nothing moves (dopri5: to rounding)
    assert [float(v) for v in zero.losses] == [0.0]


def _steady_state_integral(start, end, count):
    """∫ |A e^{At} z0| dt over [start, end] per element, by Simpson's rule on ``count`` points."""
    times = np.linspace(start, end, count)
    values = np.stack([np.abs(Z0 @ scipy.linalg.expm(A * t).T @ A.T) for t in times])
    return scipy.integrate.simpson(values, x=times, axis=0)


# DormandPrince runs its while-loop step by step in eager mode (≈ 20 s here); RK4 covers the fast path.
@pytest.mark.parametrize("solver", ["rk4", pytest.param("dopri5", marks=pytest.mark.slow)])
def test_steady_state_loss_matches_the_analytic_integral(solver):
    block = ODEBlock(LinearDynamics(A), solver=solver, steps=8, rtol=1e-6, atol=1e-6, steady_state_weight=0.5)
    block(Z0, training=False)
    assert block.losses == []  # inference: no loss
    block(Z0, training=True)
    # Eq. 3.5 per sample (l2 norm of the integral over [T, 2T]), averaged over the batch, × the weight.
    integral = _steady_state_integral(1.0, 2.0, 201)
    np.testing.assert_allclose(float(block.losses[0]), 0.5 * np.mean(np.linalg.norm(integral, axis=1)), rtol=1e-3)
    mean = ODEBlock(LinearDynamics(A), solver=solver, steps=8, steady_state_weight=1.0, steady_state_norm="mean",
                    steady_state_interval=(1.5, 2.0))
    mean(Z0, training=True)
    np.testing.assert_allclose(float(mean.losses[0]), np.mean(_steady_state_integral(1.5, 2.0, 101)), rtol=2e-3)


@pytest.mark.parametrize("kwargs, message", [
    ({"t1": 0}, "t1"), ({"t1": -1.0}, "t1"), ({"solver": "adams"}, "solver"), ({"steps": 0}, "steps"),
    ({"rtol": 0}, "rtol"), ({"steady_state_weight": -0.1}, "steady_state_weight"),
    ({"steady_state_interval": (0.5, 0.8)}, "steady_state_interval"),
    ({"steady_state_interval": (-0.1, 2.0)}, "steady_state_interval"), ({"steady_state_norm": "l1"}, "norm"),
])
def test_bad_arguments_fail_at_construction(kwargs, message):
    with pytest.raises(TfrobustError, match=message) as error:
        ODEBlock(ConvDynamics(), **kwargs)
    assert "\n" not in str(error.value)


@pytest.mark.slow
def test_dopri5_block_layer_contract(tmp_path):
    check_layer(lambda: ODEBlock(ConvDynamics(), solver="dopri5"), (4, 4, 4), expected_output_shape=(4, 4, 4),
                tflite="skip: DormandPrince's TensorListReserve needs a static batch size for builtin TFLite ops, "
                       "and SELECT_TF_OPS models cannot run in the ai_edge_litert runtime",
                tmp_path=tmp_path)


def test_a_steady_state_interval_may_start_before_t1_as_released():
    """TisODE's released code integrates |f| over [0.9, 1.5] with T = 1: the interval may start before t1;
    the prediction is unchanged (same fixed grid) and the loss is the integral over the whole interval."""
    block = ODEBlock(LinearDynamics(A), solver="rk4", steps=8, steady_state_weight=1.0, steady_state_norm="mean",
                     steady_state_interval=(0.5, 1.5))  # 0.5 is a point of the 1/8 grid
    prediction = block(Z0, training=False).numpy()
    np.testing.assert_allclose(block(Z0, training=True).numpy(), prediction, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(float(block.losses[0]), np.mean(_steady_state_integral(0.5, 1.5, 201)), rtol=2e-3)
    with pytest.raises(TfrobustError, match="starts before t1"):
        block.steady_state_loss(prediction)
