"""Runs a program of ``tfrobust.scripts`` in the test process: its ``run()`` (absl ``app.run`` through
``tfrobust.cli.run``) with ``sys.argv`` set, stdout/stderr captured and the exit status caught.

Flag and library errors take the same path as in a real start (``cli.fail`` → ``error:`` line, SystemExit 2)
without a new interpreter importing TensorFlow each time; one subprocess case per script still proves the
real exit path. The program's flags are removed again afterwards (absl refuses a flag defined twice, and the
programs share flag names).
"""

import contextlib
import importlib
import io
import sys

import pytest
from absl import app, flags

from tfrobust import cli  # noqa: F401  (imported before the snapshot: everything that defines flags on import)

# absl defines --help/--helpfull on the first app.run, once per process: before the snapshot, so they stay.
app.define_help_flags()


def run_program_in_process(module, *args):
    """``(exit status, stdout, stderr)`` of ``tfrobust.scripts.<module>`` run with ``args``."""
    program = importlib.import_module(f"tfrobust.scripts.{module}")
    main_module = sys.modules["__main__"]
    before, doc, argv = set(flags.FLAGS), main_module.__doc__, sys.argv
    out, err = io.StringIO(), io.StringIO()
    code = 0
    sys.argv = [f"{module}.py", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            program.run()
    except SystemExit as exit_status:
        code = exit_status.code or 0
    finally:
        sys.argv, main_module.__doc__ = argv, doc
        for name in set(flags.FLAGS) - before:
            delattr(flags.FLAGS, name)
        flags.FLAGS.unparse_flags()
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def in_process():
    return run_program_in_process
