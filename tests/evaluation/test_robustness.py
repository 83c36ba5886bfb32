"""robust_accuracy verifies every point an attack returns (AUTOATTACK-SPEC §7.7): finite, in range and
inside the ε-ball; an invalid point is an attack failure, never a "broken" point."""

import numpy as np
import pytest
import tensorflow as tf

from tfrobust.attacks import PGD, GaussianNoise, Square
from tfrobust.attacks.threat_model import ThreatModel
from tfrobust.errors import TfrobustError
from tfrobust.evaluation.robustness import robust_accuracy, verify_points


def linear_model(num_classes=3, d=12, seed=0):
    w = tf.constant(np.random.default_rng(seed).normal(size=(d, num_classes)), tf.float32)
    return lambda x: tf.matmul(tf.reshape(x, [tf.shape(x)[0], -1]), w)


class Cheating:
    """Returns points that break the model but are not valid adversarial examples."""

    needs_gradients = False

    def __init__(self, kind, eps=0.1):
        self.threat = ThreatModel(norm="linf", eps=eps)
        self.kind = kind

    def __call__(self, model_fn, x, y):
        x = np.array(x, np.float32)
        if self.kind == "nan":
            x[:, 0] = np.nan  # argmax of NaN logits is class 0 or garbage: must never count as broken
        elif self.kind == "outside_ball":
            x = np.clip(x + 2 * self.threat.eps, 0, 1)
        else:
            x = x + 0.5  # outside [0, 1]
        return x


@pytest.fixture
def problem():
    rng = np.random.default_rng(1)
    model = linear_model()
    x = rng.uniform(0.3, 0.7, size=(30, 2, 2, 3)).astype(np.float32)
    y = np.argmax(model(x).numpy(), axis=1)
    y[:3] = (y[:3] + 1) % 3  # three points wrong on the clean input
    return model, x, y


@pytest.mark.parametrize("kind", ["nan", "outside_ball", "outside_range"])
def test_invalid_points_are_restored_and_counted_or_raise(problem, kind):
    model, x, y = problem
    with pytest.warns(UserWarning, match="invalid point"):
        result = robust_accuracy(Cheating(kind), model, x, y, batch_size=8, strict=False)
    # Every returned point was invalid, so nothing was broken: accuracy is the clean accuracy.
    assert result["accuracy"] == pytest.approx(27 / 30)
    assert result["invalid"] == 27
    with pytest.raises(TfrobustError, match="invalid point"):
        robust_accuracy(Cheating(kind), model, x, y, batch_size=8, strict=True)


def test_batches_from_an_executor_arrive_read_only_and_are_still_verified(problem):
    """A sharded evaluation's ``map_batches`` hands back what its workers returned (Ray: read-only arrays):
    invalid points among them are restored and counted as they are here."""
    model, x, y = problem
    attack = Cheating("nan")

    def read_only_batches(jobs):
        for _, x_batch, y_batch in jobs:
            x_adv = attack(model, x_batch, y_batch)
            x_adv.flags.writeable = False
            yield x_adv, {"forward": len(x_batch)}

    with pytest.warns(UserWarning, match="invalid point"):
        result = robust_accuracy(attack, model, x, y, batch_size=8, strict=False, map_batches=read_only_batches)
    assert result["accuracy"] == pytest.approx(27 / 30) and result["invalid"] == 27
    assert result["counts"] == {"forward": 27}


def test_real_attacks_pass_verification_at_the_boundary(problem):
    model, x, y = problem
    for attack in (PGD(norm="linf", eps=8 / 255, steps=5), PGD(norm="l2", eps=0.5, steps=5),
                   Square(norm="l2", eps=0.5, queries=30), Square(norm="linf", eps=8 / 255, queries=30)):
        result = robust_accuracy(attack, model, x, y, strict=True)
        assert result["invalid"] == 0


def test_verification_tolerance_and_unbounded_attacks():
    x = np.full((2, 4), 0.5, np.float32)
    threat_attack = PGD(norm="l2", eps=0.1, steps=1)
    on_sphere = x + np.float32(0.1 / 2)  # ‖δ‖₂ = 0.1 up to float32 rounding
    just_out = x + np.float32(0.1 / 2 * (1 + 1e-4))
    valid, _ = verify_points(threat_attack, np.stack([on_sphere[0], just_out[1]]), x)
    assert valid.tolist() == [True, False]
    # Gaussian noise is not ε-bounded: only finiteness and range are checked.
    noisy = np.clip(x + 0.3, 0, 1)
    assert verify_points(GaussianNoise(eps=0.01), noisy, x)[0].all()
    assert not verify_points(GaussianNoise(eps=0.01), noisy + 1, x)[0].any()
