"""Layer tests import the shared checks as ``from tests.layer_checks import check_layer``; this makes the
repository root importable however pytest was started (``python -m pytest`` adds it already)."""

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
