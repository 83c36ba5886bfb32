"""``SteadyStateWarmup``: TisODE's steady-state loss switched on only after a number of epochs."""

import keras

from tfrobust.core.layer_needs import walk_layers
from tfrobust.errors import TfrobustError, check_int
from tfrobust.training.recipe import served_model


class SteadyStateWarmup(keras.callbacks.Callback):
    """Trains the first ``epochs`` epochs without the ODE blocks' steady-state loss, as the released
    TisODE code does (the term, weighted 0.01, is added only after epoch 5).

    The blocks read ``steady_state_weight`` when the training step is traced, so the callback sets
    the weights to 0 during warm-up and, when they change, has Keras rebuild the train function (one
    retrace when the term switches on; evaluation never adds the term). A run resumed past the
    warm-up starts with the term on. The configured weights are restored when training ends, so
    saved configs and exports keep them.

    Args:
      epochs: warm-up epochs ≥ 0 (0-based epoch index ``epochs`` is the first with the term: 5 means
        epochs 1–5 without it, as the reference's "after epoch 5").
    """

    def __init__(self, epochs):
        super().__init__()
        check_int("steady-state warm-up epochs", epochs, 0)
        self.epochs = epochs
        self._weights = None

    def on_train_begin(self, logs=None):
        # ODE blocks (the layers package's ODEBlock), recognised by their steady-state weight: the training
        # package imports no concrete layer module.
        blocks = [layer for layer in walk_layers(served_model(self.model))
                  if isinstance(getattr(layer, "steady_state_weight", None), float) and layer.steady_state_weight > 0]
        if not blocks:
            raise TfrobustError("a steady-state warm-up needs a model with an ODE block whose "
                                "steady_state_weight is > 0 (e.g. model tisode)")
        self._weights = [(block, block.steady_state_weight) for block in blocks]

    def on_epoch_begin(self, epoch, logs=None):
        changed = False
        for block, weight in self._weights:
            target = weight if epoch >= self.epochs else 0.0
            if block.steady_state_weight != target:
                block.steady_state_weight = target
                changed = True
        if changed:
            self.model.make_train_function(force=True)

    def on_train_end(self, logs=None):
        for block, weight in self._weights or []:
            block.steady_state_weight = weight


__all__ = ["SteadyStateWarmup"]
