"""The projected steepest-ascent core shared by ``attacks.PGD`` and the adversarial training methods.

One traceable loop, ``projected_ascent``, and the starting points it runs from (``start_point``). Both run
as plain TensorFlow ops: inside an attack's ``tf.function`` and inside Keras' compiled ``train_step``
(which is not autograph-converted), so the loop is an explicit ``tf.while_loop`` whose graph does not grow
with the number of steps, and Python control flow depends only on configuration.

The caller supplies the gradient (``gradient_fn(x_adv) -> ∇``): an attack counts its model evaluations
there, a training method runs the model in inference mode and scales the objective under mixed precision.
"""

import tensorflow as tf

from tfrobust.attacks.threat_model import expand_like

#: Starting points: "uniform" in the ball (Madry et al.), "normal" x + 0.001·N(0, I) projected (the
#: TRADES / MART / FAT reference code), "none" x itself (BIM).
RANDOM_STARTS = ("uniform", "normal", "none")
#: Standard deviation of the "normal" random start (TRADES / MART / FAT reference code: 0.001·N(0, I)).
NORMAL_START_STD = 0.001


def start_point(threat, x, kind, seed):
    """The starting point of the ascent: uniform in ``threat``'s ball around ``x``, x + 0.001·N(0, I)
    (projected), or ``x`` itself, for ``kind`` in ``RANDOM_STARTS``. ``seed`` is a stateless-RNG seed."""
    if kind == "uniform":
        return threat.random_point(x, seed)
    if kind == "normal":
        noise = tf.random.stateless_normal(tf.shape(x), seed, stddev=NORMAL_START_STD, dtype=x.dtype)
        return threat.project(x + noise, x)
    return x


def projected_ascent(gradient_fn, threat, x, start, *, steps, step_size, track_success=False):
    """``steps`` projected steepest-ascent steps from ``start``: ``x' ← Π(x' + α · d(gradient_fn(x')))``.

    Args:
      gradient_fn: ``x_adv -> ∇`` of the objective to maximise (float32, shaped like ``x``); with
        ``track_success``, ``x_adv -> (∇, fooled, objective)``, where ``fooled`` (bool, per point) says
        ``x_adv`` is already adversarial and ``objective`` (per point) is its objective, both from the
        same model pass as ∇.
      threat: the ``ThreatModel`` (d is its steepest-ascent direction, Π its projection onto the ball
        around ``x`` intersected with the valid range).
      x: the clean points (the centre of the ball).
      start: the first iterate (see ``start_point``).
      steps: number of steps (a Python int ≥ 0).
      step_size: α, absolute.
      track_success: also keep each point's latest adversarial iterate among those the steps evaluated
        (the start included, the last iterate not: the caller evaluates that one itself). With a fixed
        step an iterate can cross the boundary and step back out; APGD and AutoAttack keep it, and so
        does ``attacks.PGD``. Training's crafting does not need it.

    Returns the last iterate, with ``x``'s static shape; with ``track_success`` the tuple
    ``(last, latest_fooled_iterate, fooled, fooled_objective)`` (``x`` and -inf where never fooled).
    Each iterate is cut from the tape (``tf.stop_gradient``): crafting never differentiates through its
    own steps.
    """
    if not track_success:
        def body(i, x_adv):
            x_adv = threat.ascent_step(x_adv, gradient_fn(x_adv), step_size, x)
            return i + 1, tf.ensure_shape(tf.stop_gradient(x_adv), x.shape)

        _, x_adv = tf.while_loop(lambda i, _: i < steps, body, (tf.constant(0), start),
                                 maximum_iterations=steps)
        return tf.ensure_shape(x_adv, x.shape)

    def tracking_body(i, x_adv, x_fooled, fooled, fooled_objective):
        grad, now, objective = gradient_fn(x_adv)
        # A model traced for any batch (reduce_retracing) returns gradients of unknown batch size; a batch of
        # one would then change the loop variables' static shapes ((1, …) → (None, …)), which tf.while_loop
        # refuses. The iterates keep x's shape, the per-point flags its batch.
        grad = tf.ensure_shape(grad, x.shape)
        now = tf.ensure_shape(now, x.shape[:1])
        objective = tf.ensure_shape(objective, x.shape[:1])
        x_fooled = tf.where(expand_like(now, x), x_adv, x_fooled)
        fooled_objective = tf.where(now, tf.cast(objective, tf.float32), fooled_objective)
        x_adv = tf.stop_gradient(threat.ascent_step(x_adv, grad, step_size, x))
        return i + 1, x_adv, x_fooled, fooled | now, fooled_objective

    batch = tf.shape(x)[:1]
    state = (tf.constant(0), start, x, tf.zeros(batch, tf.bool), tf.fill(batch, float("-inf")))
    _, x_adv, x_fooled, fooled, fooled_objective = tf.while_loop(
        lambda i, *_: i < steps, tracking_body, state, maximum_iterations=steps)
    return tf.ensure_shape(x_adv, x.shape), tf.ensure_shape(x_fooled, x.shape), fooled, fooled_objective
