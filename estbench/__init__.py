"""estbench: evaluate efficient architecture-performance estimators (NAS) the way
Ning et al. (NeurIPS 2021) do: score every architecture, cache scores in DuckDB,
and turn the store into ranking criteria, bias/variance diagnoses and reports."""

__version__ = "0.1.0"
