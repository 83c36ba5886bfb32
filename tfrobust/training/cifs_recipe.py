"""Training CIFS models as the reference does: the detached mask path in training, the full path in
evaluation, and crafting on the joint loss ℓβ (``attack_loss="cifs_beta"``).

The reference ``resnet_CIFS.py`` computes the channel relevance on *detached* features, so its
training attack and its update see no gradient through the mask; attacking that path is the naive
(weak) attack, so every evaluation here uses the full path (the ``CIFS`` layer's ``mask_path``).

The training package imports no concrete layer module (docs/ARCHITECTURE.md's package layers): CIFS
layers are recognised by what they declare — ``uses_training_labels``, a ``mask_path`` option and
``probe_logits`` — and the probed view is built from their second output (the probe's logits), as
the layers package's ``cifs.probed_model`` does.
"""

import keras

from tfrobust.core.auxiliary_loss import AuxiliaryLoss
from tfrobust.core.layer_needs import uses_training_labels, walk_layers
from tfrobust.errors import TfrobustError, check_choice
from tfrobust.training.recipe import served_model

#: The CIFS layers' gradient paths (the ``cifs`` layer module's ``MASK_PATHS``).
MASK_PATHS = ("full", "detached")

#: ℓβ's β for ``attack_loss="cifs_beta"``: the reference's β = 2 (loss (CE + β/L·Σ CE(probe))·3/(β+1)).
CIFS_ATTACK_BETA = 2.0


class CIFSMaskPaths(keras.callbacks.Callback):
    """Uses ``train`` as the CIFS layers' mask path in training steps and ``evaluate`` in evaluation.

    Keras traces ``fit``'s train function at its first batch and the validation function at the first
    validation; the layers read ``mask_path`` while being traced, so the callback sets the path before
    each phase (epoch begin: ``train``; test begin: ``evaluate``; test end: back to ``train``) and
    leaves ``evaluate`` in place when training ends, for the final evaluation and the export.

    Args:
      train: "detached" (default, the reference's training) or "full".
      evaluate: "full" (default: the gradient an adaptive attacker uses) or "detached".
    """

    def __init__(self, train="detached", evaluate="full"):
        super().__init__()
        check_choice("train mask path", train, MASK_PATHS)
        check_choice("evaluation mask path", evaluate, MASK_PATHS)
        self.train, self.evaluate = train, evaluate
        self._layers = []

    def _set(self, path):
        for layer in self._layers:
            layer.mask_path = path

    def on_train_begin(self, logs=None):
        self._layers = cifs_layers(served_model(self.model))
        if not self._layers:
            raise TfrobustError("CIFSMaskPaths needs a model with CIFS layers")
        self._set(self.train)

    def on_epoch_begin(self, epoch, logs=None):
        self._set(self.train)

    def on_test_begin(self, logs=None):
        self._set(self.evaluate)

    def on_test_end(self, logs=None):
        self._set(self.train)

    def on_train_end(self, logs=None):
        self._set(self.evaluate)


def cifs_layers(model):
    """The CIFS-like layers of ``model``: they read training labels and have a mask path and a probe."""
    return [layer for layer in walk_layers(model) if uses_training_labels(layer)
            and hasattr(layer, "mask_path") and callable(getattr(layer, "probe_logits", None))]


def probed_view(net):
    """A functional view of ``net`` (same weights) returning ``{"logits": …, <CIFS layer name>: probe
    logits, …}`` (as the ``cifs`` layer module's ``probed_model``)."""
    outputs = {"logits": net.output}
    for layer in cifs_layers(net):
        outputs[layer.name] = layer.output[1]
    return keras.Model(net.input, outputs, name=f"{net.name}_probed")


def cifs_training_model(net, attack_loss):
    """(model to train, the method's ``attack_loss``): with ``attack_loss="cifs_beta"`` the
    ``probed_model`` view of ``net`` (same weights; export ``net``) and ℓβ (β = 2) over its logits and
    probe outputs — the reference crafts its training examples on that joint loss; otherwise ``net``
    and ``attack_loss`` unchanged."""
    if attack_loss != "cifs_beta":
        return net, attack_loss
    if not cifs_layers(net):
        raise TfrobustError(f"attack_loss=cifs_beta needs a model with CIFS layers; {net.name!r} has none")
    return probed_view(net), AuxiliaryLoss.beta(CIFS_ATTACK_BETA, [layer.name for layer in cifs_layers(net)])


__all__ = ["CIFS_ATTACK_BETA", "MASK_PATHS", "CIFSMaskPaths", "cifs_layers", "cifs_training_model", "probed_view"]
