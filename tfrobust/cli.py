"""What every command-line script shares: absl ``app.run`` with one-line errors and exit status 2.

Scripts stay thin shells over the library; this module only turns bad input into ``error: <message>``
on stderr and exit code 2 (flag parsing errors, flag validators, and the library's TfrobustError /
missing-file errors raised while running).
"""

import ast
import sys

from absl import app, flags

from tfrobust.core.messages import first_line
from tfrobust.errors import TfrobustError

USAGE_ERROR = 2


def fail(message):
    """Prints ``error: message`` and exits with status 2."""
    sys.stderr.write(f"error: {message}\n")
    sys.exit(USAGE_ERROR)


def _parse_flags(argv):
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        fail(first_line(error))


class _QuietRetracing:
    """Drops TensorFlow's "triggered tf.function retracing" warnings: every attack object and every model
    under evaluation compiles its own function by design (traced once each), which that heuristic
    mistakes for a retracing loop."""

    def filter(self, record):
        return "triggered tf.function retracing" not in record.getMessage()


def run(main):
    """``app.run(main)`` where flag errors and library errors end in one line and exit code 2."""
    import logging

    for name in ("tensorflow", "absl"):
        logging.getLogger(name).addFilter(_QuietRetracing())

    def guarded_main(argv):
        if len(argv) > 1:
            fail(f"unexpected positional arguments: {' '.join(argv[1:])}")
        try:
            return main(argv)
        except (TfrobustError, FileNotFoundError) as error:
            fail(str(error))

    app.run(guarded_main, flags_parser=_parse_flags)


def parse_options(pairs, flag_name):
    """Turns ``["key=value", ...]`` into a dict; values become int, float, bool, None or lists when
    they read as such, else stay strings (``strides=1-1-2-2`` stays the string "1-1-2-2")."""
    options = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise TfrobustError(f"--{flag_name} expects key=value, got {pair!r}")
        options[key.strip()] = _parse_value(text.strip())
    return options


def parse_numbers(texts, flag_name, lower=None):
    """Comma-list flag values (``--eps=0.05,0.1``) as floats, each ``>= lower`` when given; raises one
    line naming the flag otherwise."""
    numbers = []
    for text in texts or []:
        try:
            number = float(text)
        except ValueError:
            raise TfrobustError(f"--{flag_name} expects comma-separated numbers, got {text!r}") from None
        if lower is not None and not number >= lower:
            raise TfrobustError(f"--{flag_name} values must be >= {lower:g}, got {text}")
        numbers.append(number)
    return numbers


def _parse_value(text):
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text[:1] in "[(":
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            pass
    return text
