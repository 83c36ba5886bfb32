"""tfrobust.core: the training-label context, layer needs read generically (labels, diagnostics)."""

import threading

import keras
import numpy as np

from tfrobust.core.layer_needs import collect_diagnostics, diagnostic_layers, training_label_layers, walk_layers
from tfrobust.core.training_labels import current_training_labels, training_labels
from tfrobust.training import AdversarialModel, DiagnosticsLogger


class LabelReader(keras.layers.Layer):
    """Records the training labels it sees; reports a per-call diagnostic (2 per call)."""

    uses_training_labels = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []

    def build(self, input_shape):
        self.calls = self.add_weight(name="calls", shape=(), dtype="int32", trainable=False,
                                     initializer="zeros")

    def call(self, inputs, training=None):
        if training:
            self.seen.append(current_training_labels())
        self.calls.assign(2)
        return inputs

    def diagnostics(self):
        return {"calls": self.calls}


def test_training_labels_nest_and_are_per_thread():
    assert current_training_labels() is None
    other = []
    with training_labels("outer"):
        with training_labels("inner"):
            assert current_training_labels() == "inner"
            thread = threading.Thread(target=lambda: other.append(current_training_labels()))
            thread.start()
            thread.join()
        assert current_training_labels() == "outer"
    assert current_training_labels() is None and other == [None]


def _model():
    inputs = keras.Input((2,))
    x = LabelReader(name="reader")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))


def test_layer_needs_are_found_through_nested_models_and_training_wrappers():
    net = _model()
    outer = keras.Sequential([keras.Input((2,)), net])
    adv = AdversarialModel(net, "standard")
    for model in (net, outer, adv):
        assert [layer.name for layer in training_label_layers(model)] == ["reader"]
        assert [layer.name for layer in diagnostic_layers(model)] == ["reader"]
    assert len([layer for layer in walk_layers(outer) if layer is net]) == 1
    net(np.zeros((1, 2), np.float32))
    assert collect_diagnostics(outer) == {"calls": 2.0}
    assert collect_diagnostics(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])) == {}


def test_adversarial_model_hands_the_labels_to_a_declaring_layer_and_logs_its_diagnostics():
    net = _model()
    adv = AdversarialModel(net, "standard", track_clean_accuracy=False)
    adv.compile(optimizer=keras.optimizers.SGD(0.0))
    x, y = np.zeros((4, 2), np.float32), np.array([0, 1, 2, 1])
    history = adv.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[DiagnosticsLogger()])
    reader = net.get_layer("reader")
    assert reader.seen and reader.seen[-1] is not None  # traced with the step's label tensor
    assert history.history["calls"] == [2.0]


def test_diagnostics_logger_adds_nothing_for_plain_layers():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(np.zeros((2, 2), np.float32), np.array([0, 1]), epochs=1, verbose=0,
                        callbacks=[DiagnosticsLogger()])
    assert sorted(history.history) == ["loss"]


def test_make_callbacks_puts_the_diagnostics_logger_before_the_csv_history(tmp_path):
    from tfrobust.training import make_callbacks

    names = [type(callback).__name__ for callback in make_callbacks(str(tmp_path))]
    assert names.index("DiagnosticsLogger") < names.index("ResumableCSVLogger")
