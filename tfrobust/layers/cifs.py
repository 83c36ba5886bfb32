"""CIFS: channel-wise importance-based feature selection (Yan, thesis §4.3.2, eq. 4.1–4.3).

A probe network makes a raw prediction from a block's features; the relevance of each channel is the
gradient of the sum of the probe's top-k logits with respect to a per-channel shift of the features
(eq. 4.1); an importance-mask generating function (IMGF) turns relevances into a non-negative mask
that multiplies the channels (eq. 4.2). Probes and backbone are trained together with the adaptive
loss ℓβ (eq. 4.3).

How the pieces reach training and attacks without changing the serving output:

* ``CIFS`` returns ``[masked_features, probe_logits]``. A model built with CIFS layers keeps its
  ``images → logits`` output (export, TFLite and serving see only the logits); ``probed_model(model)``
  is a functional view with the same weights returning ``{"logits": …, <CIFS layer name>: probe
  logits, …}``, the dict the attacks' ``AuxiliaryLoss`` (adaptive ℓβ attacks) reads.
* Training labels: the thesis replaces the top-1 index by the true label during training. Functional
  models take images only, so a CIFS layer reads the labels from ``training_labels(y)``, a context the
  training step enters around its training-mode forward pass (or from an explicit ``labels=`` call
  argument in a custom model). Without labels it uses the predicted top-k, as at inference.
* The probe term of ℓβ: with ``probe_loss_weight`` w > 0 a CIFS layer adds ``w · CE(probe, y)``
  through Keras ``add_loss`` whenever it runs in training mode with labels, so every training loop
  that adds ``model.losses`` (the ``AdversarialModel`` engine, a custom loop) trains the probes.
  With w = β/L on each of L layers, CE(final) + Σ model.losses = (1 + β)·ℓβ: the reference code's
  3/(β+1)-scaled loss for β = 2. ``beta_loss`` is ℓβ itself on a ``probed_model`` dict.
"""

import keras
import tensorflow as tf

from tfrobust.core.auxiliary_loss import AuxiliaryLoss, cross_entropy
from tfrobust.core.layer_config import with_dtype
from tfrobust.core.training_labels import current_training_labels, training_labels  # noqa: F401  (re-exported)
from tfrobust.errors import (TfrobustError, check_choice, check_int, check_number, check_positive_float,
                             check_positive_int)
from tfrobust.layers.reconfigure import with_layer_options

PROBES = ("linear", "mlp")
IMGFS = ("softmax", "sigmoid", "softplus")
MASK_PATHS = ("full", "detached")
RELEVANCES = ("auto", "closed_form", "tape")
#: IMGF coefficient α used when ``alpha`` is None (thesis §4.3.3: sigmoid α=10, softplus α=5).
DEFAULT_ALPHA = {"sigmoid": 10.0, "softplus": 5.0}

@keras.saving.register_keras_serializable(package="tfrobust")
class CIFS(keras.layers.Layer):
    """Channel-wise importance-based feature selection on a feature map ``z`` [N, H, W, C].

    1. Probe: ``p = A(z)``, a raw prediction [N, K] — "linear" (global average pool → Dense K) or
       "mlp" (global average pool → Dense ``hidden_units`` → softplus with sharpness
       ``probe_sharpness`` → Dense K), as in the reference code; or any Keras layer mapping the
       feature map to K logits.
    2. Relevance (eq. 4.1): ``g_c = ∂/∂δ_c Σ_{i∈top-k} A(z + δ)_i`` at δ = 0, with δ a per-channel
       shift (the gradient summed over spatial positions). During training with labels available
       (``training_labels``), the top-1 index is replaced by the true label and the others are kept,
       as the thesis says (and as the reference code does, which counts the label twice if it is also
       the runner-up).
    3. Mask (IMGF): ``sigmoid(α·g)``, ``softplus_α(g) = log(1 + e^{α·g})/α`` or ``softmax(g/T)`` over
       channels; output ``z ⊙ mask_scale·m`` per channel (eq. 4.2).

    Relevance computation: for the built-in probes the gradient has a closed form and no inner tape is
    used — linear: ``g = s·Wᵀ`` with ``s`` the [N, K] sum of the chosen one-hots; mlp:
    ``g = ((s·W2ᵀ) ⊙ σ(β·h))·W1ᵀ`` with ``h`` the hidden pre-activation. ``relevance="tape"`` computes
    eq. 4.1 with a nested ``tf.GradientTape`` instead (the test oracle; always used for custom probes).
    Both export to SavedModel with identical outputs and input gradients; the closed form gives a much
    smaller TFLite graph.

    Gradient path (``mask_path``): "full" (default) — the mask is an ordinary differentiable function
    of the features, so input gradients include the mask's dependence on the input (second order
    through the relevance). "detached" — the relevance is computed on ``stop_gradient(z)`` as in the
    reference code: the probe's weights still learn through the mask, but input gradients treat the
    mask as a constant. Forward values are identical; an attack on a "detached" model sees a weaker
    gradient, so evaluate with ``set_mask_path(model, "full")`` (``adaptive_evaluation`` does).

    Args:
      num_classes: K, the probe's output size.
      probe: "linear", "mlp", or a Keras layer mapping [N, H, W, C] features to [N, K] logits.
      hidden_units: width of the mlp probe's hidden layer (128 in the reference code).
      probe_sharpness: β of the mlp probe's softplus, ``log(1 + e^{β·x})/β`` (5 in the reference code).
      top_k: number of top probe logits summed for the relevance, 1 ≤ top_k ≤ num_classes (thesis: 2).
      imgf: "softmax" (thesis' best, default), "sigmoid" or "softplus".
      alpha: α > 0 of the sigmoid and softplus IMGFs; default 10 for sigmoid, 5 for softplus.
      temperature: T > 0 of the softmax IMGF (thesis: 1).
      mask_scale: constant factor on the mask: a number > 0 (default 1: the paper's eq. 4.2, a softmax
        mask summing to 1, as the current reference code; only old commits of the reference multiplied
        the softmax mask by 2) or "channels" (× C, so a
        softmax mask averages 1 and the features keep their scale). Choice where the paper is silent:
        with a sum-to-1 mask on C channels the block output shrinks by ~1/C; where a normalisation
        follows this is harmless, but a CIFS layer feeding pooling → Dense (the last block) slows SGD on
        that Dense by ~1/C² — measured here: a ResNet-10 (128 channels at the last block) stayed at
        chance for its first PGD-AT epoch with ``mask_scale=1`` (the reference run was resumed from a
        trained checkpoint). "channels" is the same network up to a constant the next layer absorbs.
      mask_path: "full" or "detached" (see above).
      relevance: "auto" (closed form for the built-in probes, tape otherwise), "closed_form" or "tape".
      probe_loss_weight: w ≥ 0; in training mode with labels the layer adds ``w · mean CE(probe, y)``
        with ``add_loss`` (β/L for ℓβ over L layers; 0 = off).

    Call arguments:
      inputs: features [N, H, W, C].
      training: in training mode, labels (argument or ``training_labels`` context) replace the top-1
        and feed the probe loss.
      labels: optional int [N] labels (training mode only), overriding the context.

    Returns:
      ``[masked_features, probe_logits]``: the features times the mask (compute dtype) and the probe's
      logits on the *un-masked* features (float32, [N, K]).

    Example:
      >>> masked, probe_logits = CIFS(10, probe="mlp")(features)

    Reference: H. Yan, "Robust Vision …" thesis, ch. 4 (Yan et al., "CIFS: Improving Adversarial
    Robustness of CNNs via Channel-wise Importance-based Feature Selection", ICML 2021), eq. 4.1–4.3;
    probe architectures, training-label substitution and the detached relevance from the authors' code
    (HanshuYAN/CIFS). Choices where the paper is silent: probes computed in float32 under mixed
    precision; the relevance and mask in float32, cast to the compute dtype to multiply the features.
    """

    #: Reads the true labels in training mode (``tfrobust.core.layer_needs``): the engines provide them.
    uses_training_labels = True

    def __init__(self, num_classes, *, probe="linear", hidden_units=128, probe_sharpness=5.0, top_k=2,
                 imgf="softmax", alpha=None, temperature=1.0, mask_scale=1.0, mask_path="full",
                 relevance="auto", probe_loss_weight=0.0, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("num_classes", num_classes)
        if isinstance(probe, dict):  # deserialising a custom probe: the layer's dtype policy wins
            probe = keras.saving.deserialize_keras_object(with_dtype(probe, kwargs.get("dtype")))
        if isinstance(probe, str):
            check_choice("probe", probe, PROBES)
        elif not isinstance(probe, keras.layers.Layer):
            raise TfrobustError(f"probe must be one of {', '.join(PROBES)} or a keras Layer, got {probe!r}")
        check_positive_int("hidden_units", hidden_units)
        check_positive_float("probe_sharpness", probe_sharpness)
        check_int("top_k", top_k, 1, num_classes)
        check_choice("imgf", imgf, IMGFS)
        if alpha is not None:
            check_positive_float("alpha", alpha)
        check_positive_float("temperature", temperature)
        if mask_scale != "channels":
            try:
                check_number("mask_scale", mask_scale, 0.0, low_inclusive=False)
            except TfrobustError as error:
                raise TfrobustError(f"{error} (or 'channels')") from None
        check_choice("mask_path", mask_path, MASK_PATHS)
        check_choice("relevance", relevance, RELEVANCES)
        check_number("probe_loss_weight", probe_loss_weight, 0.0)
        if relevance == "closed_form" and not isinstance(probe, str):
            raise TfrobustError("relevance='closed_form' needs a built-in probe ('linear' or 'mlp'); "
                                "use relevance='tape' for a custom probe")
        self.num_classes = int(num_classes)
        self.probe = probe
        self.hidden_units = int(hidden_units)
        self.probe_sharpness = float(probe_sharpness)
        self.top_k = int(top_k)
        self.imgf = imgf
        self.alpha = None if alpha is None else float(alpha)
        self.temperature = float(temperature)
        self.mask_scale = mask_scale if mask_scale == "channels" else float(mask_scale)
        self.mask_path = mask_path
        self.relevance = relevance
        self.probe_loss_weight = float(probe_loss_weight)

    # -- Keras plumbing ---------------------------------------------------------------------------
    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise TfrobustError(f"CIFS expects features [N, H, W, C] with known C, got {input_shape}")
        channels = int(input_shape[-1])
        if isinstance(self.probe, keras.layers.Layer):
            if not self.probe.built:  # a deserialised probe arrives built
                self.probe.build(input_shape)
        elif self.probe == "linear":
            self.kernel = self.add_weight(name="kernel", shape=(channels, self.num_classes),
                                          initializer="glorot_uniform", dtype="float32", autocast=False)
            self.bias = self.add_weight(name="bias", shape=(self.num_classes,), initializer="zeros",
                                        dtype="float32", autocast=False)
        else:
            self.hidden_kernel = self.add_weight(name="hidden_kernel", shape=(channels, self.hidden_units),
                                                 initializer="glorot_uniform", dtype="float32", autocast=False)
            self.hidden_bias = self.add_weight(name="hidden_bias", shape=(self.hidden_units,),
                                               initializer="zeros", dtype="float32", autocast=False)
            self.kernel = self.add_weight(name="kernel", shape=(self.hidden_units, self.num_classes),
                                          initializer="glorot_uniform", dtype="float32", autocast=False)
            self.bias = self.add_weight(name="bias", shape=(self.num_classes,), initializer="zeros",
                                        dtype="float32", autocast=False)

    def compute_output_shape(self, input_shape):
        return [tuple(input_shape), (input_shape[0], self.num_classes)]

    def compute_output_spec(self, inputs, training=None, labels=None):
        del training, labels
        return [keras.KerasTensor(inputs.shape, dtype=self.compute_dtype),
                keras.KerasTensor((inputs.shape[0], self.num_classes), dtype="float32")]

    def get_config(self):
        config = super().get_config()
        probe = self.probe
        if isinstance(probe, keras.layers.Layer):
            probe = keras.saving.serialize_keras_object(probe)
        config.update(num_classes=self.num_classes, probe=probe, hidden_units=self.hidden_units,
                      probe_sharpness=self.probe_sharpness, top_k=self.top_k, imgf=self.imgf,
                      alpha=self.alpha, temperature=self.temperature, mask_scale=self.mask_scale,
                      mask_path=self.mask_path, relevance=self.relevance,
                      probe_loss_weight=self.probe_loss_weight)
        return config

    # -- the computation --------------------------------------------------------------------------
    def call(self, inputs, training=None, labels=None):
        features = tf.convert_to_tensor(inputs)
        if training and labels is None:
            labels = current_training_labels()
        if not training:
            labels = None
        probe_logits = self.probe_logits(features)
        mask = self.importance_mask(features, labels=labels)
        scale = float(features.shape[-1]) if self.mask_scale == "channels" else self.mask_scale
        masked = features * tf.cast(scale * mask, features.dtype)[:, None, None, :]
        if labels is not None and self.probe_loss_weight > 0:
            self.add_loss(self.probe_loss_weight * tf.reduce_mean(cross_entropy(probe_logits, labels)))
        return [masked, probe_logits]

    def probe_logits(self, features):
        """The probe's raw prediction [N, K] (float32) on ``features``."""
        if isinstance(self.probe, keras.layers.Layer):
            return tf.cast(self.probe(features), tf.float32)
        pooled = tf.reduce_mean(tf.cast(features, tf.float32), axis=[1, 2])
        if self.probe == "linear":
            return tf.matmul(pooled, self.kernel) + self.bias
        hidden = tf.matmul(pooled, self.hidden_kernel) + self.hidden_bias
        return tf.matmul(self._softplus(hidden), self.kernel) + self.bias

    def channel_relevance(self, features, labels=None, method=None):
        """g [N, C] (float32) of eq. 4.1; ``labels`` replace the top-1 index; ``method`` overrides
        ``relevance`` ("closed_form" or "tape"). Honors ``mask_path`` ("detached": no input gradient)."""
        method = method or self.relevance
        if method == "auto":
            method = "tape" if isinstance(self.probe, keras.layers.Layer) else "closed_form"
        if self.mask_path == "detached":
            features = tf.stop_gradient(features)
        if method == "closed_form":
            return self._closed_form_relevance(features, labels)
        return self._tape_relevance(features, labels)

    def importance_mask(self, features, labels=None):
        """The IMGF mask m [N, C] (float32) of the features (before ``mask_scale``)."""
        relevance = self.channel_relevance(features, labels)
        if self.imgf == "softmax":
            return tf.nn.softmax(relevance / self.temperature, axis=-1)
        alpha = self.alpha if self.alpha is not None else DEFAULT_ALPHA[self.imgf]
        if self.imgf == "sigmoid":
            return tf.sigmoid(alpha * relevance)
        return tf.nn.softplus(alpha * relevance) / alpha

    # -- internals --------------------------------------------------------------------------------
    def _softplus(self, x):
        return tf.nn.softplus(self.probe_sharpness * x) / self.probe_sharpness

    def _selection(self, logits, labels):
        """[N, K] count of how often each class is among the chosen top-k indices (not differentiated)."""
        _, index = tf.math.top_k(tf.stop_gradient(logits), k=self.top_k)
        if labels is not None:
            labels = tf.cast(tf.reshape(labels, [-1]), index.dtype)
            index = tf.concat([labels[:, None], index[:, 1:]], axis=1)
        return tf.reduce_sum(tf.one_hot(index, self.num_classes, dtype=tf.float32), axis=1)

    def _closed_form_relevance(self, features, labels):
        pooled = tf.reduce_mean(tf.cast(features, tf.float32), axis=[1, 2])
        if self.probe == "linear":
            logits = tf.matmul(pooled, self.kernel) + self.bias
            chosen = self._selection(logits, labels)
            return tf.matmul(chosen, self.kernel, transpose_b=True)
        hidden = tf.matmul(pooled, self.hidden_kernel) + self.hidden_bias
        logits = tf.matmul(self._softplus(hidden), self.kernel) + self.bias
        chosen = self._selection(logits, labels)
        upstream = tf.matmul(chosen, self.kernel, transpose_b=True) * tf.sigmoid(self.probe_sharpness * hidden)
        return tf.matmul(upstream, self.hidden_kernel, transpose_b=True)

    def _tape_relevance(self, features, labels):
        features = tf.cast(features, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(features)
            logits = self.probe_logits(features)
        chosen = self._selection(logits, labels)
        # ∂(Σ chosen ⊙ logits)/∂z as a vector-Jacobian product (no broadcasting op to differentiate,
        # so the exported graph stays convertible to builtin TFLite ops).
        gradient = tape.gradient(logits, features, output_gradients=chosen,
                                 unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return tf.reduce_sum(gradient, axis=[1, 2])


# -- model-level helpers ------------------------------------------------------------------------------
def cifs_layers(model):
    """The CIFS layers of the functional ``model`` in graph order."""
    return [layer for layer in model.layers if isinstance(layer, CIFS)]


def probe_keys(model):
    """The auxiliary-output keys of ``probed_model(model)``: the CIFS layer names, in graph order."""
    return [layer.name for layer in cifs_layers(model)]


def probed_model(model):
    """A functional view of ``model`` (same layers and weights) returning ``{"logits": logits,
    <CIFS layer name>: probe logits, …}``: what adaptive attacks read (``AuxiliaryLoss.beta(β,
    probe_keys(model))``) and what ``beta_loss`` takes. Export the original ``model`` (logits only)."""
    layers = cifs_layers(model)
    if not layers:
        raise TfrobustError(f"model {model.name!r} has no CIFS layers")
    outputs = {"logits": model.output}
    for layer in layers:
        outputs[layer.name] = layer.output[1]
    return keras.Model(model.input, outputs, name=f"{model.name}_probed")


def set_mask_path(model, mask_path):
    """A copy of ``model`` (weights copied) whose CIFS layers use ``mask_path`` ("full" or "detached").
    The forward values are unchanged; with "full" input gradients pass through the masks."""
    check_choice("mask_path", mask_path, MASK_PATHS)
    return with_layer_options(model, CIFS, {"mask_path": mask_path})


def beta_loss(beta=2.0, keys=None):
    """ℓβ (eq. 4.3) as ``loss(outputs, labels) -> [N]``: CE(logits)/(1+β) + β/((1+β)·L)·Σ_l CE(probe_l)
    over the L probe outputs of ``outputs`` (a ``probed_model`` dict; ``keys`` default: every key but
    "logits"). ``beta=inf`` keeps only the probe term. The same object the adaptive attacks use
    (``tfrobust.core.auxiliary_loss.AuxiliaryLoss.beta``)."""
    return AuxiliaryLoss.beta(beta, keys)

