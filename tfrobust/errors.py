"""Errors that name the problem in one line.

Every user-facing mistake (unknown names, out-of-range values, missing or corrupt files) raises one of
these; the command-line scripts print ``error: <message>`` and exit with status 2.
"""

import math
import numbers


class TfrobustError(ValueError):
    """Base class: a bad input or configuration, explained in one line."""


class ArtifactError(TfrobustError):
    """An exported model path is missing, unreadable or not a model."""


class ServingError(ArtifactError):
    """A served model cannot be reached or refused a request (the server's message is kept verbatim)."""


class ModelNotFound(ServingError):
    """The server has no such model or version (REST 404, gRPC NOT_FOUND)."""


class InvalidRequest(ServingError):
    """A request the server rejects as malformed (REST 400, gRPC INVALID_ARGUMENT)."""


def check_choice(name: str, value, choices) -> None:
    """Raises TfrobustError unless ``value`` is one of ``choices`` (listing them)."""
    choices = list(choices)
    if value not in choices:
        raise TfrobustError(
            f"unknown {name} {value!r}; valid choices: {', '.join(map(str, choices))}")


def check_range(name: str, value, low=None, high=None, *, low_inclusive=True,
                high_inclusive=True) -> None:
    """Raises TfrobustError unless ``low <= value <= high`` (inclusiveness configurable)."""
    ok = True
    if low is not None:
        ok &= value >= low if low_inclusive else value > low
    if high is not None:
        ok &= value <= high if high_inclusive else value < high
    if not ok:
        lo = "" if low is None else ("[" if low_inclusive else "(") + str(low)
        hi = "" if high is None else str(high) + ("]" if high_inclusive else ")")
        bound = f"{lo or '(-inf'}, {hi or 'inf)'}"
        raise TfrobustError(f"{name} must be in {bound}, got {value!r}")


def check_int(name: str, value, low=None, high=None) -> None:
    """``value`` is an integer (bools and non-integral floats rejected) in ``[low, high]``.

    NumPy integers pass; ``2.0`` does not: a step count written as a float is a typo worth one line.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TfrobustError(f"{name} must be an integer, got {value!r}")
    check_range(name, int(value), low, high)


def check_number(name: str, value, low=None, high=None, *, low_inclusive=True,
                 high_inclusive=True, finite=True) -> None:
    """``value`` is a finite real number (bools rejected) in the given range; ``finite=False`` also admits
    ±inf (e.g. an unbounded attack radius), never NaN."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise TfrobustError(f"{name} must be a {'finite ' if finite else ''}number, got {value!r}")
    if finite and not math.isfinite(value):
        raise TfrobustError(f"{name} must be a finite number, got {value!r}")
    check_range(name, value, low, high, low_inclusive=low_inclusive, high_inclusive=high_inclusive)


def check_positive_int(name: str, value) -> None:
    """``value`` is an int >= 1 (bools rejected), else one line naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TfrobustError(f"{name} must be a positive integer, got {value!r}")


def check_positive_float(name: str, value) -> None:
    """``value`` is a number > 0 (bools rejected), else one line naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise TfrobustError(f"{name} must be a positive number (> 0), got {value!r}")
