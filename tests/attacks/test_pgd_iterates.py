"""PGD keeps the latest misclassified iterate of a run (as APGD does), not only its last iterate; the
registered C&W-L∞ is PGD-30."""

import numpy as np
import tensorflow as tf

from tfrobust.attacks import PGD, registry


def band_model(x):
    """Class 1 wins only in a thin band t = x − 0.5 ∈ (0.036, 0.064): logits (0, 1 − 5000·(t − 0.05)²)."""
    t = tf.reshape(x, [-1, 1]) - 0.5
    return tf.concat([tf.zeros_like(t), 1.0 - 5000.0 * tf.square(t - 0.05)], axis=1)


def test_pgd_returns_the_latest_misclassified_iterate():
    x = np.full((3, 1, 1, 1), 0.5, np.float32)
    y = np.zeros(3, np.int64)
    # Steps of 0.04 from t = 0: t = 0.04 is misclassified, the last iterate t = 0.08 is not.
    attack = PGD(eps=0.1, steps=2, step_size=0.04, random_start=False)
    x_adv = attack(band_model, x, y).numpy()
    np.testing.assert_allclose(x_adv.ravel(), 0.54, atol=1e-6)
    assert np.all(np.argmax(band_model(x_adv).numpy(), axis=1) == 1)
    # The tracking uses the logits of the gradient passes: no extra model call.
    assert attack.last_counts == {"forward": 9, "backward": 6}


def test_cw_linf_is_registered_as_pgd_30():
    attack = registry.make("cw-linf", eps=0.03)
    assert attack.get_config()["steps"] == 30 and attack.kappa == 50.0



def test_pgd_on_one_point_of_a_model_whose_trace_loses_the_batch_size():
    """The evaluation's targets run the model in a ``tf.function(reduce_retracing=True)``; after a first call
    the trace is relaxed to any batch, and a model with squeeze-excitation blocks then returns gradients of
    unknown batch size. On a single point that changed the while loop's variables from (1, …) to (None, …)
    and PGD failed (seen in a reproduction run with one point left to attack)."""
    from tfrobust import models
    from tfrobust.attacks import FGSM
    from tfrobust.evaluation.target import as_target

    net = models.build("se_resnet20", (8, 8, 1), 3, stage_blocks=[1], stage_widths=[4])
    target = as_target(net)
    x = np.random.default_rng(0).random((5, 8, 8, 1), dtype=np.float32)
    y = np.zeros(5, np.int64)
    target.predict(x)
    FGSM(eps=0.1)(target.logits_fn, x[:1], y[:1])
    x_adv = PGD(eps=0.1, steps=3)(target.logits_fn, x[:1], y[:1]).numpy()
    assert x_adv.shape == (1, 8, 8, 1)
    assert np.max(np.abs(x_adv - x[:1])) <= 0.1 + 1e-6
