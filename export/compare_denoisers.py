"""Runs ``tfrobust.scripts.compare_denoisers`` (console script ``tfrobust-compare-denoisers``); ``--help`` shows
its usage."""

from tfrobust.scripts.compare_denoisers import run

if __name__ == "__main__":
    run()
