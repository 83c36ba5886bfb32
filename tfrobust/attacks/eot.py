"""Expectation over Transformation (EOT): attack a randomised model through its average.

Athalye, Carlini & Wagner (ICML 2018), §4: for a model whose forward pass is random (input
randomisation such as IRd, random noise layers), the gradient of one random pass is a poor ascent
direction; the gradient of the expectation, estimated by averaging ``samples`` passes, is the right one.
"""

import tensorflow as tf

from tfrobust.attacks import losses
from tfrobust.errors import check_choice, check_int


class EOT:
    """Wraps a randomised ``model_fn`` into its Monte-Carlo average (use it in place of ``model_fn``).

    Args:
      model_fn: images → logits (or a dict with "logits" and auxiliary outputs), random per call.
      samples: passes averaged per evaluation, ≥ 1 (AutoAttack's "rand" version uses 20).
      average: "logits" (default: the gradient is the mean of the per-pass logit gradients),
        "log_probabilities" (log of the mean softmax, the expectation of the model's probabilities, which
        is what a randomised classifier's prediction is; returned as logits, so CE and margins apply), or
        "loss": the attack's loss is the mean of the per-pass losses, so its gradient is the mean of the
        per-pass loss gradients — AutoAttack's ``eot_iter`` (its "rand" version: 20 passes). The wrapper
        then returns a dict: ``"logits"`` (the mean logits, for predictions) and the per-pass logits
        under ``losses.EOT_PASSES``, which ``losses.objective`` averages the loss over. (For a nonlinear
        loss such as CE the mean of losses is not the loss of the mean logits.)

    Every attack then evaluates ``samples`` passes per query; ``attack.last_counts`` counts one forward
    per call of the wrapper (multiply by ``samples`` for model passes). Auxiliary outputs in a dict are
    averaged the same way as the logits.

    Example:
      robust = PGD(eps=8/255, steps=20)(EOT(random_model, samples=10), x, y)
    """

    def __init__(self, model_fn, samples=10, average="logits"):
        check_int("samples", samples, 1)
        check_choice("average", average, ("logits", "log_probabilities", "loss"))
        self.model_fn = model_fn
        self.samples = int(samples)
        self.average = average

    def __call__(self, x):
        passes = [self.model_fn(x) for _ in range(self.samples)]
        if self.average == "loss":
            logits = [tf.cast(losses.logits_of(p), tf.float32) for p in passes]
            outputs = {key: self._mean([p[key] for p in passes])
                       for key in (passes[0] if isinstance(passes[0], dict) else {})}
            outputs.update({"logits": tf.reduce_mean(tf.stack(logits), axis=0), losses.EOT_PASSES: tf.stack(logits)})
            return outputs
        if isinstance(passes[0], dict):
            return {key: self._mean([p[key] for p in passes]) for key in passes[0]}
        return self._mean(passes)

    def _mean(self, values):
        if isinstance(values[0], (list, tuple)):
            return [self._mean(list(group)) for group in zip(*values)]
        stacked = tf.stack([tf.cast(v, tf.float32) for v in values])
        if self.average in ("logits", "loss"):
            return tf.reduce_mean(stacked, axis=0)
        return tf.math.log(tf.reduce_mean(tf.nn.softmax(stacked), axis=0) + 1e-12)

    def get_config(self):
        return {"name": "EOT", "samples": self.samples, "average": self.average}


def logits_std(model_fn, x, repeats=4):
    """Largest per-example standard deviation of the logits over ``repeats`` identical calls: 0 for a
    deterministic model (the sanity checks use it to suggest EOT)."""
    runs = tf.stack([tf.cast(losses.logits_of(model_fn(x)), tf.float32) for _ in range(repeats)])
    return float(tf.reduce_max(tf.math.reduce_std(runs, axis=0)).numpy())
