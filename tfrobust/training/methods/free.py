"""Free adversarial training (Shafahi et al.): m replays per minibatch, one backward pass feeding both
the weight update and the perturbation update, the perturbation carried across minibatches."""

import tensorflow as tf

from tfrobust.attacks import losses
from tfrobust.errors import TfrobustError, check_int
from tfrobust.training.methods.base import AdversarialMethod, LossRecord, cross_entropy


class FreeAT(AdversarialMethod):
    """Shafahi et al., "Adversarial Training for Free!", NeurIPS 2019, Algorithm 1. For each minibatch,
    repeated m times ("replays"):

        g_θ, g_δ ← ∇_{θ,δ} CE(f_θ(clip(x + δ)), y)          (one forward-backward pass)
        θ ← optimizer step with g_θ
        δ ← Π_ε(δ + α · sign(g_δ))

    δ starts at 0 and is *carried across minibatches* (it is not reset per batch) — Algorithm 1 and
    Shafahi et al.'s code. As in the released code, δ has the shape of a full batch; a smaller last
    batch uses (and updates) its first rows. ``carry_delta=False`` resets δ to 0 at every minibatch
    (carried across its replays only), as ConvNorm's Free-AT trainer does.

    Args:
      eps: radius (required), > 0.
      replays: m ≥ 1 (default 4, the ConvNorm report's setting; Shafahi et al. use m = 8 on CIFAR-10).
        Every replay is an optimizer update, so an epoch costs about m clean epochs: train for
        (planned epochs)/m epochs, as the paper does.
      step_size: α, default ε (the paper's FGSM step equals the clip ε).
      norm: "linf" (sign step, the paper) or "l2" (normalised-gradient step).
      clip_min, clip_max: valid input range.
      carry_delta: True (default, the paper) carries δ across minibatches; False starts each minibatch
        at δ = 0 (the ConvNorm repository's trainer).

    Not supported: ``label_mode="predicted"`` (the same backward pass serves the weights, which must see
    the true labels) and random starts (δ starts at 0, then carries). Crafting here happens in
    training mode — the one pass is the training pass. Reports ``ce`` and ``adv_accuracy`` averaged
    over replays. ``test_step`` evaluates one replay's worth: one α-step from δ = 0 in inference mode
    (``AdversarialMethod.craft`` with one step and no random start).

    The carried δ is a variable of the method (not saved in checkpoints; after a resume it restarts at
    0). Multi-replica strategies are refused for now: each replica would need its own δ.
    """

    name = "free"
    components = ("ce",)

    def __init__(self, *, eps=None, replays=4, step_size=None, norm="linf", clip_min=0.0, clip_max=1.0,
                 carry_delta=True):
        check_int("replays", replays, 1)
        if not isinstance(carry_delta, bool):
            raise TfrobustError(f"carry_delta must be True or False, got {carry_delta!r}")
        self.carry_delta = carry_delta
        super().__init__(eps=eps, norm=norm, steps=1, step_size=step_size, random_start="none",
                         label_mode="true", attack_loss="ce", clip_min=clip_min, clip_max=clip_max,
                         default_step_size=eps)
        self.replays = int(replays)
        self.updates_per_batch = self.replays
        self._delta = None

    def build(self, adv):
        if tf.distribute.get_strategy().num_replicas_in_sync > 1:
            raise TfrobustError("method 'free' does not support multi-replica distribution strategies yet "
                                "(the carried perturbation would have to be per replica)")
        shape = adv.model.input_shape if hasattr(adv.model, "input_shape") else None
        if isinstance(shape, list) or shape is None or any(d is None for d in shape[1:]):
            raise TfrobustError("method 'free' needs a model with one input of known shape, got "
                                f"{shape}")
        # Rows grow to the largest batch seen; unknown static shape, so one variable serves every size.
        self._delta = tf.Variable(tf.zeros((0,) + tuple(shape[1:]), tf.float32), trainable=False,
                                  shape=tf.TensorShape([None] + list(shape[1:])), name="free_delta")

    @property
    def delta(self):
        """The carried perturbation (a variable shaped [rows, H, W, C]); for inspection and tests."""
        return self._delta

    def train_step(self, adv, x, y, seed):
        del seed
        n = tf.shape(x)[0]
        stored = self._delta.read_value()
        delta = stored[:n]
        delta = tf.pad(delta, tf.concat([[[0, n - tf.shape(delta)[0]]],
                                         tf.zeros([tf.rank(x) - 1, 2], tf.int32)], 0))
        delta = tf.ensure_shape(delta, x.shape)
        if not self.carry_delta:
            delta = tf.zeros_like(x)
        records = []
        for _ in range(self.replays):  # unrolled: each replay is an optimizer update (m is small)
            record, grad = adv.minimize(lambda d=delta: self._replay_loss(adv, x, y, d), extra=delta)
            delta = self.threat.project_delta(delta + self.step_size * self.threat.steepest_ascent(grad))
            records.append(record)
        self._delta.assign(tf.concat([delta, stored[n:]], 0))
        return records

    def _replay_loss(self, adv, x, y, delta):
        x_adv = tf.clip_by_value(x + delta, self.clip_min, self.clip_max)
        logits = losses.logits_of(adv.forward(x_adv, y, training=True))
        ce = cross_entropy(logits, y)
        return LossRecord(ce, {"ce": ce}, crafted_logits=logits)

    def loss(self, adv, x, y, x_crafted, training):
        del x
        logits = losses.logits_of(adv.forward(x_crafted, y, training=training))
        ce = cross_entropy(logits, y)
        return LossRecord(ce, {"ce": ce}, crafted_logits=logits)
