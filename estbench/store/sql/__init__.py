"""Named SQL files of the analyses, read with ``load_sql(name)``."""

from functools import cache
from importlib import resources


@cache
def load_sql(name: str) -> str:
    return resources.files(__name__).joinpath(f"{name}.sql").read_text()
