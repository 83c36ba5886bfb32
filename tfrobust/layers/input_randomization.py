"""IRd: random resizing + random zero padding of the input (Xie et al. 2018; thesis §3.4.3)."""

import keras
import tensorflow as tf

from tfrobust.errors import TfrobustError, check_choice, check_int

RNGS = ("seed_generator", "stateful_op")


@keras.saving.register_keras_serializable(package="tfrobust")
class InputRandomization(keras.layers.Layer):
    """Resizes each H×H image to s×s (nearest neighbour) with s uniform in the integers
    [low, high), then zero-pads it at a uniformly random offset to high×high — in training *and* at
    inference (the randomness is the defense). Each example of a batch gets its own s and offset.

    It is a randomised defense: evaluate it with ``tfrobust.attacks.EOT`` (the gradient of the
    expected output) and expect the ``stochastic`` sanity check to fire
    (``tfrobust.evaluation.defense_analyses.eot_evaluation`` does both).

    Randomness and exports (``rng``):
      "seed_generator" (default): Keras ``SeedGenerator(seed)`` — stateless random ops driven by a
        counter variable that advances at every call. Two layers built with the same seed give the
        same sequence of draws, different seeds different ones. ``.keras`` files keep the seed but not
        the counter: a reloaded model replays the sequence from its start. A SavedModel stores the
        counter at export: every call of the reloaded model draws anew, and each fresh load replays the
        sequence from that counter. TFLite: not convertible to builtin ops
        (``StatelessRandomUniformV2`` needs SELECT_TF_OPS, which the ai_edge_litert runtime lacks).
      "stateful_op": TensorFlow's stateful ``RandomUniform`` op with op seed ``seed``. Converts to the
        builtin TFLite ``RANDOM_UNIFORM`` op (fresh draws at every ``invoke``) and runs in SavedModels;
        reproducible only together with TensorFlow's global seed (``tf.random.set_seed``) and call
        order, not per layer.

    Args:
      size_range: (low, high) with H ≤ low < high: resized sizes s ∈ [low, high), output high×high.
        Xie et al.: (299, 331) for 299×299 ImageNet images.
      seed: integer seed (None: unseeded).
      rng: "seed_generator" or "stateful_op" (see above).

    Call arguments:
      inputs: square images [N, H, H, C]; the transformation does not depend on ``training``.

    Example:
      >>> randomised = InputRandomization((28, 32), seed=0)(images)   # → [N, 32, 32, C]

    Reference: Xie, Wang, Zhang, Ren, Yuille, "Mitigating Adversarial Effects Through Randomization",
    ICLR 2018, §3; Yan, thesis §3.4.3 (CNN-IRd, TisODE-IRd, Table 3.4). Choices: per-example draws
    (the paper processes one image at a time); nearest-neighbour resizing as in the authors' code,
    computed as a gather so the output shape is static; zero padding.
    """

    def __init__(self, size_range, seed=None, rng="seed_generator", **kwargs):
        super().__init__(**kwargs)
        values = tuple(size_range) if isinstance(size_range, (list, tuple)) else ()
        if (len(values) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in values)
                or not 1 <= values[0] < values[1]):
            raise TfrobustError(f"size_range must be (low, high) integers with 1 <= low < high, got {size_range!r}")
        if seed is not None:
            check_int("seed", seed, 0)
        check_choice("rng", rng, RNGS)
        self.size_range = values
        self.seed = seed
        self.rng = rng
        if rng == "seed_generator":
            self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[1] is None or input_shape[1] != input_shape[2]:
            raise TfrobustError(f"InputRandomization expects square images [N, H, H, C], got {input_shape}")
        check_size_range(self.size_range, int(input_shape[1]))

    def compute_output_shape(self, input_shape):
        high = self.size_range[1]
        return (input_shape[0], high, high, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "size_range": list(self.size_range), "seed": self.seed, "rng": self.rng}

    def call(self, inputs, training=None):
        del training  # random at inference too
        x = inputs
        size = x.shape[1]
        low, high = self.size_range
        batch = tf.shape(x)[0]
        if self.rng == "seed_generator":
            u = keras.random.uniform((batch, 3), seed=self.seed_generator)
        else:
            u = tf.random.uniform(tf.stack([batch, 3]), seed=self.seed)
        resized = low + tf.minimum(tf.cast(tf.floor(u[:, 0] * (high - low)), tf.int32), high - low - 1)
        slack = high - resized + 1
        top = tf.minimum(tf.cast(tf.floor(u[:, 1] * tf.cast(slack, u.dtype)), tf.int32), slack - 1)
        left = tf.minimum(tf.cast(tf.floor(u[:, 2] * tf.cast(slack, u.dtype)), tf.int32), slack - 1)
        rows, row_valid = _source_index(top, resized, size, high)
        cols, col_valid = _source_index(left, resized, size, high)
        y = tf.gather(x, rows, axis=1, batch_dims=1)
        y = tf.gather(y, cols, axis=2, batch_dims=1)
        valid = tf.logical_and(row_valid[:, :, None], col_valid[:, None, :])
        return y * tf.cast(valid, y.dtype)[..., None]


def _source_index(offset, resized, size, high):
    """Per output coordinate: the nearest-neighbour source index of an image of ``size`` resized to
    ``resized`` and placed at ``offset`` (clipped), and whether the coordinate lies in the image."""
    position = tf.range(high, dtype=tf.int32)[None, :] - offset[:, None]
    valid = tf.logical_and(position >= 0, position < resized[:, None])
    # floor(position · size / resized): TF's nearest-neighbour rule without half-pixel centres.
    source = tf.math.floordiv(position * size, resized[:, None])
    return tf.clip_by_value(source, 0, size - 1), valid


def check_size_range(size_range, image_size):
    """Raises the one-line error of a size range that would shrink an ``image_size`` image."""
    low, high = size_range
    if low < image_size:
        raise TfrobustError(f"size_range must not shrink the image: need {image_size} <= low < high, "
                            f"got {tuple(size_range)} for {image_size}x{image_size} images")
    if high <= low:
        raise TfrobustError(f"size_range must be (low, high) with low < high, got {tuple(size_range)}")
