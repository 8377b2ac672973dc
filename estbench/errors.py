"""Error hierarchy. Every error a user can cause is an EstbenchError; the CLI turns
it into one line on stderr and an exit code (2 for bad input, 1 for failures)."""


class EstbenchError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class BadInput(EstbenchError):
    """Malformed user input (architecture string, option value, file content)."""

    exit_code = 2


class UnknownName(BadInput):
    """A name that is not registered; the message carries suggestions."""


class MissingData(BadInput):
    """A data file that could not be found; the message says where we looked."""


class StoreError(EstbenchError):
    """The store file cannot be opened or written (not DuckDB, locked, ...)."""
