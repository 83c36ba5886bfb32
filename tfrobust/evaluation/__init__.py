"""Evaluation: attack suites on live models or exported artifacts, gradient-masking sanity checks,
curves and reports (JSON, Markdown, HTML, PNG, leaderboard JSON, TensorBoard)."""

from tfrobust.evaluation.compare import agreement, artifact_label, choose_surrogate, evaluate, label_of
from tfrobust.evaluation.report import check_out_dir, markdown, plot_agreement, plot_curves, write_report
from tfrobust.evaluation.robustness import noise_sweep, predict_labels, robust_accuracy
from tfrobust.evaluation.sanity import curves, gradient_health, sanity_checks
from tfrobust.evaluation.suite import SUITES, build_suite, run_suite
from tfrobust.evaluation.target import Target, as_target

__all__ = ["SUITES", "Target", "agreement", "artifact_label", "as_target", "build_suite", "check_out_dir",
           "choose_surrogate", "curves", "evaluate", "gradient_health", "label_of", "markdown", "noise_sweep",
           "plot_agreement", "plot_curves", "predict_labels", "robust_accuracy", "run_suite", "sanity_checks",
           "write_report"]
