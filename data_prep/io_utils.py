"""Atomic file writes for the data-preparation stage (the recipe's outputs must never be seen
half-written: a reader finds either the old file, no file, or the complete new one)."""

import os
import tempfile
from pathlib import Path


def write_atomically(path, data: bytes) -> None:
    """Writes data to a temporary file beside `path`, then renames it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
