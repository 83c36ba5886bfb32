"""Training: precision, schedules, optimizers, callbacks, and adversarial training through ``fit``.

``AdversarialModel(model, method, **params)`` wraps a Keras classifier; ``methods`` holds the training
methods (standard, gaussian, fgsm_rs, pgd_at, free, trades, mart, alp, fat, awp, at_id);
``make_strategy(name)`` the ``tf.distribute`` strategy ("none", "mirrored", "multi_worker", "tpu");
``train(TrainingConfig(...))`` a whole run from dataset name to trained model and ``summary.json``.
"""

from tfrobust.training import methods
from tfrobust.training.adversarial import AdversarialModel
from tfrobust.training.config import TrainingConfig
from tfrobust.training.denoising import DenoisingModel, train_denoiser
from tfrobust.training.distribute import STRATEGIES, make_strategy
from tfrobust.training.methods import Method, make_method
from tfrobust.training.recipe import (OPTIMIZERS, PRECISIONS, SCHEDULES, DiagnosticsLogger, LastWeights,
                                      OneCycle, StopOnNaN, make_callbacks, make_optimizer, make_schedule,
                                      served_model, set_precision)
from tfrobust.training.standard import TrainedRun, record_exports, train

METHODS = tuple(methods.names())

__all__ = ["METHODS", "OPTIMIZERS", "PRECISIONS", "SCHEDULES", "STRATEGIES", "AdversarialModel", "DenoisingModel",
           "DiagnosticsLogger", "LastWeights",
           "Method", "OneCycle", "StopOnNaN", "make_callbacks", "make_method", "make_optimizer", "make_schedule",
           "make_strategy", "methods", "record_exports", "served_model", "set_precision", "train", "train_denoiser",
           "TrainedRun", "TrainingConfig"]
