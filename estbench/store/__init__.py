"""The DuckDB score store."""

from estbench.store.store import SCORE_COLUMNS, Store, open_store

__all__ = ["SCORE_COLUMNS", "Store", "open_store"]
