"""``AdversarialModel``: adversarial training as ordinary Keras (``compile``, ``fit``, callbacks).

The wrapper's ``train_step`` crafts the method's training inputs in-graph and minimises the method's
loss; ``test_step`` measures clean and adversarial accuracy and the method's loss in inference mode.
Everything else — progress bars, TensorBoard, BackupAndRestore, checkpoints, mixed precision — is
Keras' own. The wrapped model stays a plain Keras model: save and export ``adv.model``.
"""

import contextlib
import types

import keras
import tensorflow as tf

from tfrobust.attacks import losses
from tfrobust.core.messages import first_line
from tfrobust.core.training_labels import training_labels
from tfrobust.errors import TfrobustError, check_choice, check_int
from tfrobust.training.methods import make_method

#: Modes of the forward passes a training step makes besides its update (see ``AdversarialModel``).
ATTACK_BN_MODES = ("inference", "train")
#: Input-gradient scale under mixed_float16 (see ``methods.base.input_gradient``).
FLOAT16_GRADIENT_SCALE = 1024.0


class AdversarialModel(keras.Model):
    """Wraps a classifier so that ``fit`` trains it with a robust training method.

    Args:
      model: a Keras model mapping float32 images in [0, 1] to logits, or to a dict of outputs holding
        ``"logits"`` plus auxiliary heads.
      method: a method name (``tfrobust.training.methods.names()``) or a ``Method`` object.
      aux_loss_fn: optional ``aux_loss_fn(outputs, labels) -> scalar or [N]`` — *the* hook for models
        with auxiliary heads (CIFS probes …): it receives the model's raw outputs (e.g. the dict) of
        each training-mode forward pass of the method's loss and its value is added to the loss.
      seed: integer seed (>= 0) of the in-graph random streams (random starts, noise).
      track_clean_accuracy: report ``clean_accuracy`` during training, measured by one rule for every
        method: an inference-mode forward pass on the clean batch *before* the step's update (one extra
        forward pass per step). Switch off for speed benchmarks.
      test_adversarial: ``evaluate`` (and validation in ``fit``) crafts with the method's own attack
        (inference mode, a fixed random stream so evaluations are reproducible), always against the
        *true* labels whatever the method's ``label_mode``, and reports ``adv_accuracy``; False
        evaluates the clean loss and accuracy only. This is the training attack, not a robustness
        evaluation (use ``tfrobust.evaluation``: PGD-50, AutoAttack).
      validation_attack: None, or a ``Method`` whose ``craft`` ``evaluate`` (and validation in ``fit``)
        uses instead of the training method's — e.g. a fixed ``make_method("pgd_at", eps=…, steps=10)``
        so that every training method is selected by the same attack. Its logs are then ``loss``
        (cross-entropy on the crafted inputs), ``clean_accuracy`` and ``adv_accuracy`` only.
      attack_bn_mode: "inference" (default) or "train": the mode of every forward pass a training
        step makes besides the update's own (crafting, predicted labels, TRADES' clean reference) —
        see "BatchNorm" below. ``clean_accuracy`` is measured in inference mode either way.
      name: the Keras model name (default "adversarial_<model name>").
      **params: the method's parameters when ``method`` is a name (``eps=0.1, beta=6.0`` …).

    Metrics (logs of ``fit``/``evaluate``): ``loss`` (the method's loss plus auxiliary terms),
    ``clean_accuracy`` (always inference mode; in ``fit`` before each update), ``adv_accuracy``
    (``noisy_accuracy`` for Gaussian noise; during ``fit`` the accuracy on the crafted training inputs in
    training mode, in ``evaluate`` inference mode against true-label crafting), each loss component of
    the method (``ce``, ``kl`` …) and ``aux`` when auxiliary terms exist.

    Auxiliary losses: two sources are added to the method's loss, averaged over the step's
    training-mode forward passes (one for PGD-AT, two for TRADES — so a regulariser keeps its weight
    whatever the method): Keras ``model.losses`` (``add_loss`` in layers, kernel regularisers) and
    ``aux_loss_fn``. To *craft* through auxiliary heads too, give an adversarial method
    ``attack_loss=tfrobust.attacks.losses.AuxiliaryLoss(...)``.

    BatchNorm and other train/inference-dependent layers (``attack_bn_mode``): by default adversarial
    inputs are crafted in inference mode (``training=False``: moving statistics, no updates) and the
    update is computed on the adversarial batch in training mode, as the TRADES reference code does
    (``model.eval()`` for the attack, ``model.train()`` for the step). Madry's and Wong et al.'s code
    craft with the model in *train* mode (batch statistics, and every attack step updates BatchNorm's
    moving statistics): ``attack_bn_mode="train"`` reproduces that. Free-AT's single pass is both.
    Evaluation (``test_step``) always crafts in inference mode.

    Precision: images are cast to float32 and perturbed and projected in float32; the model computes
    in its own dtype policy (mixed_bfloat16 / mixed_float16) and must return float32 logits (every
    ``tfrobust.models`` builder does). Under mixed_float16 ``compile`` wraps the optimizer in Keras'
    ``LossScaleOptimizer`` and ``train_step`` scales the loss with ``optimizer.scale_loss`` (gradients
    are unscaled, and non-finite steps skipped, in ``apply_gradients``).

    Distribution: the loss is divided by the number of replicas (gradients are summed across them),
    as Keras' own ``train_step`` does, and random streams are folded with the replica id; build the
    model and this wrapper inside ``strategy.scope()`` (``tfrobust.training.make_strategy``) and fit on
    global batches. Tested: MirroredStrategy (same numbers as one device) and MultiWorkerMirroredStrategy
    (two workers end with the same weights; this class works around two Keras 3.15 bugs that break
    ``fit`` there — see ``_maybe_symbolic_build`` and ``_update_metrics``). Free-AT and AWP refuse
    multi-replica strategies for now.

    Saving: ``adv.model.save("m.keras")`` / ``export_all(adv.model, …)``; ``adv.save_weights`` and
    BackupAndRestore checkpoint the wrapper (model weights + optimizer); ``adv.save`` is refused.

    Example:
      >>> net = tfrobust.models.build("small_cnn", (28, 28, 1), 10)
      >>> adv = AdversarialModel(net, "pgd_at", eps=0.1, steps=10)
      >>> adv.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
      >>> adv.fit(train_ds, epochs=10, validation_data=test_ds)
      >>> adv.model.save("robust.keras")
    """

    def __init__(self, model, method="pgd_at", *, aux_loss_fn=None, seed=0, track_clean_accuracy=True,
                 test_adversarial=True, validation_attack=None, attack_bn_mode="inference", name=None,
                 **params):
        if not isinstance(model, keras.Model):
            raise TfrobustError(f"AdversarialModel wraps a keras.Model, got {type(model).__name__}")
        check_int("seed", seed, 0)
        check_choice("attack_bn_mode", attack_bn_mode, ATTACK_BN_MODES)
        super().__init__(name=name or f"adversarial_{model.name}")
        # Images reach the wrapped model in float32 (no cast to the compute dtype on the way in).
        self._convert_input_args = False
        self.model = model
        self.method = make_method(method, **params)
        self.aux_loss_fn = aux_loss_fn
        self.seed = seed
        self.track_clean_accuracy = bool(track_clean_accuracy)
        self.test_adversarial = bool(test_adversarial)
        self.attack_bn_mode = attack_bn_mode
        if validation_attack is not None and not getattr(validation_attack, "crafted", None):
            raise TfrobustError(f"validation_attack must be a Method that crafts inputs (e.g. "
                                f"make_method('pgd_at', eps=...)), got {validation_attack!r}")
        self.validation_attack = validation_attack
        self.gradient_scale = FLOAT16_GRADIENT_SCALE if model.dtype_policy.compute_dtype == "float16" else 1.0
        # Python-side state that Keras must not track as layers or weights.
        self._state = types.SimpleNamespace(feature_models={}, aux_terms=None, train_traces=0,
                                            test_traces=0, train_mode_crafting=False)
        self._trackers = {"loss": keras.metrics.Mean(name="loss"),
                          "clean_accuracy": keras.metrics.SparseCategoricalAccuracy(name="clean_accuracy")}
        if self.method.crafted:
            name = f"{self.method.crafted}_accuracy"
            self._trackers[name] = keras.metrics.SparseCategoricalAccuracy(name=name)
        # Without adversarial evaluation, test steps record the standard method's "ce".
        components = tuple(self.method.components) + (() if test_adversarial else ("ce",))
        for component in dict.fromkeys(components):
            self._trackers[component] = keras.metrics.Mean(name=component)
        self._trackers["aux"] = keras.metrics.Mean(name="aux")
        if validation_attack is not None and "adv_accuracy" not in self._trackers:
            self._trackers["adv_accuracy"] = keras.metrics.SparseCategoricalAccuracy(name="adv_accuracy")
        if model.built:
            self.built = True
        self.method.build(self)

    # -- Keras plumbing -------------------------------------------------------------------------------
    def call(self, inputs, training=None):
        """The wrapped model's outputs (so ``predict`` and ``adv(x)`` behave like the model)."""
        return self.model(inputs, training=training)

    def build(self, input_shape):
        if not self.model.built:
            self.model.build(input_shape)
        self.built = True

    def compile(self, optimizer="rmsprop", **kwargs):
        """``keras.Model.compile`` without ``loss`` or ``metrics``: the method defines the loss and the
        wrapper reports its own metrics. ``steps_per_execution``, ``jit_compile`` etc. pass through."""
        for key in ("loss", "loss_weights", "metrics", "weighted_metrics"):
            if kwargs.get(key) is not None:
                raise TfrobustError(f"AdversarialModel.compile takes no {key}=: the training method defines "
                                    "the loss and the wrapper reports its own metrics")
        super().compile(optimizer=optimizer, **kwargs)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras (3.15) first reduces one distributed batch with strategy.reduce("MEAN", (x, y)) only to
        # learn its shapes; MultiWorkerMirroredStrategy cannot reduce a tuple (ValueError on PerReplica)
        # and it would all-reduce images across workers. The wrapper's state is the wrapped model's,
        # its own metrics' and the optimizer's: once the model is built, no batch is needed.
        if self.model.built and self._distribute_strategy is not None:
            with self.distribute_strategy.scope():
                if self.optimizer is not None and not self.optimizer.built:
                    self.optimizer.build(self.trainable_variables)
                self._post_build()
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    @property
    def metrics(self):
        return list(self._trackers.values())

    def fit(self, *args, callbacks=None, **kwargs):
        """``keras.Model.fit`` plus the method's own callbacks (``Method.callbacks``: warm-ups …)."""
        callbacks = list(callbacks or []) + list(self.method.callbacks())
        return super().fit(*args, callbacks=callbacks, **kwargs)

    def save(self, *args, **kwargs):
        raise TfrobustError("save the wrapped model instead: adv.model.save(path) (or export it with "
                            "tfrobust.export.export_all(adv.model, ...))")

    def get_config(self):
        raise TfrobustError("AdversarialModel is a training wrapper and is not serialised; save adv.model")

    @property
    def train_step_traces(self):
        """How many times ``train_step`` was traced (a test guards against retracing across epochs)."""
        return self._state.train_traces

    @property
    def test_step_traces(self):
        return self._state.test_traces

    # -- the steps ------------------------------------------------------------------------------------
    def train_step(self, data):
        self._state.train_traces += 1
        x, y = self._unpack(data)
        seed = self._step_seed(self.optimizer.iterations, salt=0)
        # clean_accuracy has one rule for every method: inference mode, before the update (a method's
        # own clean logits — TRADES', ALP's — are training-mode and would not be comparable).
        clean_logits = None
        if self.track_clean_accuracy:
            clean_logits = tf.stop_gradient(losses.logits_of(self.forward(x, training=False)))
        # Layers that declare uses_training_labels (CIFS replaces its top-1 prediction with the true label)
        # read the labels from this context in training mode, because Keras models take images only.
        with training_labels(y), self._crafting_mode(self.attack_bn_mode == "train"):
            records = self.method.train_step(self, x, y, seed)
        records = records if isinstance(records, (list, tuple)) else [records]
        return self._update_metrics(y, records, clean_logits)

    def test_step(self, data):
        self._state.test_traces += 1
        x, y = self._unpack(data)
        seed = self._step_seed(tf.constant(0, tf.int64), salt=1)
        if self.validation_attack is not None:
            return self._validation_attack_step(x, y, seed)
        if self.test_adversarial:
            # Evaluation always crafts against the true label: with label_mode="predicted" the training
            # attack would push a misclassified point away from its wrong prediction (an optimistic
            # adv_accuracy).
            x_crafted = tf.stop_gradient(self.method.craft(self, x, y, seed))
            record = self._record_loss(lambda: self.method.loss(self, x, y, x_crafted, training=False))
            clean_logits = record.clean_logits
            if clean_logits is None:
                clean_logits = losses.logits_of(self.forward(x, training=False))
        else:
            record = self._record_loss(lambda: make_method("standard").loss(self, x, y, None, training=False))
            clean_logits = record.clean_logits
        return self._update_metrics(y, [record], clean_logits)

    # -- for methods ----------------------------------------------------------------------------------
    def forward(self, x, y=None, *, training, features=None):
        """Runs the wrapped model on ``x``; the methods' only way to call it.

        While a method's loss is being recorded (inside ``minimize`` / ``test_step``) the call's
        auxiliary terms are collected: the model's ``losses`` and ``aux_loss_fn(outputs, y)``.

        Args:
          features: a layer name: also return that layer's output, as ``(outputs, features)``.
        """
        net = self.feature_model(features) if features else self.model
        training = training or self._state.train_mode_crafting  # attack_bn_mode="train" (trace time)
        # The labels of *this* call for label-reading layers (ALP runs the clean and crafted batch as one 2N call);
        # train_step's context covers calls that pass no labels.
        with training_labels(y) if training and y is not None else contextlib.nullcontext():
            result = net(x, training=training)
        outputs, feature_values = (result[0], result[1]) if features else (result, None)
        if self._state.aux_terms is not None:
            terms = [tf.cast(term, tf.float32) for term in net.losses]
            if self.aux_loss_fn is not None:
                terms.append(tf.reduce_mean(tf.cast(self.aux_loss_fn(outputs, y), tf.float32)))
            if terms:
                self._state.aux_terms.append(tf.add_n([tf.reduce_sum(t) for t in terms]))
        return (outputs, feature_values) if features else outputs

    def feature_model(self, layer_name):
        """A functional view of the wrapped model returning ``[outputs, layer_name's output]`` (shared
        weights), created once per layer name."""
        if layer_name not in self._state.feature_models:
            try:
                layer = self.model.get_layer(layer_name)
            except ValueError as error:
                layers = ", ".join(layer.name for layer in self.model.layers)
                raise TfrobustError(f"model {self.model.name!r} has no layer {layer_name!r}; its layers: "
                                    f"{layers}") from error
            try:
                view = keras.Model(self.model.inputs, [self.model.output, layer.output])
            except (AttributeError, ValueError) as error:
                raise TfrobustError(f"reading layer {layer_name!r} needs a functional model: "
                                    f"{first_line(error)}") from error
            self._state.feature_models[layer_name] = view
        return self._state.feature_models[layer_name]

    def minimize(self, loss_fn, *, extra=None, before_update=None):
        """One optimizer update on ``loss_fn()`` (a ``LossRecord``) plus the auxiliary terms.

        The loss is divided by the number of replicas and scaled by ``optimizer.scale_loss`` (loss
        scaling under mixed_float16) before differentiation; ``apply_gradients`` unscales.

        Args:
          extra: a tensor to differentiate too (Free-AT's δ); then returns ``(record, gradient)``. The
            gradient is of the scaled loss (only its direction is meaningful), non-finite entries zeroed.
          before_update: called after the gradients are computed and before they are applied (AWP
            restores its weights here).
        """
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            if extra is not None:
                tape.watch(extra)
            record = self._record_loss(loss_fn)
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled = self.optimizer.scale_loss(record.total / replicas if replicas > 1 else record.total)
        targets = list(variables) + ([extra] if extra is not None else [])
        grads = tape.gradient(scaled, targets)
        if before_update is not None:
            before_update()
        self.optimizer.apply_gradients(zip(grads[:len(variables)], variables))
        if extra is None:
            return record
        grad = grads[-1]
        grad = tf.zeros_like(extra) if grad is None else tf.where(tf.math.is_finite(grad), grad, 0.0)
        return record, grad

    # -- internals ------------------------------------------------------------------------------------
    def _validation_attack_step(self, x, y, seed):
        """``test_step`` with ``validation_attack``: clean and adversarial accuracy (true labels,
        inference mode) and the cross-entropy on the crafted inputs as ``loss``."""
        x_crafted = tf.stop_gradient(self.validation_attack.craft(self, x, y, seed))
        adversarial = losses.logits_of(self.forward(x_crafted, training=False))
        clean = losses.logits_of(self.forward(x, training=False))
        self._trackers["loss"].update_state(tf.reduce_mean(losses.cross_entropy(adversarial, y)))
        self._trackers["clean_accuracy"].update_state(y, clean)
        self._trackers["adv_accuracy"].update_state(y, adversarial)
        logs = {name: self._trackers[name].result() for name in ("loss", "clean_accuracy", "adv_accuracy")}
        if _multi_worker(tf.distribute.get_strategy()):
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    @contextlib.contextmanager
    def _crafting_mode(self, train_mode):
        """While tracing a training step with ``attack_bn_mode="train"``: every forward pass in train mode."""
        previous, self._state.train_mode_crafting = self._state.train_mode_crafting, bool(train_mode)
        try:
            yield
        finally:
            self._state.train_mode_crafting = previous

    def _record_loss(self, loss_fn):
        """Calls ``loss_fn`` collecting auxiliary terms; the record's total includes their mean."""
        self._state.aux_terms = []
        try:
            record = loss_fn()
            aux_terms = self._state.aux_terms
        finally:
            self._state.aux_terms = None
        record.total = tf.cast(record.total, tf.float32)
        if aux_terms:
            aux = tf.add_n(aux_terms) / len(aux_terms)
            record.components = {**record.components, "aux": aux}
            record.total = record.total + aux
        return record

    # What a step reports on its clean and crafted outputs (``<crafted>_accuracy``, ``clean_accuracy``);
    # image-to-image subclasses (``DenoisingModel``) report PSNR through the same bookkeeping.
    quality_metric = "accuracy"
    clean_quality_metric = "clean_accuracy"

    def _update_quality(self, name, y, outputs):
        self._trackers[name].update_state(y, outputs)

    def _update_metrics(self, y, records, clean_logits):
        # Log only what this step measured: a tracker the step did not update would report a silent 0.
        updated = ["loss"]
        for record in records:
            self._trackers["loss"].update_state(record.total)
            for name, value in record.components.items():
                self._trackers[name].update_state(value)
                updated.append(name)
            if record.crafted_logits is not None and self.method.crafted:
                name = f"{self.method.crafted}_{self.quality_metric}"
                self._update_quality(name, y, record.crafted_logits)
                updated.append(name)
        if clean_logits is not None:
            self._update_quality(self.clean_quality_metric, y, clean_logits)
            updated.append(self.clean_quality_metric)
        logs = {name: tracker.result() for name, tracker in self._trackers.items() if name in updated}
        if _multi_worker(tf.distribute.get_strategy()):
            # Keras (3.15) reduces each log across workers with strategy.reduce("MEAN", v, axis=0),
            # which fails on scalars; as [1] tensors the reduction is the mean over replicas (a scalar).
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    def _unpack(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if sample_weight is not None:
            raise TfrobustError("AdversarialModel does not support sample weights")
        if y is None:
            raise TfrobustError("AdversarialModel needs labels: fit on (images, labels) batches")
        x = tf.cast(x, tf.float32)
        y = tf.cast(tf.reshape(y, [-1]), tf.int64)
        return x, y

    def _step_seed(self, counter, salt):
        """A stateless-RNG seed per step, replica and purpose: fold(seed, salt, step, replica)."""
        context = tf.distribute.get_replica_context()
        replica = context.replica_id_in_sync_group if context is not None else 0
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.constant(salt, tf.int64)])
        seed = tf.random.experimental.stateless_fold_in(seed, tf.cast(counter, tf.int64))
        return tf.random.experimental.stateless_fold_in(seed, tf.cast(replica, tf.int64))


def _multi_worker(strategy):
    """Whether ``strategy`` is a MultiWorkerMirroredStrategy over more than one worker."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and \
        strategy.extended._in_multi_worker_mode()  # private: TF 2.21 has no public equivalent


__all__ = ["AdversarialModel"]
