"""Files made from a model once and kept for the next load, in ~/.cache/simulacra/models.

Loading the embedded model used to cost about 3 s, most of it work whose result never
changes for a given file: reading all 262,144 token pieces through llama.cpp one call at a
time and deriving the decoder's tables from them (about 1.1 s), and packing the screen's
4-bit output layer (0.3 s). For MedicalBilling's 50 records that was a quarter of the run.
Those arrays are written here the first time and read back (tens of milliseconds) after.

A file is keyed by the model file (path, size, modification time) and by a `version` the
caller derives from the code that made it, so a changed model or changed code makes a new
file, and the old one is removed. Where the directory cannot be written, the arrays are
made every time, as before.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from simulacra.cache import cache_home


def cached_arrays(model_path: str | Path, kind: str, version: str,
                  make: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays `make` returns for this model, read from the cache when they were made
    before by the same `version` of the code. `kind` names them (`vocab`, `screen`)."""
    path = Path(model_path)
    stat = path.stat()
    identity = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{version}"
    key = hashlib.sha256(identity.encode()).hexdigest()[:16]
    folder = cache_home() / "models"
    kept = folder / f"{path.stem}.{kind}-{key}.npz"
    if kept.is_file():
        try:
            with np.load(kept, allow_pickle=False) as stored:
                return {name: stored[name] for name in stored.files}
        except (OSError, ValueError, EOFError):   # a damaged file: made again below
            kept.unlink(missing_ok=True)
    arrays = make()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{kept.name}.{os.getpid()}"
        with open(partial, "wb") as out:
            np.savez(out, **arrays)
        os.replace(partial, kept)
        for stale in folder.glob(f"{path.stem}.{kind}-*.npz"):   # another model time or code
            if stale != kept:
                stale.unlink(missing_ok=True)
    except OSError:
        pass
    return arrays


def source_version(source: Path) -> str:
    """A version string for `cached_arrays`: a hash of the code that makes the arrays."""
    return hashlib.sha256(source.read_bytes()).hexdigest()[:16]
