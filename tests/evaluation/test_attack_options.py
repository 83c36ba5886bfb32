"""--attack_option: "<attack>.<parameter>" keys become build_suite overrides, checked against the suite and
the attack's constructor; a named suite's entry that an option changes is relabelled."""

import pytest

from tfrobust.errors import TfrobustError
from tfrobust.evaluation import build_suite
from tfrobust.evaluation.attack_options import attack_overrides, attack_parameters


def test_options_become_overrides_and_reach_the_attacks():
    overrides = attack_overrides({"pgd.steps": 50, "pgd.restarts": 2, "square.queries": 300}, ["fgsm", "pgd", "square"])
    assert overrides == {"pgd": {"steps": 50, "restarts": 2}, "square": {"queries": 300}}
    suite = build_suite("quick", norm="linf", eps=0.1, overrides=overrides)
    # quick's "pgd-20" and "square-1000" no longer describe what runs: relabelled with their settings.
    assert list(suite) == ["fgsm", "pgd[steps=50,restarts=2]", "square[queries=300]"]
    assert suite["pgd[steps=50,restarts=2]"].steps == 50 and suite["square[queries=300]"].queries == 300
    # An attack listed by its registered name keeps its label (it claims no setting).
    assert list(build_suite("fgsm,pgd", norm="linf", eps=0.1, overrides={"pgd": {"steps": 7}})) == ["fgsm", "pgd"]
    assert list(build_suite("quick", norm="linf", eps=0.1)) == ["fgsm", "pgd-20", "square-1000"]


def test_parameters_include_the_base_class_ones_but_not_the_threat_model():
    parameters = attack_parameters("pgd")
    assert {"steps", "step_size", "random_start", "restarts", "loss", "targeted", "clip_min"} <= set(parameters)
    assert not {"norm", "eps", "seed"} & set(parameters)


@pytest.mark.parametrize("options,message", [
    ({"pgd": 3}, "expects <attack>.<parameter>=<value>, got 'pgd'; attacks in this suite: fgsm, pgd"),
    ({"nope.steps": 3}, "attack 'nope' is unknown; attacks in this suite: fgsm, pgd"),
    ({"apgd-ce.steps": 3}, "attack 'apgd-ce' is not in this suite; attacks in this suite: fgsm, pgd"),
    ({"pgd.stepz": 3}, "unknown parameter 'stepz' for attack 'pgd'; valid: clip_max, clip_min, loss, "),
    ({"pgd.eps": 3}, "unknown parameter 'eps' for attack 'pgd' (it has its own flag)"),
])
def test_unknown_attacks_and_parameters_name_the_valid_ones(options, message):
    with pytest.raises(TfrobustError) as error:
        attack_overrides(options, ["fgsm", "pgd"])
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_bad_value_fails_with_the_attacks_own_message():
    overrides = attack_overrides({"pgd.steps": 0}, ["pgd"])
    with pytest.raises(TfrobustError, match="steps"):
        build_suite("pgd", norm="linf", eps=0.1, overrides=overrides)


def test_the_evaluation_batch_size_reaches_autoattack_unless_an_option_sets_it():
    # AutoAttack batches the points itself: the evaluation's batch size is its chunk size (the unit a resumed run
    # keeps), so a --batch_size chosen for memory or for resumable chunks covers it too.
    suite = build_suite("standard", norm="linf", eps=0.1, batch_size=50)
    assert list(suite) == ["fgsm", "pgd-20", "autoattack"] and suite["autoattack"].batch_size == 50
    assert suite["autoattack"].get_config()["batch_size"] == 50
    assert build_suite("standard", norm="linf", eps=0.1)["autoattack"].batch_size == 250  # its own default
    chosen = build_suite("autoattack", norm="linf", eps=0.1, overrides={"autoattack": {"batch_size": 20}},
                         batch_size=50)
    assert chosen["autoattack"].batch_size == 20
