"""Runs ``tfrobust.scripts.evaluate`` (console script ``tfrobust-evaluate``); ``--help`` shows its usage."""

from tfrobust.scripts.evaluate import run

if __name__ == "__main__":
    run()
