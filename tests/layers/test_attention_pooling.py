"""AttentionPooling (Liu & JaJa §3.2, eq. 3–5): layer contract, softmax weights, the weighted sum."""

import keras
import numpy as np
import pytest

from tests.layer_checks import check_layer
from tfrobust.errors import TfrobustError
from tfrobust.layers import AttentionPooling


class MeanQueryAttention(AttentionPooling):
    """Test adapter: the shared checks feed one image tensor; use its channel mean as the global feature."""

    def build(self, input_shape):
        super().build([input_shape, (input_shape[0], input_shape[-1])])

    def call(self, inputs, training=None, return_attention_scores=False):
        return super().call([inputs, keras.ops.mean(inputs, axis=(1, 2))], training, return_attention_scores)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def compute_output_spec(self, inputs, training=None, return_attention_scores=False):
        return keras.KerasTensor((inputs.shape[0], inputs.shape[-1]), dtype=self.compute_dtype)


keras.saving.register_keras_serializable(package="tfrobust", name="TestSelfAttention")(MeanQueryAttention)


def test_attention_pooling_passes_the_shared_layer_checks(tmp_path):
    check_layer(lambda: MeanQueryAttention(8), (4, 4, 3), expected_output_shape=(3,), tmp_path=tmp_path)


def test_attention_pooling_in_a_two_input_model_round_trips(tmp_path):
    local, g = keras.Input((4, 4, 3)), keras.Input((5,))
    model = keras.Model([local, g], AttentionPooling(6)([local, g]))
    x = [np.random.default_rng(0).normal(size=(2, 4, 4, 3)).astype("float32"),
         np.random.default_rng(1).normal(size=(2, 5)).astype("float32")]
    model.save(tmp_path / "m.keras")
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "m.keras")(x).numpy(), model(x).numpy(), atol=1e-6)


def test_weights_are_a_softmax_of_the_mlp_scores_and_pool_the_local_features():
    rng = np.random.default_rng(2)
    local = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    g = rng.normal(size=(2, 7)).astype(np.float32)
    layer = AttentionPooling(6)
    h, w = layer([local, g], return_attention_scores=True)
    h, w = h.numpy(), w.numpy()
    assert w.shape == (2, 3, 4) and np.all(w >= 0)
    np.testing.assert_allclose(w.sum(axis=(1, 2)), 1.0, atol=1e-6)
    w1, b1, w2 = layer.get_weights()
    concat = np.concatenate([local, np.broadcast_to(g[:, None, None, :], (2, 3, 4, 7))], axis=-1)  # [l_n; g]
    scores = (np.maximum(concat @ w1 + b1, 0) @ w2)[..., 0]  # eq. 3
    expected_w = np.exp(scores) / np.exp(scores).sum(axis=(1, 2), keepdims=True)  # eq. 4
    np.testing.assert_allclose(w, expected_w, rtol=1e-4)
    np.testing.assert_allclose(h, np.einsum("bhw,bhwc->bc", expected_w, local), rtol=1e-4, atol=1e-5)  # eq. 5


def test_bad_inputs_fail_in_one_line():
    with pytest.raises(TfrobustError, match="hidden_units must be a positive integer"):
        AttentionPooling(0)
    with pytest.raises(TfrobustError, match=r"takes \[local features"):
        AttentionPooling(4)(keras.Input((4, 4, 3)))
