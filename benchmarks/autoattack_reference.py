"""Parity and speed against the reference AutoAttack (fra31/auto-attack) on the same weights and points.

Copies a small Keras CNN's weights into an identical PyTorch module (``torch_mirror``: Conv2D, Dense,
ReLU, max pooling with TF's "same" padding, NHWC flatten order), checks that both give the same logits,
then runs both standard AutoAttacks (L∞) on the same Fashion-MNIST test points and prints both robust
accuracies and wall times with their ratio (reference ÷ ours: above 1 means we are faster).

  pip install -r requirements-bench.txt            # torch==2.13.0 (CPU), bench-only
  git clone https://github.com/fra31/auto-attack /tmp/auto-attack
  .venv/bin/python benchmarks/autoattack_reference.py --reference_dir=/tmp/auto-attack \\
      [--points=500] [--eps=0.03] [--model_source=runs/x/model.keras]

Without ``--reference_dir`` it prints why and exits 0 (skipped). The reference code is imported from
the given checkout, never copied into this project, and PyTorch is not a runtime dependency.
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from absl import flags

from _machine import machine  # benchmarks/_machine.py (this script's folder)
from tfrobust import cli
from tfrobust.errors import TfrobustError

flags.DEFINE_string("reference_dir", None, "A checkout of github.com/fra31/auto-attack (its autoattack/ "
                    "package is imported from there). Without it the benchmark is skipped.")
flags.DEFINE_integer("points", 500, "Fashion-MNIST test points.")
flags.DEFINE_float("eps", 0.03, "L∞ ε.")
flags.DEFINE_integer("batch_size", 250, "Both sides' batch size (the reference's bs).")
flags.DEFINE_integer("train_points", 10000, "Training points of the one-epoch CNN (without --model_source).")
flags.DEFINE_string("model_source", None, "A .keras file of a small_cnn-like chain model; default: train "
                    "the demo CNN for one epoch here.")
FLAGS = flags.FLAGS

SKIP_MESSAGE = ("skipped: give --reference_dir=<a checkout of github.com/fra31/auto-attack> "
                "(and pip install -r requirements-bench.txt for torch) to compare with the reference")


def load_reference(reference_dir):
    """(torch, the reference's AutoAttack class) from a checkout; one clear error if unusable."""
    if not os.path.isfile(os.path.join(reference_dir, "autoattack", "autoattack.py")):
        raise TfrobustError(f"--reference_dir={reference_dir} has no autoattack/autoattack.py "
                            "(expected a checkout of fra31/auto-attack)")
    try:
        import torch  # pylint: disable=import-outside-toplevel
    except ImportError as error:
        raise TfrobustError("the reference needs PyTorch: pip install -r requirements-bench.txt") from error
    sys.path.insert(0, os.path.abspath(reference_dir))
    from autoattack import AutoAttack as ReferenceAutoAttack  # pylint: disable=import-outside-toplevel

    return torch, ReferenceAutoAttack


def _same_padding(size, kernel, stride):
    """TensorFlow's "same" padding (before, after) along one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def torch_mirror(torch, model):
    """A PyTorch module computing ``model``'s logits from NCHW images, sharing copies of its weights.
    Supports chains of Conv2D, Dense (linear/ReLU), ReLU, MaxPooling2D, Flatten and Identity layers."""
    functional = torch.nn.functional
    steps = []
    for layer in model.layers:
        kind = type(layer).__name__
        config = layer.get_config()
        if kind in ("InputLayer", "Identity"):
            continue
        if kind == "Conv2D":
            kernel, bias = layer.get_weights()
            steps.append(("conv", torch.tensor(kernel.transpose(3, 2, 0, 1).copy()), torch.tensor(bias),
                          config["strides"], config["padding"], config["activation"]))
        elif kind == "Dense":
            kernel, bias = layer.get_weights()
            steps.append(("dense", torch.tensor(kernel.T.copy()), torch.tensor(bias), None, None,
                          config["activation"]))
        elif kind == "ReLU" or (kind == "Activation" and config["activation"] == "relu"):
            steps.append(("relu",) + (None,) * 5)
        elif kind == "MaxPooling2D":
            steps.append(("pool", config["pool_size"], None, config["strides"], config["padding"], None))
        elif kind == "Flatten":
            steps.append(("flatten",) + (None,) * 5)
        else:
            raise TfrobustError(f"torch_mirror does not support layer {layer.name!r} ({kind})")
    for step in steps:
        activation = step[5]
        if activation not in (None, "linear", "relu"):
            raise TfrobustError(f"torch_mirror does not support activation {activation!r}")

    class Mirror(torch.nn.Module):
        def forward(self, x):  # x: NCHW in [0, 1]
            for kind, a, b, strides, padding, activation in steps:
                if kind == "conv":
                    if padding == "same":
                        pad_h = _same_padding(x.shape[2], a.shape[2], strides[0])
                        pad_w = _same_padding(x.shape[3], a.shape[3], strides[1])
                        x = functional.pad(x, (*pad_w, *pad_h))
                    x = functional.conv2d(x, a, b, stride=tuple(strides))
                elif kind == "pool":
                    if padding == "same":
                        pad_h = _same_padding(x.shape[2], a[0], strides[0])
                        pad_w = _same_padding(x.shape[3], a[1], strides[1])
                        x = functional.pad(x, (*pad_w, *pad_h), value=float("-inf"))
                    x = functional.max_pool2d(x, tuple(a), tuple(strides))
                elif kind == "flatten":
                    x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # Keras flattens NHWC
                elif kind == "dense":
                    x = functional.linear(x, a, b)
                if kind == "relu" or activation == "relu":
                    x = functional.relu(x)
            return x

    return Mirror().eval()


def main(argv):
    del argv
    if not FLAGS.reference_dir:
        print(SKIP_MESSAGE)
        return
    torch, ReferenceAutoAttack = load_reference(FLAGS.reference_dir)
    # pylint: disable=import-outside-toplevel
    import keras

    from tfrobust import data, models
    from tfrobust.attacks import AutoAttack
    from tfrobust.evaluation import as_target, robust_accuracy

    torch.set_num_threads(os.cpu_count() or 1)
    (x_train, y_train), (x, y) = data.load_splits("fashion_mnist", test_size=FLAGS.points)
    y = y.astype(np.int64)
    if FLAGS.model_source:
        model = keras.models.load_model(FLAGS.model_source)
    else:
        keras.utils.set_random_seed(0)
        model = models.build("small_cnn", x.shape[1:], 10)
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x_train[:FLAGS.train_points], y_train[:FLAGS.train_points], batch_size=128, epochs=1, verbose=0)
    mirror = torch_mirror(torch, model)
    x_torch = torch.tensor(x.transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        difference = np.max(np.abs(mirror(x_torch).numpy() - model(x).numpy()))
    print(f"logits of the PyTorch mirror vs Keras: max |difference| {difference:.2e}")
    if difference > 1e-3:
        raise TfrobustError(f"the PyTorch mirror disagrees with the Keras model ({difference:.2e})")

    target = as_target(model)
    start = time.perf_counter()
    ours = robust_accuracy(AutoAttack(eps=FLAGS.eps, version="standard", batch_size=FLAGS.batch_size),
                           target.logits_fn, x, y, batch_size=FLAGS.batch_size)
    ours_seconds = time.perf_counter() - start
    print(f"tfrobust: robust accuracy {100 * ours['accuracy']:.2f}% in {ours_seconds:.1f} s", flush=True)

    reference = ReferenceAutoAttack(mirror, norm="Linf", eps=FLAGS.eps, version="standard", device="cpu",
                                    seed=0, verbose=False)
    start = time.perf_counter()
    x_adv = reference.run_standard_evaluation(x_torch, torch.tensor(y), bs=FLAGS.batch_size)
    reference_seconds = time.perf_counter() - start
    with torch.no_grad():
        reference_accuracy = float(np.mean(mirror(x_adv).argmax(1).numpy() == y))
    print(f"{len(y)} points, L∞ ε={FLAGS.eps}, standard AutoAttack:")
    print(f"  tfrobust  robust accuracy {100 * ours['accuracy']:.2f}%  wall {ours_seconds:.1f} s")
    print(f"  reference robust accuracy {100 * reference_accuracy:.2f}%  wall {reference_seconds:.1f} s")
    print(f"  speed ratio reference/tfrobust {reference_seconds / ours_seconds:.2f}x (target ≥ 2)")
    print(f"  {machine()}")


if __name__ == "__main__":
    cli.run(main)
