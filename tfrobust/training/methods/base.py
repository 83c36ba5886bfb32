"""What every training method shares: the ``Method`` interface, the loss record it returns, and the
in-graph crafting pieces (the model's input gradient, fed to the projected steepest-ascent core
``tfrobust.attacks.projected_ascent`` that ``attacks.PGD`` runs too).

A method is a small configured object. ``AdversarialModel.train_step`` calls
``method.train_step(adv, x, y, seed)``; the default implementation is

  1. ``labels = y`` (or the model's predictions with ``label_mode="predicted"``),
  2. ``x_crafted = method.craft(adv, x, labels, seed)`` — in inference mode, no weight gradients,
  3. one optimizer update on ``method.loss(adv, x, y, x_crafted, training=True)`` through
     ``adv.minimize`` (which adds the auxiliary terms, loss scaling and the replica scaling).

Methods whose update is not "craft, then one step" (Free-AT: m updates per minibatch; AWP: a weight
perturbation around the step) override ``train_step``. ``test_step`` uses ``craft`` and ``loss`` with
``training=False``.

Everything here runs inside Keras' compiled train function (a ``tf.function`` that is *not*
autograph-converted), so loops are explicit ``tf.while_loop``s and Python control flow only depends
on configuration. Crafting is in float32 on the input: images are cast to float32 before the model
sees them, the model computes in its own policy (bfloat16/float16 under mixed precision) and returns
float32 logits, and gradients w.r.t. the float32 input are float32.
"""

import dataclasses
import inspect

import tensorflow as tf

from tfrobust.attacks import losses
from tfrobust.attacks.projected_ascent import RANDOM_STARTS, projected_ascent, start_point
from tfrobust.attacks.threat_model import ThreatModel
from tfrobust.errors import TfrobustError, check_choice, check_int, check_number

LABEL_MODES = ("true", "predicted")


@dataclasses.dataclass
class LossRecord:
    """What a method's loss returns (trace-time Python container of tensors).

    Attributes:
      total: scalar float32 loss of the method (mean over the batch), without auxiliary terms.
      components: {name: scalar} the terms reported as metrics (e.g. ``ce``, ``kl``).
      crafted_logits: float32 logits on the crafted training inputs (adversarial or noisy), for the
        ``adv_accuracy`` / ``noisy_accuracy`` metric; None when the method crafts nothing.
      clean_logits: float32 logits on the clean inputs if the loss computed them anyway (TRADES, ALP …);
        ``evaluate`` reuses them (inference mode there); during ``fit`` ``clean_accuracy`` is always
        measured by ``AdversarialModel`` itself (inference mode, before the update).
    """

    total: tf.Tensor
    components: dict
    crafted_logits: tf.Tensor | None = None
    clean_logits: tf.Tensor | None = None


class Method:
    """Base class of training methods.

    Class attributes a subclass sets:
      name: the registry name.
      components: names of the loss components ``loss`` reports (metrics, in this order).
      crafted: metric prefix for the accuracy on the crafted inputs ("adv", "noisy") or None.
      updates_per_batch: optimizer updates per minibatch (Free-AT: the number of replays); the
        training script multiplies the schedule's steps per epoch by it.
    """

    name = "method"
    components = ("ce",)
    crafted = "adv"
    updates_per_batch = 1

    def build(self, adv):
        """Creates state that needs the wrapped model (variables, feature extractors). Called once by
        ``AdversarialModel.__init__``, under the distribution strategy's scope if the caller uses one."""

    def craft(self, adv, x, labels, seed):
        """The training inputs for ``x`` (float32, same shape), computed without weight gradients."""
        del adv, labels, seed
        return x

    def loss(self, adv, x, y, x_crafted, training):
        """The method's loss on a batch as a ``LossRecord``; forward passes go through ``adv.forward``."""
        raise NotImplementedError

    def train_step(self, adv, x, y, seed):
        """One training step on ``(x, y)``; returns a ``LossRecord`` or a list of them (one per update)."""
        labels, clean_logits = self.crafting_labels(adv, x, y)
        x_crafted = tf.stop_gradient(self.craft(adv, x, labels, seed))
        record = adv.minimize(lambda: self.loss(adv, x, y, x_crafted, training=True))
        if record.clean_logits is None:
            record.clean_logits = clean_logits
        return record

    def crafting_labels(self, adv, x, y):
        """(labels to craft with, clean inference-mode logits or None). True labels by default."""
        del adv, x
        return y, None

    def callbacks(self):
        """Keras callbacks the method needs during ``fit`` (epoch-dependent settings such as AWP's
        warm-up); ``AdversarialModel.fit`` adds them."""
        return []

    def get_config(self):
        """The method's name and every constructor argument (for run summaries)."""
        config = {"name": self.name}
        for parameter in inspect.signature(type(self).__init__).parameters.values():
            if parameter.name != "self" and parameter.kind is parameter.KEYWORD_ONLY:
                config[parameter.name] = _plain(getattr(self, parameter.name))
        return config

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class AdversarialMethod(Method):
    """A method that trains on inputs crafted inside an Lp ball (all but standard and Gaussian noise).

    Args (shared by every adversarial method):
      eps: radius of the ball, > 0, in image units (required: 0.1 for Fashion-MNIST, 0.3 for MNIST,
        8/255 for CIFAR-10 in the seeds).
      norm: "linf" or "l2".
      steps: ascent steps of the inner maximisation, ≥ 1.
      step_size: absolute step, > 0 (each method documents its default, relative to ``eps``).
      random_start: "uniform" (a uniform point of the ball, Madry et al.), "normal" (x + 0.001·N(0, I),
        the TRADES/MART/FAT reference code) or "none".
      label_mode: "true" crafts against the true labels; "predicted" against the model's own
        predictions on the clean batch (the label-leaking guard of Kurakin et al. 2017 used by EVPNet).
        The training loss always uses the true labels.
      attack_loss: the crafting objective: "ce" (default), "margin", or a loss callable such as
        ``tfrobust.attacks.losses.AuxiliaryLoss`` to craft through auxiliary heads (CIFS).
      clip_min, clip_max: the valid input range.
    """

    def __init__(self, *, eps, norm, steps, step_size, random_start, label_mode, attack_loss,
                 clip_min, clip_max, default_step_size):
        if eps is None:
            raise TfrobustError(f"method {self.name!r} needs eps > 0 (the attack radius, e.g. 0.1 for "
                                "Fashion-MNIST or 8/255 for CIFAR-10)")
        check_number("eps", eps, 0.0, low_inclusive=False)
        check_int("steps", steps, 1)
        check_choice("random_start", random_start, RANDOM_STARTS)
        check_choice("label_mode", label_mode, LABEL_MODES)
        self.threat = ThreatModel(norm=norm, eps=float(eps), clip_min=float(clip_min),
                                  clip_max=float(clip_max))
        self.eps = float(eps)
        self.norm = norm
        self.steps = int(steps)
        if step_size is None:
            step_size = default_step_size
        check_number("step_size", step_size, 0.0, low_inclusive=False)
        self.step_size = float(step_size)
        self.random_start = random_start
        self.label_mode = label_mode
        self.attack_loss = losses.describe(attack_loss)
        self._attack_loss_fn = losses.get(attack_loss)
        self.clip_min = float(clip_min)
        self.clip_max = float(clip_max)

    def crafting_labels(self, adv, x, y):
        if self.label_mode == "true":
            return y, None
        clean_logits = losses.logits_of(adv.forward(x, training=False))
        return tf.argmax(clean_logits, axis=-1, output_type=y.dtype), clean_logits

    def craft(self, adv, x, labels, seed):
        """PGD on ``attack_loss`` from the configured random start (PGD-AT, ALP, AT-id, MART)."""
        start = start_point(self.threat, x, self.random_start, seed)
        return ascend(adv, self.threat, x, start, lambda outputs: self.objective(outputs, labels),
                      steps=self.steps, step_size=self.step_size)

    def objective(self, outputs, labels):
        """The per-example crafting objective [N] (maximised)."""
        return losses.objective(self._attack_loss_fn, outputs, labels, targeted=False)


# -- in-graph crafting ------------------------------------------------------------------------------
def ascend(adv, threat, x, start, objective_fn, *, steps, step_size):
    """``steps`` projected steepest-ascent steps on ``Σ objective_fn(outputs)`` from ``start``.

    The model runs in inference mode (``training=False``): BatchNorm uses its moving statistics and
    does not update them, dropout is off — as the TRADES reference code, which crafts in
    ``model.eval()`` (Madry's and Wong's code craft in train mode: ``AdversarialModel(…,
    attack_bn_mode="train")`` turns these passes into training-mode ones). The loop is
    ``attacks.projected_ascent`` (the core ``attacks.PGD`` runs too): ``x' ← Π(x' + α · d(∇ₓ'))``, a
    ``tf.while_loop``, so the graph size does not grow with ``steps``.
    """
    return projected_ascent(lambda x_adv: input_gradient(adv, x_adv, objective_fn), threat, x, start,
                            steps=steps, step_size=step_size)


def input_gradient(adv, x_adv, objective_fn):
    """∇ₓ Σᵢ objective_fn(model(x))ᵢ at ``x_adv`` in inference mode (zero, not None, if unconnected).

    Under mixed_float16 the objective is multiplied by ``adv.gradient_scale`` (1024) so small input
    gradients do not underflow in float16 activations; every step direction is scale invariant.
    """
    return input_gradient_and_outputs(adv, x_adv, objective_fn)[0]


def input_gradient_and_outputs(adv, x_adv, objective_fn):
    """(``input_gradient``, the model's outputs at ``x_adv``) from one forward-backward pass."""
    with tf.GradientTape() as tape:
        tape.watch(x_adv)
        outputs = adv.forward(x_adv, training=False)
        value = tf.reduce_sum(objective_fn(outputs)) * adv.gradient_scale
    return tape.gradient(value, x_adv, unconnected_gradients=tf.UnconnectedGradients.ZERO), outputs


# -- loss helpers -----------------------------------------------------------------------------------
def cross_entropy(logits, labels):
    """Mean softmax cross-entropy over the batch (float32)."""
    return tf.reduce_mean(losses.cross_entropy(tf.cast(logits, tf.float32), labels))


def kl_divergence(p_logits, q_logits):
    """[N] KL(softmax(p) ‖ softmax(q)) = Σ_c p_c (log p_c − log q_c), computed with log-softmax."""
    log_p = tf.nn.log_softmax(tf.cast(p_logits, tf.float32))
    log_q = tf.nn.log_softmax(tf.cast(q_logits, tf.float32))
    return tf.reduce_sum(tf.exp(log_p) * (log_p - log_q), axis=-1)


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Method):
        return value.get_config()
    return value
