"""Native Keras ``.keras`` export (architecture + weights; reloads with ``keras.saving.load_model``)."""

from tfrobust.errors import TfrobustError
from tfrobust.export.atomic import atomic_path


def export_keras(model, path):
    """Saves ``model`` to ``path`` (must end in ``.keras``) atomically; returns the path."""
    if not str(path).endswith(".keras"):
        raise TfrobustError(f"a Keras model file must end in .keras, got {path}")
    with atomic_path(path, directory=False) as temp_path:
        model.save(temp_path)
    return path
