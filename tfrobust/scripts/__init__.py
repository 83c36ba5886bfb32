"""The command-line programs: ``tfrobust-train``, ``tfrobust-evaluate``, ``tfrobust-export``,
``tfrobust-compare``, ``tfrobust-train-denoiser``, ``tfrobust-compare-denoisers``, ``tfrobust-serve`` (console
scripts declared in pyproject.toml) and the files under ``trainers/`` and ``export/`` that run them.

Each module defines its absl flags in ``define_flags()``, its work in ``main(argv)``, and ``run()``, the
console-script entry point. Flags are defined when a program runs rather than on import, so the modules
import side by side (absl refuses a flag defined twice, and several programs share flag names).
"""

import os
import sys

# Before TensorFlow is first imported (the programs' modules import it; this package is imported first).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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
    define_flags()
    # absl's --help lists the key flags of the program started (sys.argv[0]); these were defined in the
    # program's module, so they are declared key flags of the started file as well.
    for flag in flags.FLAGS.flags_by_module_dict().get(define_flags.__module__, []):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    cli.run(main)
