"""Runs ``tfrobust.scripts.serve`` (console script ``tfrobust-serve``); ``--help`` shows its usage."""

from tfrobust.scripts.serve import run

if __name__ == "__main__":
    run()
