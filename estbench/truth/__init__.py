"""Ground-truth providers: the estbench table format and the official benchmark files."""

from estbench.truth.model import MetricInfo, TruthTable, metric_from_column

__all__ = ["MetricInfo", "TruthTable", "metric_from_column"]
