"""Datasets and the data-directory lookup."""

from estbench.data.lookup import DataDir, data_dirs

__all__ = ["DataDir", "data_dirs"]
