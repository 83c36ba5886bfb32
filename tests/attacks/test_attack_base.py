"""The attack hierarchy: every attack reports its kind, and constructor arguments are type-checked."""

import numpy as np
import pytest

from tfrobust.attacks import (APGD, EOT, FABT, FGSM, KINDS, MIFGSM, PGD, RFGSM, SPSA, Attack, AutoAttack,
                              CarliniWagnerL2, CarliniWagnerLinf, CompiledAttack, DeepFool, GaussianNoise,
                              ScoreBasedAttack, Square, Transfer)
from tfrobust.errors import TfrobustError


@pytest.mark.parametrize("attack, kind", [
    (FGSM(), "white-box"), (PGD(), "white-box"), (APGD(), "white-box"), (DeepFool(), "white-box"),
    (AutoAttack(version="fast"), "white-box"), (Square(), "query-based"), (SPSA(), "query-based"),
    (GaussianNoise(), "query-based"), (Transfer(PGD(eps=0.1, seed=3), lambda x: x), "transfer")])
def test_every_attack_reports_its_kind(attack, kind):
    assert isinstance(attack, Attack) and attack.kind == kind and kind in KINDS
    assert attack.needs_gradients is (kind == "white-box")
    assert type(attack).needs_gradients is attack.needs_gradients  # readable on the class too


def test_score_based_attacks_have_no_compiled_core_and_transfer_takes_its_attacks_threat():
    assert not issubclass(ScoreBasedAttack, CompiledAttack) and not hasattr(Square(), "trace_count")
    inner = PGD(norm="l2", eps=0.5, clip_min=-1.0, seed=3)
    transfer = Transfer(inner, lambda x: x, "the surrogate")
    assert transfer.threat == inner.threat and transfer.seed == 3


def test_an_unknown_kind_fails_when_the_class_is_defined():
    with pytest.raises(TfrobustError, match="unknown attack kind 'grey-box'"):
        type("GreyBox", (Attack,), {"kind": "grey-box"})


def test_autoattack_validates_through_the_public_interface():
    with pytest.raises(TfrobustError, match="images must lie in"):
        AutoAttack(version="fast")(lambda x: x[:, :2], np.full((1, 3), 2.0, np.float32),
                                   np.zeros(1, np.int64))


INTEGER_ARGUMENTS = [(PGD, "steps"), (PGD, "restarts"), (PGD, "seed"), (MIFGSM, "steps"), (APGD, "steps"),
                     (APGD, "restarts"), (FABT, "num_target_classes"), (Square, "queries"), (SPSA, "samples"),
                     (SPSA, "batch_size"), (CarliniWagnerL2, "binary_search_steps"),
                     (CarliniWagnerL2, "max_iterations"), (CarliniWagnerLinf, "steps"), (DeepFool, "steps"),
                     (GaussianNoise, "samples"), (AutoAttack, "seed")]


@pytest.mark.parametrize("bad", [2.5, True, "3"])
@pytest.mark.parametrize("cls, name", INTEGER_ARGUMENTS)
def test_integer_arguments_reject_floats_bools_and_strings(cls, name, bad):
    with pytest.raises(TfrobustError, match=f"^{name} must be an integer, got {bad!r}$"):
        cls(**{name: bad})


def test_integer_arguments_accept_numpy_integers_and_eot_checks_its_samples():
    assert PGD(steps=np.int64(3)).steps == 3
    with pytest.raises(TfrobustError, match="samples must be an integer, got 2.5"):
        EOT(lambda x: x, samples=2.5)


@pytest.mark.parametrize("cls, name, bad", [
    (PGD, "eps", True), (PGD, "eps", float("nan")), (PGD, "clip_min", float("-inf")), (PGD, "clip_max", "1"),
    (PGD, "step_size", True), (RFGSM, "alpha", "0.1"), (Square, "p_init", float("inf")), (APGD, "rho", True)])
def test_real_arguments_reject_bools_strings_and_non_finite_values(cls, name, bad):
    with pytest.raises(TfrobustError, match=f"^{name} must be a (finite )?number, got "):
        cls(**{name: bad})


def test_an_infinite_radius_is_allowed():
    assert PGD(eps=float("inf")).threat.eps == float("inf")
