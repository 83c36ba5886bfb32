"""Adversarial weight perturbation (Wu, Xia & Wang): the training step is taken at worst-case perturbed
weights, then the weights are restored."""

import keras
import tensorflow as tf

from tfrobust.errors import TfrobustError, check_int, check_number
from tfrobust.training.methods.base import Method

#: γ of the released AWP code per base method (AT_AWP: 1e-2; TRADES_AWP: 5e-3); other bases use 1e-2.
DEFAULT_GAMMA = {"trades": 5e-3}


class AWP(Method):
    """Wu, Xia & Wang, "Adversarial Weight Perturbation Helps Robust Generalization", NeurIPS 2020,
    eq. (9)–(11), on top of a base method (AT-AWP with PGD-AT, TRADES-AWP with TRADES):

        x′ ← the base method's adversarial examples (crafted at the current weights w);
        v_l ← γ · ‖w_l‖ · ∇_{w_l} L(x′) / ‖∇_{w_l} L(x′)‖       for every weight matrix/kernel l;
        g ← ∇_w L(x′) at w + v;   w ← w (restored exactly);   w ← optimizer step with g,

    L being the base method's loss. As in the reference (``AdvWeightPerturb``), only multi-dimensional
    weights (convolution and dense kernels) are perturbed — not biases or normalisation parameters —,
    the perturbation is a single normalised ascent step, and the ascent pass runs in training mode
    without changing the model: BatchNorm moving statistics touched by it are restored (the reference
    uses a proxy copy of the model). The reference adds v, steps, then subtracts v; restoring a saved
    copy before the step is the same update without the rounding error of (w + v) − v.

    Args:
      gamma: γ ≥ 0, the relative size of the weight perturbation. Default (None): the released code's
        value for the base — 1e-2 for PGD-AT (``AT_AWP``, ``--awp-gamma 0.01``), 5e-3 for TRADES
        (``TRADES_AWP``), 1e-2 for any other base. γ = 0 is the base method.
      base: the base method's name (default "pgd_at"); any method with one update per minibatch.
      warmup: epochs ≥ 0 trained with the base method alone before the perturbation starts (the
        reference's ``if epoch >= awp_warmup``; 0 for AT-AWP, 10 for TRADES-AWP on CIFAR-10). A
        callback (``callbacks()``, added by ``AdversarialModel.fit``) switches it on; during warm-up
        the ascent pass still runs, scaled by 0 (one trace for the whole run).
      **base_params: the base method's parameters (eps, steps, beta, …).

    Reports the base method's components, measured at the perturbed weights. Costs one extra
    forward-backward pass per step. Not supported under a multi-replica distribution strategy yet
    (the perturbation would need an all-reduced direction).
    """

    name = "awp"

    def __init__(self, *, gamma=None, base="pgd_at", warmup=0, **base_params):
        from tfrobust.training.methods import make_method

        if gamma is None:
            gamma = DEFAULT_GAMMA.get(base, 1e-2)
        check_number("gamma", gamma, 0.0)
        check_int("warmup", warmup, 0)
        if base in ("awp", "free"):
            raise TfrobustError(f"awp cannot wrap {base!r}: the base method must make one update per "
                                "minibatch")
        self.gamma = float(gamma)
        self.warmup = warmup
        self._active = None  # 0/1 multiplier of γ while warming up (a variable, set per epoch)
        self.base = make_method(base, **base_params)
        self.components = self.base.components
        self.crafted = self.base.crafted
        self.updates_per_batch = 1

    def build(self, adv):
        if tf.distribute.get_strategy().num_replicas_in_sync > 1:
            raise TfrobustError("method 'awp' does not support multi-replica distribution strategies yet")
        self.base.build(adv)
        if self.warmup:
            self._active = tf.Variable(0.0, trainable=False, name="awp_active")

    def callbacks(self):
        return [_WarmupSwitch(self)] if self.warmup else []

    def craft(self, adv, x, labels, seed):
        return self.base.craft(adv, x, labels, seed)

    def loss(self, adv, x, y, x_crafted, training):
        return self.base.loss(adv, x, y, x_crafted, training)

    def crafting_labels(self, adv, x, y):
        return self.base.crafting_labels(adv, x, y)

    def train_step(self, adv, x, y, seed):
        labels, clean_logits = self.crafting_labels(adv, x, y)
        x_adv = tf.stop_gradient(self.craft(adv, x, labels, seed))
        restore = None
        if self.gamma > 0:
            restore = self._perturb_weights(adv, x, y, x_adv)
        record = adv.minimize(lambda: self.loss(adv, x, y, x_adv, training=True), before_update=restore)
        if record.clean_logits is None:
            record.clean_logits = clean_logits
        return record

    def _perturb_weights(self, adv, x, y, x_adv):
        """Adds v to every kernel; returns the function that restores the saved weights."""
        kernels = perturbed_variables(adv.model)
        state = adv.model.non_trainable_variables
        saved_state = [tf.identity(v.value) for v in state]
        with tf.GradientTape() as tape:
            # The same objective the update minimises: the method's loss plus the auxiliary terms.
            value = adv._record_loss(lambda: self.loss(adv, x, y, x_adv, training=True)).total * adv.gradient_scale
        grads = tape.gradient(value, kernels,
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        for variable, saved in zip(state, saved_state):
            variable.assign(saved)
        saved_kernels = [tf.identity(v.value) for v in kernels]
        for variable, grad in zip(kernels, grads):
            grad = tf.where(tf.math.is_finite(grad), grad, tf.zeros_like(grad))
            scale = self.gamma * tf.norm(variable.value) / (tf.norm(grad) + 1e-12)
            if self._active is not None:
                scale = scale * self._active
            variable.assign_add(scale * grad)

        def restore():
            for variable, saved in zip(kernels, saved_kernels):
                variable.assign(saved)

        return restore

    def get_config(self):
        return {"name": self.name, "gamma": self.gamma, "warmup": self.warmup, "base": self.base.get_config()}

    def __repr__(self):
        return f"AWP(gamma={self.gamma!r}, warmup={self.warmup!r}, base={self.base!r})"


class _WarmupSwitch(keras.callbacks.Callback):
    """Turns AWP's perturbation on from epoch ``warmup`` (0-based, so after ``warmup`` full epochs),
    also when a run resumes past it."""

    def __init__(self, method):
        super().__init__()
        self.method = method

    def on_epoch_begin(self, epoch, logs=None):
        self.method._active.assign(1.0 if epoch >= self.method.warmup else 0.0)  # pylint: disable=protected-access


def perturbed_variables(model):
    """The variables AWP perturbs: trainable weights with rank ≥ 2 (kernels), as in the reference."""
    return [v for v in model.trainable_variables if len(v.shape) > 1]
