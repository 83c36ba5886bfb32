"""Runs ``tfrobust.scripts.compare`` (console script ``tfrobust-compare``); ``--help`` shows its usage."""

from tfrobust.scripts.compare import run

if __name__ == "__main__":
    run()
