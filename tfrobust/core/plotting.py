"""Matplotlib for files, never for a screen: the headless Agg backend, imported only when plotting."""


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (imported on first use: matplotlib is slow to import
    and only the plotting functions need it)."""
    import matplotlib  # optional and slow to import: only when plotting

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
