"""Shared by the claim tests: a recipe's ``trainers/train.py`` flags parsed into its ``TrainingConfig``."""

import os

import pytest
from absl import flags

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _training_config(argv):
    """``scripts.train.training_config()`` for ``argv``, with train's flags defined only for the call."""
    from tfrobust.scripts import train

    before = set(flags.FLAGS)
    try:
        train.define_flags()
        flags.FLAGS(["train.py", *argv])
        return train.training_config()
    finally:
        for name in set(flags.FLAGS) - before:
            delattr(flags.FLAGS, name)
        flags.FLAGS.unparse_flags()


@pytest.fixture
def training_config(monkeypatch):
    """``training_config(argv)``: the ``TrainingConfig`` of ``trainers/train.py`` with ``argv``, run from the
    repository (the recipes' flagfiles are relative to it)."""
    monkeypatch.chdir(REPOSITORY)
    return _training_config
