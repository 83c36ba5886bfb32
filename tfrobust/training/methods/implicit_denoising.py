"""AT-id: PGD adversarial training plus implicit denoising of a feature layer (Liu & JaJa)."""

import tensorflow as tf

from tfrobust.attacks import losses
from tfrobust.errors import check_number
from tfrobust.training.methods.base import LossRecord, cross_entropy
from tfrobust.training.methods.pgd_at import PGDAT

#: Added under the square root so the distance has a finite gradient where it is 0.
DISTANCE_EPSILON = 1e-12


class ATID(PGDAT):
    """Liu & JaJa, "Feature Prioritization and Regularization Improve Standard Accuracy and Adversarial
    Robustness" (IJCAI 2019), the implicit-denoising ("id") loss added to PGD-AT:

        L = CE(f(x′), y) + λ · (1/N) Σᵢ ‖G(xᵢ) − G(x′ᵢ)‖₂,

    G the output of a named feature layer (flattened), x′ from PGD as in ``PGDAT``. The paper applies it
    to the attention-pooled feature vector (pass that layer's name); the distance is Euclidean, not
    squared (no public code; our reading of the paper). Both feature vectors carry gradients. λ = 0 is
    exactly PGD-AT (the clean pass is skipped).

    Args:
      eps: radius (required), > 0.
      lam: λ ≥ 0 (default 0.01, the paper's MNIST value).
      feature_layer: name of the layer whose output is G (default "features", which every
        ``tfrobust.models`` builder names).
      steps, step_size, random_start, norm, label_mode, attack_loss, clip_min, clip_max: see ``PGDAT``
        (the paper's MNIST run: PGD-40, step 0.01, ε = 0.3; CIFAR-10: PGD-5, step 2/255).

    Reports ``ce`` (adversarial) and ``denoise`` (the mean distance, before λ). Needs a functional model.
    """

    name = "at_id"
    components = ("ce", "denoise")

    def __init__(self, *, eps=None, lam=0.01, feature_layer="features", steps=10, step_size=None,
                 random_start="uniform", norm="linf", label_mode="true", attack_loss="ce", clip_min=0.0,
                 clip_max=1.0):
        check_number("lam", lam, 0.0)
        super().__init__(eps=eps, steps=steps, step_size=step_size, random_start=random_start, norm=norm,
                         label_mode=label_mode, attack_loss=attack_loss, clip_min=clip_min,
                         clip_max=clip_max)
        self.lam = float(lam)
        self.feature_layer = feature_layer

    def build(self, adv):
        adv.feature_model(self.feature_layer)  # fails early if the layer does not exist

    def loss(self, adv, x, y, x_crafted, training):
        if self.lam == 0.0:
            record = super().loss(adv, x, y, x_crafted, training)
            record.components["denoise"] = tf.zeros([])
            return record
        outputs, adv_features = adv.forward(x_crafted, y, training=training, features=self.feature_layer)
        clean_outputs, clean_features = adv.forward(x, y, training=training, features=self.feature_layer)
        logits = losses.logits_of(outputs)
        ce = cross_entropy(logits, y)
        difference = tf.cast(clean_features, tf.float32) - tf.cast(adv_features, tf.float32)
        flat = tf.reshape(difference, [tf.shape(difference)[0], -1])
        denoise = tf.reduce_mean(tf.sqrt(tf.reduce_sum(tf.square(flat), axis=1) + DISTANCE_EPSILON))
        return LossRecord(ce + self.lam * denoise, {"ce": ce, "denoise": denoise}, crafted_logits=logits,
                          clean_logits=losses.logits_of(clean_outputs))
