"""Turning exceptions into the one line a user reads."""


def one_line(error, limit=200):
    """The whole message of ``error`` on one line (whitespace collapsed), cut to ``limit`` characters: for
    wrapping third-party errors (file parsers) whose first line alone may say nothing."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def first_line(error):
    """The first non-empty line of ``str(error)``, or the exception's type name when it has no text."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
