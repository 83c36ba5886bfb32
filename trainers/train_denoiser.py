"""Runs ``tfrobust.scripts.train_denoiser`` (console script ``tfrobust-train-denoiser``); ``--help`` shows its usage."""

from tfrobust.scripts.train_denoiser import run

if __name__ == "__main__":
    run()
