"""The command-line programs: ``tfrobust-train``, ``tfrobust-evaluate``, ``tfrobust-export``,
``tfrobust-compare``, ``tfrobust-train-denoiser``, ``tfrobust-compare-denoisers``, ``tfrobust-serve`` (console
scripts declared in pyproject.toml) and the files under ``trainers/`` and ``export/`` that run them.

Each module defines its absl flags in ``define_flags()``, its work in ``main(argv)``, and ``run()``, the
console-script entry point. Flags are defined when a program runs rather than on import, so the modules
import side by side (absl refuses a flag defined twice, and several programs share flag names).
"""

import os
import re
import sys
import tempfile

# Before TensorFlow is first imported (the programs' modules import it; this package is imported first).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: TensorFlow's C++ start-up lines: absl's preamble and glog-style "I0000 00:00:… file.cc:N] …" records.
_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_RECORD = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] ")


def import_tensorflow_quietly():
    """Imports TensorFlow with its start-up log records below ``TF_CPP_MIN_LOG_LEVEL`` dropped.

    Why: TensorFlow 2.21 writes its start-up records (oneDNN, "Could not find cuda drivers", twice) through
    absl's C++ logging before that is initialised, which ignores ``TF_CPP_MIN_LOG_LEVEL``; they would open
    every ``--help`` and every run. File descriptor 2 is sent to a temporary file during the import and what
    is not start-up noise at the chosen level (0: keep all, 1: drop INFO, 2: also WARNING, 3: also ERROR) is
    written back to stderr.
    """
    if "tensorflow" in sys.modules:
        return
    try:
        level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        level = 0
    if level <= 0:
        import tensorflow
        return
    dropped = "IWEF"[:min(level, 3)]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode("utf-8", errors="replace").splitlines()
            kept = [line for line in lines if line != _PREAMBLE
                    and not ((match := _RECORD.match(line)) and match.group(1) in dropped)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")


import_tensorflow_quietly()


def run_program(define_flags, main, doc):
    """Defines the flags and runs ``main`` through ``tfrobust.cli.run`` (one-line errors, exit status 2).

    ``doc`` (the program module's docstring) becomes ``__main__``'s, which absl prints for ``--help``: the
    same text whether the program was started as a console script or as ``python export/export.py``.
    """
    from absl import flags

    from tfrobust import cli  # absl and the library load only when a program runs

    main_module = sys.modules.get("__main__")
    if main_module is not None:
        main_module.__doc__ = doc
    before = set(flags.FLAGS)
    define_flags()
    # absl's --help lists the key flags of the program started (sys.argv[0]); the program's flags were
    # defined in its module and in shared ones (suite_flags), so they are declared key flags of the
    # started file as well.
    for name in set(flags.FLAGS) - before:
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flags.FLAGS[name])
    cli.run(main)
