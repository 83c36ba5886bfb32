"""Runs ``tfrobust.scripts.export`` (console script ``tfrobust-export``); ``--help`` shows its usage."""

from tfrobust.scripts.export import run

if __name__ == "__main__":
    run()
