"""Runs ``tfrobust.scripts.train`` (console script ``tfrobust-train``); ``--help`` shows its usage."""

from tfrobust.scripts.train import run

if __name__ == "__main__":
    run()
