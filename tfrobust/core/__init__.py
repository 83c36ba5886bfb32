"""The bottom of the package: small helpers every other package may import, importing no other
tfrobust package themselves (``tfrobust.errors`` aside).

| module | what it holds |
|---|---|
| ``training_labels.py`` | the per-thread training-label context layers read (``training_labels``) |
| ``layer_needs.py`` | what a layer declares it needs from the engines: ``uses_training_labels``, ``diagnostics()`` |
| ``auxiliary_loss.py`` | ``AuxiliaryLoss`` (weighted CE over dict outputs; CIFS' ℓβ) and ``check_beta`` |
| ``group_norm.py`` | ``group_count``: GroupNorm groups for a channel count |
| ``layer_config.py`` | ``with_dtype``: a serialised sub-layer config with the parent's dtype policy |
| ``files.py`` | ``atomic_path``, ``write_text``, ``write_json``: write-then-rename |
| ``journal.py`` | ``Journal``: an append-only log of atomically written ``.npz`` records (a resumable computation) |
| ``plotting.py`` | ``pyplot()``: matplotlib on the headless Agg backend |
| ``registry.py`` | ``Registry`` (name → factory) and keyword-option checks from signatures |
| ``messages.py`` | ``first_line(error)``: the one line of an exception a user sees |
| ``run_layout.py`` | the file names of a training run folder |

The import rules of the whole package are drawn in docs/ARCHITECTURE.md and enforced by
tests/test_import_rules.py.
"""
