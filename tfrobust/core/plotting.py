"""Matplotlib for files, never for a screen: the headless Agg backend, imported only when plotting."""


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (imported on first use: matplotlib is slow to import
    and only the plotting functions need it)."""
    import matplotlib  # optional and slow to import: only when plotting

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path, *, dpi=100, layout="tight"):
    """Writes ``figure`` to ``path`` atomically (its format from the file name), closes it, returns ``path``.

    Args:
      figure: a matplotlib figure.
      path: the image file to write; its folder is created.
      dpi: resolution.
      layout: "tight" (``figure.tight_layout()`` first), "bbox" (crop to the drawn content on saving) or
        None (the caller has laid the figure out).
    """
    from tfrobust.core.files import atomic_path  # beside the plotting import: both only when saving

    if layout == "tight":
        figure.tight_layout()
    options = {"bbox_inches": "tight"} if layout == "bbox" else {}
    with atomic_path(path) as temp:
        figure.savefig(temp, dpi=dpi, **options)
    pyplot().close(figure)
    return path
