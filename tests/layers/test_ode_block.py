"""ODEBlock (thesis eq. 3.1–3.5): layer contract, analytic linear dynamics for every solver, solver
agreement, steady-state loss, NFE, bad input, ODE nets and their SavedModel reload."""

import keras
import numpy as np
import pytest
import scipy.linalg
import tensorflow as tf

from tests.layer_checks import check_layer
from tfrobust import export, models
from tfrobust.errors import TfrobustError
from tfrobust.layers.ode_block import ConvDynamics, ODEBlock, ode_blocks, with_solver

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
def test_steady_state_loss(solver):
    zero = ODEBlock(Zero(), solver=solver, steady_state_weight=1.0)
    zero(Z0, training=True)
    assert [float(v) for v in zero.losses] == [0.0]
    block = ODEBlock(LinearDynamics(A), solver=solver, steps=8, rtol=1e-6, atol=1e-6, steady_state_weight=0.5)
    block(Z0, training=False)
    assert block.losses == []  # inference: no loss
    block(Z0, training=True)
    # ∫_1^2 |A e^{At} z0| dt, per-sample l2 norm, batch mean (eq. 3.5), by the trapezoid rule.
    times = np.linspace(1.0, 2.0, 2001)
    values = np.stack([np.abs(Z0 @ scipy.linalg.expm(A * t).T @ A.T) for t in times])
    integral = np.trapezoid(values, times, axis=0)
    np.testing.assert_allclose(float(block.losses[0]), 0.5 * np.mean(np.linalg.norm(integral, axis=1)), rtol=1e-3)
    mean = ODEBlock(LinearDynamics(A), solver=solver, steps=8, steady_state_weight=1.0, steady_state_norm="mean",
                    steady_state_interval=(1.5, 2.0))
    mean(Z0, training=True)
    times = np.linspace(1.5, 2.0, 1001)
    values = np.stack([np.abs(Z0 @ scipy.linalg.expm(A * t).T @ A.T) for t in times])
    np.testing.assert_allclose(float(mean.losses[0]), np.mean(np.trapezoid(values, times, axis=0)), rtol=2e-3)


@pytest.mark.parametrize("kwargs, message", [
    ({"t1": 0}, "t1"), ({"t1": -1.0}, "t1"), ({"solver": "adams"}, "solver"), ({"steps": 0}, "steps"),
    ({"rtol": 0}, "rtol"), ({"steady_state_weight": -0.1}, "steady_state_weight"),
    ({"steady_state_interval": (0.5, 2.0)}, "steady_state_interval"), ({"steady_state_norm": "l1"}, "norm"),
])
def test_bad_arguments_fail_at_construction(kwargs, message):
    with pytest.raises(TfrobustError, match=message) as error:
        ODEBlock(ConvDynamics(), **kwargs)
    assert "\n" not in str(error.value)


def _input_gradient(fn, x, y):
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(y, fn(x)))
    return tape.gradient(loss, x).numpy()


@pytest.mark.parametrize("solver", ["rk4", "dopri5"])
def test_odenet_reloads_with_the_same_outputs_and_input_gradients(solver, tmp_path):
    model = models.build("tisode", (12, 12, 1), 3, width=0.0625, solver=solver, steps=2)
    assert model.name == "tisode" and [b.name for b in ode_blocks(model)] == ["ode"]
    x = tf.random.stateless_uniform([2, 12, 12, 1], [5, 5])
    y = tf.constant([0, 2])
    artifact = export.load(export.export_saved_model(model, str(tmp_path), "ode", version=1))
    np.testing.assert_allclose(artifact.predict(x.numpy()), model(x).numpy(), atol=1e-5)
    live = _input_gradient(lambda images: model(images, training=False), x, y)
    assert np.max(np.abs(live)) > 0
    np.testing.assert_allclose(_input_gradient(artifact.logits_fn, x, y), live, atol=1e-6, rtol=1e-3)


def test_ode_builders_and_training_losses():
    x = tf.random.stateless_uniform([2, 8, 8, 1], [6, 6])
    tisode = models.build("tisode", (8, 8, 1), 3, width=0.0625, steps=2)
    tisode(x, training=True)
    assert len(tisode.losses) == 1 and float(tisode.losses[0]) > 0
    odenet = models.build("odenet", (8, 8, 1), 3, width=0.0625, steps=2)
    odenet(x, training=True)
    assert odenet.losses == [] and odenet.get_layer("ode").time_dependent
    cnn = models.build("odenet_cnn", (8, 8, 1), 3, width=0.0625, denoise=True)
    assert cnn.name == "odenet_cnn" and cnn.get_layer("denoise") is not None
    # The CNN: the same layers without the time channel's kernel rows and the ODE block's NFE counter.
    assert cnn.count_params() == odenet.count_params() - 2 * 9 * 4 - 1 + cnn.get_layer("denoise").count_params()
    cifar = models.build("odenet", (32, 32, 3), 10, width=0.25)
    assert cifar.get_layer("features").output.shape[1:] == (8, 8, 16)  # Table 3.9: two stride-2 convs
    with pytest.raises(TfrobustError, match="size_range"):
        models.build("tisode", (8, 8, 1), 3, input_randomization=(6, 10))
    with pytest.raises(TfrobustError, match="steady_state_weight"):
        models.build("odenet_cnn", (8, 8, 1), 3, steady_state_weight=0.1)


@pytest.mark.slow
def test_dopri5_block_layer_contract(tmp_path):
    check_layer(lambda: ODEBlock(ConvDynamics(), solver="dopri5"), (4, 4, 4), expected_output_shape=(4, 4, 4),
                tflite="skip: DormandPrince's TensorListReserve needs a static batch size for builtin TFLite ops, "
                       "and SELECT_TF_OPS models cannot run in the ai_edge_litert runtime",
                tmp_path=tmp_path)


def test_float32_export_copy_of_a_mixed_precision_ode_net_computes_in_float32():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = models.build("tisode", (8, 8, 1), 3, width=0.0625, steps=2)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert model.get_layer("ode").dynamics.compute_dtype == "bfloat16"
    copy = export.float32_model(model)
    dynamics = copy.get_layer("ode").dynamics
    assert dynamics.compute_dtype == "float32" and dynamics.convs[0].compute_dtype == "float32"
    x = tf.random.stateless_uniform([2, 8, 8, 1], [7, 7])
    np.testing.assert_allclose(copy(x), model(x), atol=5e-2)


def test_keras_fit_adds_the_steady_state_loss():
    model = models.build("tisode", (8, 8, 1), 3, width=0.0625, steps=2)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = tf.random.stateless_uniform([4, 8, 8, 1], [8, 8])
    y = tf.constant([0, 1, 2, 0])
    ce = float(tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, model(x, training=True))))
    steady_state = float(tf.add_n(model.losses))
    assert steady_state > 0
    np.testing.assert_allclose(model.train_on_batch(x, y), ce + steady_state, rtol=1e-4)
