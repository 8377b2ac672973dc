"""The DuckDB score store: schema and migrations, typed rows, every SQL statement."""

from estbench.store.rows import SCORE_COLUMNS, ScoreKey, ScoreRow
from estbench.store.store import Store, default_store_path, open_store

__all__ = ["SCORE_COLUMNS", "ScoreKey", "ScoreRow", "Store", "default_store_path", "open_store"]
