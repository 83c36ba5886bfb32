"""Adversarial weight perturbation (Wu, Xia & Wang): the training step is taken at worst-case perturbed
weights, then the weights are restored."""

import tensorflow as tf

from tfrobust.errors import TfrobustError, check_number
from tfrobust.training.methods.base import Method


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
      gamma: γ ≥ 0, the relative size of the weight perturbation (default 5e-3, the paper's value for
        AT-AWP and TRADES-AWP on CIFAR-10). γ = 0 is the base method.
      base: the base method's name (default "pgd_at"); any method with one update per minibatch.
      **base_params: the base method's parameters (eps, steps, beta, …).

    Reports the base method's components, measured at the perturbed weights. Costs one extra
    forward-backward pass per step. Not supported under a multi-replica distribution strategy yet
    (the perturbation would need an all-reduced direction).
    """

    name = "awp"

    def __init__(self, *, gamma=5e-3, base="pgd_at", **base_params):
        from tfrobust.training.methods import make_method

        check_number("gamma", gamma, 0.0)
        if base in ("awp", "free"):
            raise TfrobustError(f"awp cannot wrap {base!r}: the base method must make one update per "
                                "minibatch")
        self.gamma = float(gamma)
        self.base = make_method(base, **base_params)
        self.components = self.base.components
        self.crafted = self.base.crafted
        self.updates_per_batch = 1

    def build(self, adv):
        if tf.distribute.get_strategy().num_replicas_in_sync > 1:
            raise TfrobustError("method 'awp' does not support multi-replica distribution strategies yet")
        self.base.build(adv)

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
            variable.assign_add(scale * grad)

        def restore():
            for variable, saved in zip(kernels, saved_kernels):
                variable.assign(saved)

        return restore

    def get_config(self):
        return {"name": self.name, "gamma": self.gamma, "base": self.base.get_config()}

    def __repr__(self):
        return f"AWP(gamma={self.gamma!r}, base={self.base!r})"


def perturbed_variables(model):
    """The variables AWP perturbs: trainable weights with rank ≥ 2 (kernels), as in the reference."""
    return [v for v in model.trainable_variables if len(v.shape) > 1]
