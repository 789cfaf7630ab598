"""What the run log measures: critic accuracy, trajectories and changes, correction verdicts,
confidence intervals and critic thresholds (:mod:`redraft.analysis.metrics`)."""
