"""A response cache for endpoint backends: a repeated or resumed run never pays twice.

SQLite, keyed by a hash of the endpoint URL, model, messages and every sampling parameter
(seed included). The API key is neither part of the key nor stored. It also remembers which
structured-output mode each endpoint and model took (backends/openai.py), so a later run
does not probe the ladder again. On by default at
$SIMULACRA_CACHE_DIR/responses.sqlite (else in cache_home()); `--no-cache` skips it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from simulacra.backends.base import Completion


def cache_home() -> Path:
    """simulacra's cache directory, $XDG_CACHE_HOME/simulacra or ~/.cache/simulacra: the model
    copies, compiled kernels and arrays made from a model (backends/_model_cache.py)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "simulacra"


def cache_dir() -> Path:
    """Where the response cache lives: $SIMULACRA_CACHE_DIR, else cache_home(). Kept apart
    from the model's files, so responses can go elsewhere (each test has its own) without
    the model's copies being made again."""
    return Path(os.environ.get("SIMULACRA_CACHE_DIR") or cache_home())


class ResponseCache:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else cache_dir() / "responses.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, "
                         "text TEXT, tokens_in INTEGER, tokens_out INTEGER, route TEXT, "
                         "created REAL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS rungs (endpoint TEXT, model TEXT, "
                         "rung TEXT, PRIMARY KEY (endpoint, model))")
        self._db.commit()
        self._lock = threading.Lock()
        self.hits = 0

    @staticmethod
    def key(endpoint: str, payload: dict[str, Any]) -> str:
        text = json.dumps({"endpoint": endpoint, **payload}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = self._db.execute("SELECT text, tokens_in, tokens_out, route FROM responses "
                                   "WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        self.hits += 1
        return Completion(text=row[0], tokens_in=row[1], tokens_out=row[2], route=row[3])

    def put(self, key: str, completion: Completion) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)",
                             (key, completion.text, completion.tokens_in, completion.tokens_out,
                              completion.route, time.time()))
            self._db.commit()

    def rung(self, endpoint: str, model: str) -> str | None:
        """The structured-output mode this endpoint and model answered with last time."""
        with self._lock:
            row = self._db.execute("SELECT rung FROM rungs WHERE endpoint = ? AND model = ?",
                                   (endpoint, model)).fetchone()
        return row[0] if row else None

    def remember_rung(self, endpoint: str, model: str, rung: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO rungs VALUES (?, ?, ?)",
                             (endpoint, model, rung))
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()
