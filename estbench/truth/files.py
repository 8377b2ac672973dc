"""Reading benchmark files as untrusted input: one clear line for every way they fail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from estbench.errors import BadInput, MissingData


def load_json(path: Path, what: str = "") -> Any:
    """The JSON content of ``path``; MissingData when it does not exist (``what``: what
    the file is, added to the line), BadInput when it is not readable JSON."""
    if not path.is_file():
        raise MissingData(f"{path} does not exist" + (f" ({what})" if what else ""))
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: not a JSON file ({type(exc).__name__}: {str(exc)[:80]})") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot be read ({exc.strerror or exc})") from None
