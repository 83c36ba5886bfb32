"""``TrainingConfig``: everything one training run needs, typed and validated in one place.

``trainers/train.py`` fills it from its absl flags; library users construct it directly and pass it to
``tfrobust.training.train``. Exporting is not part of training: the script (or the caller) exports the
returned model (``tfrobust.export.export_all``) and records the exports with ``record_exports``.
"""

import dataclasses

from tfrobust.errors import TfrobustError, check_int, check_number
from tfrobust.training.recipe_options import RecipeOptions


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """One training run.

    Attributes:
      dataset: a ``tfrobust.data`` name; ``data_dir`` its files (None: the loader's default source).
      model: a ``tfrobust.models`` name with builder ``model_options``.
      model_dir: the run folder (layout: ``tfrobust.core.run_layout``); rerunning resumes.
      epochs, batch_size: epochs ≥ 1; the global batch ≥ 1 (split across replicas).
      train_size, test_size: use the first N images of each split (None: all).
      method, method_params: a ``tfrobust.training.methods`` name and its parameters
        (``{"eps": 0.1, "beta": 6.0}``); "standard" without parameters is plain ``fit``.
      optimizer, learning_rate, momentum, weight_decay: ``make_optimizer``'s arguments (rate > 0).
      schedule, lr_boundaries, lr_factor: ``make_schedule``'s (boundaries in epochs).
      augment: None, "crop" or "flip_crop".
      mixed_precision: a ``PRECISIONS`` name.
      seed: seed (≥ 0) of weights, shuffling, augmentation and the methods' random streams.
      distribute, tpu: a ``STRATEGIES`` name, and the TPU's name for "tpu".
      verbose: ``fit``'s verbosity.
      recipe: a ``RecipeOptions``: the reference-recipe and model-selection settings (weight-decay mode,
        EMA, attack BatchNorm mode, CIFS/TisODE specifics, held-out validation, exported weights).
    """

    dataset: str
    model: str
    model_dir: str
    epochs: int
    batch_size: int
    data_dir: str | None = None
    train_size: int | None = None
    test_size: int | None = None
    model_options: dict = dataclasses.field(default_factory=dict)
    method: str = "standard"
    method_params: dict = dataclasses.field(default_factory=dict)
    optimizer: str = "sgd"
    learning_rate: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    lr_boundaries: tuple = ()
    lr_factor: float = 0.1
    augment: str | None = None
    mixed_precision: str = "none"
    seed: int = 0
    distribute: str = "none"
    tpu: str | None = None
    verbose: object = "auto"
    recipe: RecipeOptions = dataclasses.field(default_factory=RecipeOptions)

    def __post_init__(self):
        for name in ("dataset", "model", "model_dir"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise TfrobustError(f"{name} must be a non-empty string, got {getattr(self, name)!r}")
        check_int("epochs", self.epochs, 1)
        check_int("batch_size", self.batch_size, 1)
        for name in ("train_size", "test_size"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), 1)
        check_number("learning_rate", self.learning_rate, 0.0, low_inclusive=False)
        check_number("weight_decay", self.weight_decay, 0.0)
        check_number("lr_factor", self.lr_factor, 0.0)
        check_int("seed", self.seed, 0)
        if not isinstance(self.recipe, RecipeOptions):
            raise TfrobustError(f"recipe must be a RecipeOptions, got {type(self.recipe).__name__}")
        for boundary in self.lr_boundaries:
            check_int("lr_boundaries entry", boundary, 0)
        # Stored as fresh containers so the frozen config cannot be changed through the caller's dicts.
        object.__setattr__(self, "model_options", dict(self.model_options or {}))
        object.__setattr__(self, "method_params", dict(self.method_params or {}))
        object.__setattr__(self, "lr_boundaries", tuple(self.lr_boundaries))
