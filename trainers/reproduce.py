"""Runs ``tfrobust.scripts.reproduce`` (console script ``tfrobust-reproduce``); ``--help`` shows its usage."""

from tfrobust.scripts.reproduce import run

if __name__ == "__main__":
    run()
