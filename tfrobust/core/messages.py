"""Turning exceptions into the one line a user reads."""


def first_line(error):
    """The first non-empty line of ``str(error)``, or the exception's type name when it has no text."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
