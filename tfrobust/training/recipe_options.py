"""``RecipeOptions``: the settings that make a run reproduce a reference recipe and select its model —
weight-decay mode, EMA, BatchNorm mode of the attack, CIFS mask paths and ℓβ crafting, TisODE's
steady-state warm-up, the held-out validation split, the validation attack and which weights to export.

``train_and_export(…, recipe=RecipeOptions(…))`` applies them; ``trainers/train.py`` fills them from
flags. Each field is validated at construction (one-line ``TfrobustError``).
"""

import dataclasses

import keras

from tfrobust.errors import TfrobustError, check_choice, check_int, check_number
from tfrobust.training import selection
from tfrobust.training.adversarial import ATTACK_BN_MODES
from tfrobust.training.cifs_recipe import MASK_PATHS, CIFSMaskPaths, cifs_layers, cifs_training_model
from tfrobust.training.methods import make_method
from tfrobust.training.recipe import WEIGHT_DECAY_MODES, GoodBackupAndRestore
from tfrobust.training.steady_state_warmup import SteadyStateWarmup


def _check_optional_int(name, value, low):
    if value is not None:
        check_int(name, value, low)


@dataclasses.dataclass
class RecipeOptions:
    """Recipe and model-selection settings of a training run.

    Attributes:
      weight_decay_mode: "decoupled" (Keras) or "coupled" (PyTorch's L2-in-the-gradient; what the
        references' numbers mean) — see ``make_optimizer``.
      ema: None or the momentum of an exponential moving average of the weights (e.g. 0.999); the EMA
        weights are swapped in for validation, the saved checkpoints, the final evaluation and the
        export (``keras.callbacks.SwapEMAWeights``).
      attack_bn_mode: "inference" or "train" (Madry's and Wong's code craft in train mode).
      cifs_train_mask_path: CIFS models only: the mask path of training steps ("detached", the
        reference's; "full"); evaluation and export always use "full".
      cifs_attack_beta: CIFS models only: craft the training examples on ℓβ (β = 2) over the final and
        probe logits, as the reference does (``attack_loss=cifs_beta`` on the command line).
      steady_state_warmup: epochs without the ODE blocks' steady-state loss (TisODE: 5).
      validation_size: None (validate on the test set each epoch, as a progress display only — do not
        select on it), or N ≥ 1 examples held out of the *training* set by a seeded split.
      validation_freq: validate every this many epochs.
      validation_eps, validation_steps, validation_step_size: the fixed validation attack, PGD-k from
        a uniform start (default ε: the method's; k = 10; step 2.5·ε/k). Used with ``validation_size``.
      export_weights: "last" or "best" (the best ``val_adv_accuracy`` epoch; needs ``validation_size``).
      early_stopping_patience: None, or stop after this many validation epochs without improvement.
    """

    weight_decay_mode: str = "decoupled"
    ema: float | None = None
    attack_bn_mode: str = "inference"
    cifs_train_mask_path: str = "detached"
    cifs_attack_beta: bool = False
    steady_state_warmup: int = 0
    validation_size: int | None = None
    validation_freq: int = 1
    validation_eps: float | None = None
    validation_steps: int = 10
    validation_step_size: float | None = None
    export_weights: str = "last"
    early_stopping_patience: int | None = None

    def __post_init__(self):
        check_choice("weight_decay_mode", self.weight_decay_mode, WEIGHT_DECAY_MODES)
        if self.ema is not None:
            check_number("ema", self.ema, 0.0, 1.0, high_inclusive=False)
        check_choice("attack_bn_mode", self.attack_bn_mode, ATTACK_BN_MODES)
        check_choice("cifs_train_mask_path", self.cifs_train_mask_path, MASK_PATHS)
        _check_optional_int("steady_state_warmup", self.steady_state_warmup, 0)
        _check_optional_int("validation_size", self.validation_size, 1)
        _check_optional_int("validation_freq", self.validation_freq, 1)
        _check_optional_int("validation_steps", self.validation_steps, 1)
        _check_optional_int("early_stopping_patience", self.early_stopping_patience, 1)
        if self.validation_eps is not None:
            check_number("validation_eps", self.validation_eps, 0.0, low_inclusive=False)
        if self.validation_step_size is not None:
            check_number("validation_step_size", self.validation_step_size, 0.0, low_inclusive=False)
        check_choice("export_weights", self.export_weights, selection.EXPORT_WEIGHTS)
        if self.validation_size is None:
            for name, bad in (("export_weights=best", self.export_weights == "best"),
                              ("early_stopping_patience", self.early_stopping_patience is not None)):
                if bad:
                    raise TfrobustError(f"{name} needs validation_size (a held-out split of the training "
                                        "set): model selection never looks at the test set")

    def as_dict(self):
        return dataclasses.asdict(self)

    # -- the steps of train_and_export ----------------------------------------------------------------
    @property
    def needs_wrapper(self):
        """Whether even standard training must run through ``AdversarialModel`` (validation attack)."""
        return self.validation_size is not None or self.attack_bn_mode != "inference"

    def split(self, x_train, y_train, seed):
        """``((x_train, y_train), (x_val, y_val) or None)``: the held-out split, if asked for."""
        if self.validation_size is None:
            return (x_train, y_train), None
        return selection.split_validation(x_train, y_train, self.validation_size, seed)

    def training_model(self, net, method, method_params, method_object):
        """``(model to train, method object)``: with ``cifs_attack_beta`` the probed view of ``net`` and
        the method re-made to craft on ℓβ."""
        if not self.cifs_attack_beta:
            return net, method_object
        trained, loss = cifs_training_model(net, "cifs_beta")
        return trained, make_method(method, **{**method_params, "attack_loss": loss})

    def wrapper_options(self, method_object):
        """``AdversarialModel`` keyword arguments: the BatchNorm mode and the fixed validation attack."""
        options = {"attack_bn_mode": self.attack_bn_mode}
        if self.validation_size is not None:
            eps = self.validation_eps or _method_eps(method_object)
            options["validation_attack"] = selection.validation_attack(
                eps=eps, steps=self.validation_steps, step_size=self.validation_step_size,
                norm=_method_norm(method_object))
        return options

    def callbacks(self, callbacks, model_dir, net):
        """``make_callbacks``' list with the recipe's callbacks: the model-selection ones right after the
        backup (so backups hold the raw weights and every later checkpoint sees the EMA ones), CIFS mask
        paths and the steady-state warm-up at the end."""
        position = next(i for i, c in enumerate(callbacks) if isinstance(c, GoodBackupAndRestore)) + 1
        added = []
        if self.ema is not None:
            added.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
        if self.validation_size is not None:
            added += selection.selection_callbacks(model_dir,
                                                   early_stopping_patience=self.early_stopping_patience)
        tail = []
        if cifs_layers(net):
            tail.append(CIFSMaskPaths(train=self.cifs_train_mask_path, evaluate="full"))
        if self.steady_state_warmup:
            tail.append(SteadyStateWarmup(self.steady_state_warmup))
        return callbacks[:position] + added + callbacks[position:] + tail

    def select(self, callbacks, net, epochs_done):
        """After ``fit``: loads the best weights into ``net`` if ``export_weights="best"``; returns the
        summary's ``selection`` record (selected epoch and both validation metrics of best and last)."""
        if self.validation_size is None:
            return {"validation": "test set, every epoch (display only; no held-out split, no selection)",
                    "export_weights": "last", "selected_epoch": epochs_done}
        best = next(c for c in callbacks if isinstance(c, selection.BestWeights))
        last = next(c for c in callbacks if isinstance(c, selection.LastValidation))
        record = {"validation": f"{self.validation_size} examples held out of the training set",
                  "monitor": best.monitor, "export_weights": self.export_weights, "best": best.best,
                  "last": last.last, "weights_best": best.path}
        if self.export_weights == "best":
            if best.best is None:
                raise TfrobustError("export_weights=best but no validation epoch produced a finite "
                                    f"{best.monitor} (validation_freq={self.validation_freq})")
            net.load_weights(best.path)
            record["selected_epoch"] = best.best["epoch"]
        else:
            record["selected_epoch"] = epochs_done
        return record


def _method_eps(method):
    eps = getattr(method, "eps", None)
    if eps is None and getattr(method, "base", None) is not None:
        eps = getattr(method.base, "eps", None)
    if eps is None:
        raise TfrobustError(f"method {method.name!r} has no eps: set validation_eps for the validation attack")
    return eps


def _method_norm(method):
    return getattr(method, "norm", None) or getattr(getattr(method, "base", None), "norm", None) or "linf"


__all__ = ["RecipeOptions"]
