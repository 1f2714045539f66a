"""The engine: turns a plan into valid records through any backend, with retries and checks."""

from simulacra.engine.loop import Outcome, RunStats, derive_seed, run
from simulacra.engine.run import run_records

__all__ = ["Outcome", "RunStats", "derive_seed", "run", "run_records"]
