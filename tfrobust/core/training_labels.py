"""The training-label context: how the true labels reach layers that need them in training mode.

Keras functional models take images only; a layer that needs the labels of the current batch in
training mode (CIFS replaces its top-1 prediction with the true label, thesis §4.3.2) declares
``uses_training_labels = True`` (see ``layer_needs``) and reads ``current_training_labels()``. The
training engines enter ``training_labels(y)`` around their training-mode forward passes.
"""

import contextlib
import threading

_LABELS = threading.local()


@contextlib.contextmanager
def training_labels(labels):
    """Within this context, layers reading ``current_training_labels()`` see ``labels`` (int [N]).

    Per thread, so each replica of a distribution strategy sees its own labels; contexts nest (the
    innermost wins)."""
    stack = getattr(_LABELS, "stack", None)
    if stack is None:
        stack = _LABELS.stack = []
    stack.append(labels)
    try:
        yield
    finally:
        stack.pop()


def current_training_labels():
    """The labels of the innermost ``training_labels`` context, or None."""
    stack = getattr(_LABELS, "stack", None)
    return stack[-1] if stack else None
