"""tfrobust: robust image classifiers in TensorFlow / Keras 3.

Data flows one way (see docs/ARCHITECTURE.md):
data → models → training → export → evaluation → report.
"""

__version__ = "0.1.0"
