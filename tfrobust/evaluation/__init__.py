"""Evaluation: robust accuracy under attacks, artifact comparison and reports."""

from tfrobust.evaluation.compare import (artifact_label, choose_surrogate, compare_artifacts, markdown_table,
                                         write_report)
from tfrobust.evaluation.robustness import predict_labels, robust_accuracy

__all__ = ["artifact_label", "choose_surrogate", "compare_artifacts", "markdown_table", "predict_labels",
           "robust_accuracy", "write_report"]
